"""Where every job's files live: a path keyed by the settings that determine them (its lineage).

Two configurations that agree on a job's settings share that job's files, and no finished file is
ever overwritten by a different configuration: a setting that changes a job changes its path.

    results/runs/<dense>/settings.json                        what the dense key stands for
    results/runs/<dense>/trial_<t>/init.pt                    theta0 of trial t
    results/runs/<dense>/trial_<t>/dense/                     the dense run: model.pt, curve.csv, result.json
    results/runs/<dense>/trial_<t>/rewind_<k>.pt              weights at iteration k (late rewinding, k > 0)
    results/runs/<dense>/trial_<t>/reinit_<j>/round_<r>.pt    the reinit control's fresh initialisations
    results/runs/<dense>/<prune>/settings.json                what the prune key stands for
    results/runs/<dense>/<prune>/trial_<t>/round_<r>/mask.pt  the ticket's mask after round r
    results/runs/<dense>/<prune>/trial_<t>/round_<r>/<experiment>/   ticket, reinit_<j>, random_pruning:
                                                              model.pt, curve.csv, result.json (+ mask.pt)

``<dense>`` is ``dense_`` + 8 hex digits of the sha256 of the dense settings (model, training,
data split, seed, device, kernels): everything the dense run, theta0 and the reinit inits depend
on. ``<prune>`` is ``prune_`` + 8 hex digits of the hash of the dense key and the pruning
settings (rates, scope, iterative or one-shot, rewind iteration). The number of trials and of
rounds is not part of any key: more trials or rounds add jobs beside the existing ones. The
settings each key stands for are written beside the outputs (``settings.json``), as open_lth
writes its hyperparameters beside each hashed run.

Two settings enter a key only where they do something, so that the keys of every configuration
that leaves them out are the keys it had before they existed: ``test_every`` (the cadence of
``test_eval: minima``) enters the dense key under ``minima`` only, and ``leaf_patience`` the
pruning key when it is set (it never stops a dense run, so the dense runs stay shared with the
configurations that train every leaf in full).

Leaves (``job_leaf_patience``): a job whose weights no later job reads may stop early under
``leaf_patience``. Whether the iterative ticket of round r is one depends on the rounds of every
configuration of the DAG that shares its pruning key (``last_rounds``), which no key holds; so
the stopping rule reaches each job through its params, and a run with more rounds reruns the
former last round's ticket in full (and the pruning step refuses weights that stopped early).

These are plain functions of a checked config (``lth.config.check_config``): the Snakefile, the
tests and the command-line tools (``lth.summarize``, ``lth.store``) compute the same paths.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import LTHError

RUNS = "results/runs"

# The settings that determine the dense run (and theta0, and the reinit control's inits).
DENSE_KEYS = (
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
# What pruning adds to them. The controls need no key of their own: a control's job is determined
# by its round's ticket mask (this lineage), its kind and its replicate, which its path names.
PRUNE_KEYS = ("prune_rate", "output_prune_rate", "prune_scope", "pruning", "rewind_iteration")

# Path patterns, with Snakemake's wildcards.
TRIAL_DIR = RUNS + "/{dense}/trial_{trial}"
ROUND_DIR = RUNS + "/{dense}/{prune}/trial_{trial}/round_{round}"
JOB_DIR = ROUND_DIR + "/{experiment}"
DENSE_JOB_DIR = TRIAL_DIR + "/dense"


def resolved_device(device: str) -> str:
    """``auto`` as this machine resolves it: the device is part of the key (CPU and GPU runs
    differ in their last bits, so they are different results)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _digest(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Lineage:
    """The two keys of one configuration and the settings they stand for."""

    dense: str
    prune: str
    dense_settings: dict
    prune_settings: dict

    @property
    def prune_dir(self) -> str:
        return f"{RUNS}/{self.dense}/{self.prune}"

    @property
    def dense_dir(self) -> str:
        return f"{RUNS}/{self.dense}"


def resolve_key(run_dir, key: str) -> tuple[str, str | None]:
    """(dense key, prune key or None) of a lineage named as ``dense_<h>``, ``prune_<h>`` (found
    under its dense key) or ``dense_<h>/prune_<h>``, checked to exist under ``run_dir``'s store."""
    runs = Path(run_dir) / RUNS
    dense, _, prune = key.strip("/").partition("/")
    if dense.startswith("prune_") and not prune:
        parents = [p.parent.name for p in runs.glob(f"dense_*/{dense}")]
        dense, prune = (parents[0], dense) if len(parents) == 1 else ("", dense)
    if not dense.startswith("dense_") or not (runs / dense / prune).is_dir():
        raise LTHError(f"no lineage {key!r} under {runs} (`python3 -m lth.store list` shows what is there)")
    return dense, prune or None


def test_cadence(config: dict) -> int | None:
    """The ``test_every`` a job uses: the config's under ``test_eval: minima``, else None (the
    other modes have no cadence, so the key and the params do not change with it)."""
    return config["test_every"] if config.get("test_eval") == "minima" else None


def dense_settings(config: dict) -> dict:
    settings = {k: config[k] for k in DENSE_KEYS if k in config}
    if test_cadence(config) is not None:
        settings["test_every"] = test_cadence(config)
    settings["device"] = resolved_device(config["device"])
    return settings


def train_settings(config: dict) -> dict:
    """What every result.json of a configuration records as its training settings
    (``train_config``, checked by lth.aggregate.check_fresh): the dense settings but the device and
    the kernels (result.json records the device and kernel each job used), with ``test_every``."""
    settings = {k: config[k] for k in DENSE_KEYS if k not in ("device", "kernels")}
    return {**settings, "test_every": test_cadence(config)}


def lineage(config: dict) -> Lineage:
    dense = dense_settings(config)
    dense_key = "dense_" + _digest(dense)
    prune = {"dense": dense_key, **{k: config[k] for k in PRUNE_KEYS}}
    if config.get("leaf_patience") is not None:
        prune["leaf_patience"] = config["leaf_patience"]
    return Lineage(dense_key, "prune_" + _digest(prune), dense, prune)


def is_leaf(pruning: str, experiment: str, round_: int, last_round: int) -> bool:
    """Whether no later job reads this job's weights: the controls (reinit_<j>, random_pruning),
    a one-shot ticket, and the iterative ticket of ``last_round``. The dense run (round 0) never
    is: every round prunes from it or from its descendants, and late rewinding retrains it."""
    if round_ == 0:
        return False
    if experiment != "ticket" or pruning == "oneshot":
        return True
    return round_ >= last_round


def last_rounds(configs) -> dict[str, int]:
    """Pruning key -> the last round any of ``configs`` (a DAG's configurations: the current one
    and a study's variants) trains under it: only that round's iterative ticket is a leaf."""
    last: dict[str, int] = {}
    for config in configs:
        key = lineage(config).prune
        last[key] = max(last.get(key, 0), config["rounds"])
    return last


def job_leaf_patience(config: dict, experiment: str, round_: int, last_round: int) -> int | None:
    """The ``leaf_patience`` a pruned job trains with (its params): the config's for a leaf, None
    for every other job (which trains all iterations). ``config``: one of the job's lineage."""
    if config.get("leaf_patience") is None or not is_leaf(config["pruning"], experiment, round_, last_round):
        return None
    return config["leaf_patience"]


def experiments(config: dict) -> list[str]:
    """Folder names of everything trained at each pruning round >= 1."""
    names = ["ticket"]
    if "reinit" in config["controls"]:
        names += [f"reinit_{k}" for k in range(config["reinit_per_ticket"])]
    if "random_pruning" in config["controls"]:
        names.append("random_pruning")
    return names


def dense_job_dir(config: dict, trial: int) -> str:
    return DENSE_JOB_DIR.format(dense=lineage(config).dense, trial=trial)


def job_dir(config: dict, trial: int, experiment: str, round_: int) -> str:
    """The folder of one training job: ``experiment`` is ticket, reinit_<j> or random_pruning;
    round 0 is the dense run (experiment ticket)."""
    if round_ == 0:
        if experiment != "ticket":
            raise ValueError(f"round 0 is the dense run; there is no {experiment} at round 0")
        return dense_job_dir(config, trial)
    lin = lineage(config)
    return JOB_DIR.format(dense=lin.dense, prune=lin.prune, trial=trial, round=round_, experiment=experiment)


def dense_trials(config: dict) -> range:
    """The trials with a dense run: the pruning trials, then the ``dense_seeds`` dense-only seeds
    (trials ``trials`` .. ``trials + dense_seeds - 1``), which start no pruning chain. Numbered
    after the pruning trials, a dense-only seed is the same job as that trial's dense run in a
    configuration with more trials, so raising ``trials`` later reuses it."""
    return range(config["trials"] + config.get("dense_seeds", 0))


def grid_dirs(config: dict) -> list[str]:
    """The folder of every training job of a configuration, dense runs first (the dense-only
    seeds' too), then the pruning trials' rounds."""
    lin, trials = lineage(config), range(config["trials"])  # one hash for the whole grid
    dirs = [DENSE_JOB_DIR.format(dense=lin.dense, trial=t) for t in dense_trials(config)]
    for t in trials:
        for r in range(1, config["rounds"] + 1):
            dirs += [JOB_DIR.format(dense=lin.dense, prune=lin.prune, trial=t, round=r, experiment=e)
                     for e in experiments(config)]
    return dirs


def grid(config: dict, filename: str) -> list[str]:
    """``filename`` (model.pt, curve.csv, result.json) of every training job of a configuration."""
    return [str(PurePosixPath(d) / filename) for d in grid_dirs(config)]
