#!/usr/bin/env bash
# Redraw docs/rulegraph.png (shown in the README) from `snakemake --rulegraph` of the default
# config. Needs graphviz's `dot` (apt-get install graphviz). tests/test_report.py checks that
# docs/rulegraph.dot is current.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m snakemake --rulegraph --configfile config.yaml --workflow-profile none 2>/dev/null > docs/rulegraph.dot
dot -Tpng -Gdpi=110 docs/rulegraph.dot -o docs/rulegraph.png
echo "wrote docs/rulegraph.dot and docs/rulegraph.png"
