# The Lottery Ticket Hypothesis (Frankle & Carbin, ICLR 2019) on MNIST, as a Snakemake DAG:
# download MNIST -> init theta0 -> train dense -> prune -> rewind + retrain (rounds x trials),
# with the controls, -> aggregate -> plot; and studies that compare variants. See README.md.

from snakemake.utils import min_version, validate

min_version("8.0")


# The workflow's own package, importable without an install (e.g. in the conda env of
# `--sdm conda`), also when this workflow is a module of another one: here, and in every job.
include: "workflow/rules/package.smk"


# The repository's config.yaml, wherever the run's working directory is (`--directory DIR`);
# `--configfile` and `--config` are applied on top of it. (As a module with `config:`, Snakemake
# skips this: the schema's defaults, the same values, fill in what the other workflow leaves out.)
configfile: OWN_CONFIGFILE


report: "workflow/report/workflow.rst"


# Validate before any job starts. lth.config gives a one-line message that names the key, the
# value and what is allowed; snakemake's validate then fills in the schema's defaults.
from lth.config import check_config, load_schema
from lth.errors import LTHError

SCHEMA = load_schema(workflow.source_path("workflow/schemas/config.schema.yaml"))
try:
    check_config(config, SCHEMA)
except LTHError as err:
    raise ValueError(f"config error: {err}") from None
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/lottery.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/study.smk"


# The rules that run where Snakemake runs, not as cluster jobs (the download needs the internet;
# the others are small), say so themselves (`localrule: True`): a `localrules:` list keeps its
# names when a module's rules are renamed (`use rule * from lth as lth_*`), and then names none.


# The default target: the current configuration's tables and figures, or, with a study, the
# study's comparison (each variant's jobs; `snakemake results/summary.csv` still builds the former).
rule all:
    default_target: True
    input:
        STUDY_OUTPUTS if STUDY else [*rules.aggregate.output, *rules.plot.output],
