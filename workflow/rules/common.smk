# The configurations of this DAG (the current one and a study's variants), their lineages, and
# the helpers the rule files share. Every job's path is keyed by the settings that determine it
# (lth.lineage), so the params of a job are looked up from its path's keys: a job's settings never
# change under its path, and configurations that agree on a job share it.

import math

import torch
from lth import lineage as L
from lth.sources import code_hash
from lth.studies import study_variants, varied_settings

# The current configuration and, with a study, each variant (checked like the config itself).
try:
    VARIANTS = study_variants(config, SCHEMA)
except LTHError as err:
    raise ValueError(f"config error: {err}") from None
STUDY = config["study"]["name"] if VARIANTS else None
CONFIGS = [config, *VARIANTS.values()]

# key -> one configuration of that lineage (they agree on every setting the key covers).
DENSE, PRUNE = {}, {}
for _c in CONFIGS:
    _lin = L.lineage(_c)
    DENSE.setdefault(_lin.dense, _c)
    PRUNE.setdefault(_lin.prune, _c)
# prune key -> the last round trained under it in this DAG: its iterative ticket is a leaf.
LAST_ROUND = L.last_rounds(CONFIGS)


wildcard_constraints:
    dense="|".join(DENSE),
    prune="|".join(PRUNE),
    trial=r"\d+",
    round=r"\d+",
    replicate=r"\d+",
    iteration=r"\d+",
    experiment=r"ticket|reinit_\d+|random_pruning",


def script_code(script):
    """Every rule's `code` param: a hash of its script and of the lth modules the script imports
    (lth.sources), without comments and docstrings. With the workflow profile's rerun triggers
    (no `code`: that one goes by the script's modification time), a job reruns when the code it
    runs changes, a library module included, and a fresh clone of the same code reruns nothing."""
    # The script as Snakemake runs it (this workflow's own, also from a module or a git source)
    # and the lth package of package.smk, which the jobs import.
    return code_hash(workflow.source_path(f"../scripts/{script}"), LTH_PACKAGE)


def dense_cfg(wc):
    return DENSE[wc.dense]


def prune_cfg(wc):
    return PRUNE[wc.prune]


def setting(key, of=dense_cfg):
    """A params function: the value of config ``key`` for the job's lineage."""
    return lambda wc: of(wc)[key]


TRAIN_KEYS = (
    "model",
    "lr",
    "batch_size",
    "iterations",
    "eval_every",
    "test_eval",
    "val_size",
    "patience",
    "seed",
    "device",
    "kernels",
)


def train_params():
    """The settings a training job uses, from its lineage (they are also what its key hashes);
    test_every only under test_eval: minima (None otherwise, lth.lineage.test_cadence)."""
    return {**{k: setting(k) for k in TRAIN_KEYS}, "test_every": lambda wc: L.test_cadence(dense_cfg(wc))}


def leaf_patience(wc):
    """A pruned job's stopping rule: leaf_patience for a leaf of this DAG, None for a job that a
    later round prunes from (lth.lineage.job_leaf_patience). Through params, so that a run with
    more rounds reruns the former last round's ticket in full."""
    return L.job_leaf_patience(prune_cfg(wc), wc.experiment, _round(wc), LAST_ROUND[wc.prune])


# What every result.json records as its training settings (lth.aggregate.check_fresh).
train_settings = L.train_settings


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
    Resources never trigger reruns; CPU runs declare none. (`device` is one for the whole DAG.)"""
    if L.resolved_device(config["device"]) == "cuda":
        return {"gpu": 1}
    return {}


TRAIN_GPU = _train_gpu()


def train_mem_mb(wildcards, attempt):
    """MB: 1500 on CPU (measured peak 932); 4000 with CUDA (its libraries: not measured)."""
    return (4000 if TRAIN_GPU else 1500) * attempt


def train_runtime(wildcards, attempt):
    """Minutes: 5 + 1 per 2,000 iterations (30 for the paper's 50K: 11x the 2.7 measured alone,
    2.7x the 11 measured on a crowded machine)."""
    return (5 + math.ceil(dense_cfg(wildcards)["iterations"] / 2000)) * attempt


# Input functions of the grid's rules (lottery.smk).


def _round(wc):
    return int(wc["round"])


def _rewind_point(wc):
    """The weights a pruned network is reset to: theta0, or the dense run's weights at
    iteration k (late rewinding)."""
    k = prune_cfg(wc)["rewind_iteration"]
    if k == 0:
        return rules.init.output.weights.format(dense=wc.dense, trial=wc.trial)
    return rules.rewind_point.output.weights.format(dense=wc.dense, trial=wc.trial, iteration=k)


def _prune_inputs(wc):
    r = _round(wc)
    if r < 1:
        raise ValueError("round 0 is the dense network: it has no pruning mask")
    inputs = {"settings": rules.prune_settings.output.settings.format(dense=wc.dense, prune=wc.prune)}
    dense_model = rules.train_dense.output.model.format(dense=wc.dense, trial=wc.trial)
    if prune_cfg(wc)["pruning"] == "oneshot" or r == 1:  # one-shot: straight from the dense net
        return {**inputs, "trained": dense_model}
    previous = dict(wc.items(), round=r - 1)
    return {
        **inputs,
        "trained": rules.train_sparse.output.model.format(**previous, experiment="ticket"),
        "previous_mask": rules.prune.output.mask.format(**previous),
    }


def _sparse_inputs(wc):
    ticket_mask = rules.prune.output.mask.format(**wc)
    if wc.experiment == "ticket":
        return {"init": _rewind_point(wc), "mask": ticket_mask}
    if wc.experiment == "random_pruning":
        return {"init": _rewind_point(wc), "mask": rules.random_mask.output.mask.format(**wc)}
    # reinit_j: the ticket's mask, a fresh random initialisation
    init = rules.init_reinit.output.weights.format(
        dense=wc.dense, trial=wc.trial, replicate=wc.experiment.split("_")[1], round=wc["round"]
    )
    return {"init": init, "mask": ticket_mask}


# Input functions of a study's rules (study.smk).


def _study_inputs(filename):
    """``filename`` of every training job of every variant, in variant order."""
    return {name: L.grid(c, filename) for name, c in VARIANTS.items()}
