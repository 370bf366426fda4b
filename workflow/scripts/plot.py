"""The figures."""

import pandas as pd

from lth.jobs import run_job
from lth.plots import PAPER_LEVELS, plot_accuracy, plot_curves, plot_early_stop, plot_train_accuracy


def main(log):
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    summary = pd.read_csv(inp.summary)
    curves = pd.read_csv(inp.curves)
    plot_accuracy(summary, out.accuracy)
    plot_early_stop(summary, out.early_stop)
    plot_train_accuracy(summary, out.train_accuracy)
    plot_curves(curves, summary, out.curves, levels=PAPER_LEVELS)
    log(f"wrote {', '.join(out)}")


run_job(main, snakemake.log[0])  # noqa: F821
