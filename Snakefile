# The Lottery Ticket Hypothesis (Frankle & Carbin, ICLR 2019) on MNIST, as a Snakemake DAG:
# download MNIST -> init theta0 -> train dense -> prune -> rewind + retrain (rounds x trials),
# with the controls, -> aggregate -> plot. See README.md.

from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config.yaml"


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
    input:
        rules.aggregate.output,
        rules.plot.output,
    default_target: True
