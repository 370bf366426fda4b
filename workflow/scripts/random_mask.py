"""Random-pruning control: a random mask with the ticket's per-layer sparsity."""

from lth.experiment import make_random_mask
from lth.jobs import run_job


def main(log):
    p = snakemake.params  # noqa: F821
    meta = make_random_mask(p.model, snakemake.input.ticket_mask, p.seed, snakemake.output.mask)  # noqa: F821
    log(f"random mask, seed {p.seed}: {meta['percent_remaining']:.2f}% of weights remain")


run_job(main, snakemake.log[0])  # noqa: F821
