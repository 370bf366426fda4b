# The Lottery Ticket Hypothesis (Frankle & Carbin, ICLR 2019) on MNIST, as a Snakemake DAG:
# download MNIST -> init theta0 -> train dense -> prune -> rewind + retrain (rounds x trials),
# with the controls, -> aggregate -> plot. See README.md.

import os
import sys

from snakemake.utils import min_version, validate

min_version("8.0")

# The workflow's own package, importable without an install (e.g. in the conda env of
# `--sdm conda`): here, and in every job through PYTHONPATH (set, not required: no envvars).
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
if SRC not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# Validate before any job starts. lth.config gives a one-line message that names the key, the
# value and what is allowed; snakemake's validate then fills in the schema's defaults.
from lth.config import check_config, load_schema
from lth.errors import LTHError

try:
    check_config(config, load_schema(workflow.source_path("workflow/schemas/config.schema.yaml")))
except LTHError as err:
    raise ValueError(f"config error: {err}") from None
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/lottery.smk"
include: "workflow/rules/report.smk"


localrules:
    download_mnist,
    aggregate,
    plot,


rule all:
    default_target: True
    input:
        rules.aggregate.output,
        rules.plot.output,
