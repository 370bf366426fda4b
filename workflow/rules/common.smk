# The grid, derived from the config, and the helpers the rule files share.

import math

import torch


wildcard_constraints:
    trial=r"\d+",
    round=r"\d+",
    replicate=r"\d+",
    experiment=r"ticket|reinit_\d+|random_pruning",


TRIALS = list(range(config["trials"]))
ROUNDS = list(range(config["rounds"] + 1))


def experiments():
    """Directory names of everything trained at each pruning round >= 1."""
    names = ["ticket"]
    if "reinit" in config["controls"]:
        names += [f"reinit_{k}" for k in range(config["reinit_per_ticket"])]
    if "random_pruning" in config["controls"]:
        names.append("random_pruning")
    return names


def grid(filename):
    """``filename`` of every training job of the configured grid."""
    paths = [f"results/trial_{t}/ticket/round_0/{filename}" for t in TRIALS]
    for t in TRIALS:
        for r in ROUNDS[1:]:
            paths += [f"results/trial_{t}/{e}/round_{r}/{filename}" for e in experiments()]
    return paths


def train_params():
    """The config values a training job uses: an edit to any of them reruns training."""
    return dict(
        model=config["model"],
        lr=config["lr"],
        batch_size=config["batch_size"],
        iterations=config["iterations"],
        eval_every=config["eval_every"],
        test_eval=config["test_eval"],
        val_size=config["val_size"],
        patience=config["patience"],
        seed=config["seed"],
        device=config["device"],
    )


# Threads and resources of the jobs (mem_mb, runtime in minutes), sized from Snakemake's benchmark
# files (s, max_rss) on one CPU thread with the real MNIST: a training job of 50K iterations took
# 163-165 s with a core to itself, and up to 666 s when the machine's 2 cores were shared with 6-8
# other busy processes; it peaked at 916-932 MB (750-806 MB in 2,000-iteration jobs since training
# stopped copying the shuffled training set). init, prune and random_mask took 6-7 s and 515-540 MB; aggregate 8 s
# and 560 MB; plot 6 s and 130 MB. The limits leave room for slow or shared nodes and the paper's
# larger grid; a retry (profiles/slurm: retries) gets twice the training memory and time.
CONDA_ENV = "../../envs/lth.yaml"


def _train_gpu():
    """{"gpu": 1} when training jobs run on CUDA (device: cuda, or auto where a GPU is visible):
    with `--resources gpu=N` a local run puts at most N training jobs on the cards at a time.
    Resources never trigger reruns; CPU runs declare none."""
    device = config["device"]
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return {"gpu": 1}
    return {}


TRAIN_GPU = _train_gpu()


def train_mem_mb(wildcards, attempt):
    """MB: 1500 on CPU (measured peak 932); 4000 with CUDA (its libraries: not measured)."""
    return (4000 if TRAIN_GPU else 1500) * attempt


def train_runtime(wildcards, attempt):
    """Minutes: 5 + 1 per 2,000 iterations (30 for the paper's 50K: 11x the 2.7 measured alone,
    2.7x the 11 measured on a crowded machine)."""
    return (5 + math.ceil(config["iterations"] / 2000)) * attempt


# Input functions of the grid's rules (lottery.smk).


def _round(wc):
    return int(wc["round"])


def _prune_inputs(wc):
    r = _round(wc)
    if r < 1:
        raise ValueError("round 0 is the dense network: it has no pruning mask")
    if config["pruning"] == "oneshot":  # straight from the dense net to round r's sparsity
        return {"trained": rules.train_dense.output.model.format(trial=wc.trial)}
    inputs = {"trained": f"results/trial_{wc.trial}/ticket/round_{r - 1}/model.pt"}
    if r > 1:
        inputs["previous_mask"] = f"results/trial_{wc.trial}/ticket/round_{r - 1}/mask.pt"
    return inputs


def _sparse_inputs(wc):
    ticket_mask = rules.prune.output.mask.format(trial=wc.trial, round=wc["round"])
    rewind = rules.train_dense.output.rewind.format(trial=wc.trial)
    if wc.experiment == "ticket":
        return {"init": rewind, "mask": ticket_mask}
    if wc.experiment == "random_pruning":
        mask = rules.random_mask.output.mask.format(trial=wc.trial, round=wc["round"])
        return {"init": rewind, "mask": mask}
    # reinit_k: the ticket's mask, a fresh random initialisation
    init = rules.init_reinit.output.weights.format(
        trial=wc.trial, replicate=wc.experiment.split("_")[1], round=wc["round"]
    )
    return {"init": init, "mask": ticket_mask}
