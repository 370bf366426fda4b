"""A study's comparison figure."""

import pandas as pd

from lth.jobs import run_job
from lth.plots import plot_comparison


def main(log):
    p = snakemake.params  # noqa: F821
    table = pd.read_csv(snakemake.input.table)  # noqa: F821
    plot_comparison(table, snakemake.output.comparison, f"study {p.study}: {', '.join(p.varied)} varied")  # noqa: F821
    log(f"wrote {snakemake.output.comparison}")  # noqa: F821


run_job(main, snakemake.log[0])  # noqa: F821
