"""Prune the previous round's trained weights: the next round's mask."""

from lth.experiment import make_ticket_mask
from lth.jobs import run_job
from lth.pruning import PruneConfig


def main(log):
    p, inp = snakemake.params, snakemake.input  # noqa: F821
    cfg = PruneConfig(rate=p.prune_rate, output_rate=p.output_prune_rate, scope=p.prune_scope)
    meta = make_ticket_mask(
        p.model, inp.trained, inp.get("previous_mask"), int(snakemake.wildcards["round"]), cfg,  # noqa: F821
        snakemake.output.mask,  # noqa: F821
    )
    log(f"{p.pruning} pruning, round {meta['round']}: {meta['percent_remaining']:.2f}% of weights remain")


run_job(main, snakemake.log[0])  # noqa: F821
