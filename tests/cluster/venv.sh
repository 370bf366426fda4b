#!/usr/bin/env bash
# A venv with Snakemake's SLURM executor plugin, for the SLURM test only, and print its python.
#
#   bash tests/cluster/venv.sh [VENV_DIR]            (default: .cache/slurm-venv, ignored by git)
#
# The plugin stays out of the environment that runs everything else: Snakemake loads every
# installed executor plugin at start, and this one asks SLURM for its config (`scontrol show
# config`, up to 10 s) wherever a SLURM client is installed, so every `snakemake` would stall.
# The venv sees the system's packages (--system-site-packages: Snakemake, torch and the
# editable lth install) and adds only the plugin, pinned by pyproject.toml's `slurm` extra.
# A venv that already has the pinned plugin is reused.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.cache/slurm-venv}
PY=${PYTHON:-python3}

requirement=$("$PY" - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as fh:
    print(*tomllib.load(fh)["project"]["optional-dependencies"]["slurm"])
EOF
)
have() {
    local shown
    shown=$("$VENV/bin/python" -m pip show snakemake-executor-plugin-slurm 2>/dev/null) || return 1
    grep -qx "Version: ${requirement##*==}" <<<"$shown"
}

if ! { [ -x "$VENV/bin/python" ] && have; }; then
    "$PY" -m venv --system-site-packages "$VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $requirement >&2
    have || { echo "venv.sh: $requirement did not install into $VENV" >&2; exit 1; }
fi
echo "$(cd "$VENV" && pwd)/bin/python"
