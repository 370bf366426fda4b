"""The figures."""

import pandas as pd

from lth.jobs import run_job
from lth.plots import plot_figures


def main(log):
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    summary = pd.read_csv(inp.summary)
    curves = pd.read_csv(inp.curves)
    plot_figures(summary, curves, accuracy=out.accuracy, early_stop=out.early_stop,
                 train_accuracy=out.train_accuracy, curves_png=out.curves)
    log(f"wrote {', '.join(out)}")


run_job(main, snakemake.log[0])  # noqa: F821
