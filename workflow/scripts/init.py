"""theta0 of one trial (or one reinitialisation)."""

from lth.experiment import make_init
from lth.jobs import run_job


def main(log):
    p = snakemake.params  # noqa: F821
    make_init(p.model, p.seed, snakemake.output.weights)  # noqa: F821
    log(f"initialised {p.model} with seed {p.seed}")


run_job(main, snakemake.log[0])  # noqa: F821
