"""One training job: dense (round 0), a ticket, or a control."""

from pathlib import Path

import torch

from lth.experiment import job_train_config, run_training
from lth.jobs import run_job


def main(log):
    sm = snakemake  # noqa: F821
    p, wc = sm.params, sm.wildcards
    torch.set_num_threads(sm.threads)
    trial, round_ = int(wc.trial), int(wc.get("round", 0))  # train_dense: round 0
    experiment = wc.get("experiment", "ticket")  # the dense run is round 0 of the ticket
    name, _, replicate = experiment.partition("_") if experiment.startswith("reinit_") else (experiment, "", "0")
    # A pruned network rewound to iteration k trains k+1..T (train_sparse's rewind_iteration).
    cfg = job_train_config(p, trial, start_iteration=p.get("rewind_iteration", 0))
    log(f"{experiment} trial {trial} round {round_}: {p.model}, {cfg}")
    run_training(
        p.model,
        sm.input.init,
        sm.input.get("mask"),
        Path(sm.input.data[0]).parent,
        cfg,
        val_size=p.val_size,
        split_seed=p.seed,
        out_model=sm.output.model,
        out_curve=sm.output.curve,
        out_result=sm.output.result,
        labels={"experiment": name, "replicate": int(replicate), "trial": trial, "round": round_},
        log=log,
    )


run_job(main, snakemake.log[0])  # noqa: F821
