"""settings.json: the settings a lineage key stands for (lth.lineage)."""

from lth.fileio import write_json
from lth.jobs import run_job


def main(log):
    write_json(snakemake.output.settings, snakemake.params.settings)  # noqa: F821
    log(f"{snakemake.output.settings}: {snakemake.params.settings}")  # noqa: F821


run_job(main, snakemake.log[0])  # noqa: F821
