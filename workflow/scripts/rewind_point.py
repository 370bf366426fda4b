"""Late rewinding: the dense run's weights at iteration k, by training its first k iterations."""

from pathlib import Path

import torch

from lth.experiment import data_seed, make_rewind_point
from lth.jobs import run_job
from lth.training import TrainConfig


def main(log):
    sm = snakemake  # noqa: F821
    p, trial, k = sm.params, int(sm.wildcards.trial), int(sm.wildcards.iteration)
    torch.set_num_threads(sm.threads)
    cfg = TrainConfig(lr=p.lr, batch_size=p.batch_size, iterations=p.iterations, eval_every=p.eval_every,
                      test_eval=p.test_eval, patience=p.patience, data_seed=data_seed(p.seed, trial), device=p.device,
                      kernels=p.kernels)
    make_rewind_point(p.model, sm.input.init, Path(sm.input.data[0]).parent, cfg, p.val_size, p.seed, k,
                      sm.output.weights)
    log(f"trial {trial}: the dense run's weights at iteration {k} of {p.iterations}")


run_job(main, snakemake.log[0])  # noqa: F821
