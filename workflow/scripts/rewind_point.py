"""Late rewinding: the dense run's weights at iteration k, by training its first k iterations."""

from pathlib import Path

import torch

from lth.experiment import job_train_config, make_rewind_point
from lth.jobs import run_job


def main(log):
    sm = snakemake  # noqa: F821
    p, trial, k = sm.params, int(sm.wildcards.trial), int(sm.wildcards.iteration)
    torch.set_num_threads(sm.threads)
    cfg = job_train_config(p, trial)
    make_rewind_point(p.model, sm.input.init, Path(sm.input.data[0]).parent, cfg, p.val_size, p.seed, k,
                      sm.output.weights)
    log(f"trial {trial}: the dense run's weights at iteration {k} of {p.iterations}")


run_job(main, snakemake.log[0])  # noqa: F821
