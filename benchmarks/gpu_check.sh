#!/usr/bin/env bash
# Issue 4's benchmark on a GPU, in one go, on a machine with a CUDA device:
#
#     bash benchmarks/gpu_check.sh [more benchmark.py options, e.g. --mnist DIR]
#
# 1. `pip install -e .` only if what the benchmark imports is missing (torch, torchvision,
#    numpy, and lth from src/, which needs no install);
# 2. prints what torch sees (and nvidia-smi -L where present);
# 3. a smoke run, `benchmark.py --device cuda --quick`, then the full run, `--device cuda`
#    (about 1-3 min); with CPU_BASELINE=1 also `--device cpu` on the same machine, so that the
#    GPU figures have a CPU baseline from the same host;
# 4. writes each run's CSV and printed table under $OUT when that variable is set, otherwise
#    under benchmarks/results/, as <timestamp>-cuda-quick.csv/.txt, <timestamp>-cuda.csv/.txt
#    (and <timestamp>-cpu.csv/.txt).
# It stops at the first failure; without a CUDA device benchmark.py says so in one line.
# Without ../shared/mnist (or --mnist, or $LTH_MNIST_DIR) the benchmark times random IDX files
# of MNIST's size: the timings do not depend on the pixel values (the CSV's meta_data says which).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c 'import numpy, torch, torchvision, lth.experiment, lth.jobs' 2>/dev/null; then
    echo "gpu_check: the benchmark's imports are missing: pip install -e ."
    "$PY" -m pip install -e .
fi

"$PY" - <<'EOF'
import torch
print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s)")
EOF
if command -v nvidia-smi >/dev/null; then nvidia-smi -L || true; fi

dest=${OUT:-benchmarks/results}
mkdir -p "$dest"
stamp=$(date +%Y%m%d-%H%M%S)

run() {  # run NAME OPTIONS...: one benchmark run, its table tee'd next to its CSV
    local name=$1
    shift
    echo "gpu_check: benchmark.py $* -> $dest/$stamp-$name.csv"
    "$PY" benchmarks/benchmark.py "$@" --out "$dest/$stamp-$name.csv" 2>&1 | tee "$dest/$stamp-$name.txt"
}

run cuda-quick --device cuda --quick "$@"
run cuda --device cuda "$@"
if [ "${CPU_BASELINE:-0}" = 1 ]; then
    run cpu --device cpu "$@"
fi
echo "gpu_check: done; files in $dest:"
ls -l "$dest"/"$stamp"-*
