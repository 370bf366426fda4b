"""One experiment, wired from plain functions: each function is one workflow job.

The workflow's scripts only translate Snakemake's ``input``/``output``/``params`` into calls of
these functions, so the whole experiment can also run (and be tested) without Snakemake.

Seeds: the ticket of trial t starts from ``init_model(model, seed + t)``. Everything else gets
its own stream derived by hashing a label with the seed and trial (``derive_seed``), so no
control ever shares a seed with a ticket: the data order of trial t (shared by all rounds and
controls of that trial, so that they differ only in what is studied), each reinitialisation
(one per trial, replicate and round) and each random mask.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import platform
from pathlib import Path

import torch

from . import checkpoint
from .data import load_split
from .errors import LTHError
from .fileio import atomic_path, write_json
from .models import get_spec, init_model
from .pruning import MagnitudePruning, PruneConfig, dense_masks, percent_remaining, random_masks_like
from .training import TrainConfig, train

CURVE_COLUMNS = ["iteration", "train_loss", "val_loss", "val_accuracy", "test_accuracy"]


def derive_seed(label: str, *parts: int) -> int:
    digest = hashlib.sha256(":".join([label, *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def ticket_seed(seed: int, trial: int) -> int:
    return seed + trial


def reinit_seed(seed: int, trial: int, replicate: int, round_: int) -> int:
    """A fresh draw for every (trial, replicate, round): the control's inits are independent."""
    return derive_seed("reinit", seed, trial, replicate, round_)


def data_seed(seed: int, trial: int) -> int:
    return derive_seed("data", seed, trial)


def random_mask_seed(seed: int, trial: int, round_: int) -> int:
    return derive_seed("random_pruning", seed, trial, round_)


NUMERICS_MODULES = ("models.py", "pruning.py", "sparse.py", "sparse_kernels.py", "training.py")


def code_version() -> str:
    """A short hash of the modules that determine the numbers (model, pruning, training loop,
    sparse kernels).

    Every result records it; the aggregate step warns when results of one grid come from
    different versions. (The workflow reruns a job when any code its script runs changes, by the
    rules' `code` param, lth.sources; this record is for the reader of a result.json.)
    """
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent / name for name in NUMERICS_MODULES):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def cpu_numerics() -> dict:
    """What decides a CPU run's low bits besides the code: the CPU, the instruction set PyTorch's
    kernels use on it, and the thread count. The same code and torch build give different bits
    on an AVX2-only CPU and on the one that made results/paper, and with 2 threads instead of 1
    (docs/method.md, Determinism); results record these so that such runs can be told apart."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}


# --- jobs ----------------------------------------------------------------------------------


def make_init(model_name: str, seed: int, out: str | os.PathLike) -> None:
    """theta0: a freshly initialised network."""
    model = init_model(model_name, seed)
    checkpoint.save_weights(out, model_name, model.state_dict(), {"seed": seed})


def make_ticket_mask(
    model_name: str,
    trained: str | os.PathLike,
    previous_mask: str | os.PathLike | None,
    round_: int,
    prune_cfg: PruneConfig,
    out: str | os.PathLike,
) -> dict:
    """Prune the trained weights of the previous round (or, one-shot, of the dense run).

    ``previous_mask`` None means start from the dense mask (round 1, or one-shot pruning).
    """
    if round_ < 1:
        raise LTHError(f"pruning round must be >= 1, got {round_}")
    spec = get_spec(model_name)
    state = checkpoint.load_weights(trained, model_name)
    stopped = checkpoint.weights_meta(trained).get("leaf_stop_iteration")
    if stopped is not None:  # a later round must prune the weights at T (lth.lineage.job_leaf_patience)
        raise LTHError(
            f"{trained}: round {round_} would prune weights that stopped early at iteration {stopped} "
            "(leaf_patience: the job was a leaf, the last round, when it ran); rerun that job, which trains all "
            "iterations now (Snakemake does when its params change: keep 'params' in --rerun-triggers)"
        )
    weights = {n: state[n] for n in spec.prunable(spec.build())}
    masks = dense_masks(weights) if previous_mask is None else checkpoint.load_masks(previous_mask, model_name)
    new = MagnitudePruning(prune_cfg, spec.output_layer).prune(weights, masks, round_)
    meta = {"round": round_, "percent_remaining": percent_remaining(new)}
    checkpoint.save_masks(out, model_name, new, meta)
    return meta


def make_random_mask(model_name: str, ticket_mask: str | os.PathLike, seed: int, out: str | os.PathLike) -> dict:
    """A random mask with the ticket's per-layer sparsity (the random-pruning control)."""
    masks = random_masks_like(checkpoint.load_masks(ticket_mask, model_name), seed)
    meta = {"seed": seed, "percent_remaining": percent_remaining(masks)}
    checkpoint.save_masks(out, model_name, masks, meta)
    return meta


def job_train_config(settings, trial: int, start_iteration: int = 0) -> TrainConfig:
    """The TrainConfig of a training job of ``trial`` from its settings (a workflow job's params:
    anything with the config keys as attributes). ``start_iteration``: the rewind iteration k of a
    pruned network (late rewinding trains iterations k+1..T, continuing the data order).
    ``test_every`` (the cadence of ``test_eval: minima``) and ``leaf_patience`` (given to leaf
    jobs only, ``lth.lineage.job_leaf_patience``) may be absent or None."""
    test_every = getattr(settings, "test_every", None)
    return TrainConfig(
        lr=settings.lr,
        batch_size=settings.batch_size,
        iterations=settings.iterations,
        eval_every=settings.eval_every,
        test_eval=settings.test_eval,
        **({} if test_every is None else {"test_every": test_every}),
        patience=settings.patience,
        leaf_patience=getattr(settings, "leaf_patience", None),
        data_seed=data_seed(settings.seed, trial),
        device=settings.device,
        kernels=settings.kernels,
        start_iteration=start_iteration,
    )


def make_rewind_point(
    model_name: str,
    init: str | os.PathLike,
    data_dir: str | os.PathLike,
    cfg: TrainConfig,
    val_size: int,
    split_seed: int,
    iteration: int,
    out: str | os.PathLike,
) -> None:
    """The dense run's weights after ``iteration`` steps (late rewinding), by running its first
    ``iteration`` steps again: the same data order and arithmetic give the same bits, since
    evaluations change neither the weights nor the data order (a test checks it against
    ``train``'s own snapshot). This lets every rewind iteration share one dense run."""
    if not 0 < iteration < cfg.iterations:
        raise LTHError(f"rewind_iteration={iteration} must be between 1 and iterations-1={cfg.iterations - 1}")
    model = get_spec(model_name).build()
    model.load_state_dict(checkpoint.load_weights(init, model_name))
    data = load_split(data_dir, val_size, split_seed)
    # One evaluation at the end (eval_every=iteration) and no early stop: only the weights matter.
    short = dataclasses.replace(cfg, iterations=iteration, eval_every=iteration, patience=None, leaf_patience=None,
                                save_at=None, start_iteration=0)
    train(model, None, data, short)
    checkpoint.save_weights(out, model_name, {k: v.cpu() for k, v in model.state_dict().items()},
                            {"iteration": iteration})


def write_curve(path: str | os.PathLike, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(row[k]) if isinstance(row[k], float) else row[k] for k in CURVE_COLUMNS})


def run_training(
    model_name: str,
    init: str | os.PathLike,
    mask: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    cfg: TrainConfig,
    val_size: int,
    split_seed: int,
    out_model: str | os.PathLike,
    out_curve: str | os.PathLike,
    out_result: str | os.PathLike,
    out_snapshot: str | os.PathLike | None = None,
    labels: dict | None = None,
    log=None,
) -> dict:
    """Train from ``init`` under ``mask`` (None: dense) and write weights, curve and result."""
    state = checkpoint.load_weights(init, model_name)
    masks = checkpoint.load_masks(mask, model_name) if mask is not None else None
    data = load_split(data_dir, val_size, split_seed)
    model = get_spec(model_name).build()
    model.load_state_dict(state)
    spec = get_spec(model_name)
    params = dict(model.named_parameters())
    pct = percent_remaining(masks if masks is not None else dense_masks({n: params[n] for n in spec.prunable(model)}))

    def log_row(row):
        if log is not None:
            log(
                f"iteration {row['iteration']:>6}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
                f"val_acc {row['val_accuracy']:.4f}  test_acc {row['test_accuracy']:.4f}  remaining {pct:.1f}%"
            )

    result = train(model, masks, data, cfg, log=log_row)
    if out_snapshot is not None:
        if result.snapshot is None:
            raise LTHError("a rewind snapshot was requested but training did not save one (rewind_iteration?)")
        checkpoint.save_weights(out_snapshot, model_name, {k: v.cpu() for k, v in result.snapshot.items()},
                                {"iteration": cfg.save_at})
    # A leaf that stopped early says so in its weights file: a later round must never prune from
    # it (make_ticket_mask refuses), e.g. after `--config rounds=N+1` where its rerun was skipped.
    leaf_stop = cfg.leaf_patience is not None and result.final["iteration"] < cfg.iterations
    checkpoint.save_weights(out_model, model_name, {k: v.cpu() for k, v in model.state_dict().items()},
                            {"leaf_stop_iteration": result.final["iteration"]} if leaf_stop else None)
    write_curve(out_curve, result.curve)
    summary = {
        **(labels or {}),
        # What this result was trained with: the aggregate step refuses results whose settings
        # differ from the config (see lth.aggregate.check_fresh).
        "train_config": {
            "model": model_name,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "iterations": cfg.iterations,
            "start_iteration": cfg.start_iteration,
            "eval_every": cfg.eval_every,
            "test_eval": cfg.test_eval,
            "test_every": cfg.test_every if cfg.test_eval == "minima" else None,
            "patience": cfg.patience,
            "leaf_patience": cfg.leaf_patience,  # this job's: None unless it is a leaf (lth.lineage)
            "val_size": val_size,
            "seed": split_seed,
        },
        "percent_remaining": pct,
        "early_stop_iteration": result.early_stop["iteration"],
        "early_stop_val_loss": result.early_stop["val_loss"],
        "early_stop_val_accuracy": result.early_stop["val_accuracy"],
        "early_stop_test_accuracy": result.early_stop["test_accuracy"],
        "final_iteration": result.final["iteration"],
        "final_val_loss": result.final["val_loss"],
        "final_test_accuracy": result.final["test_accuracy"],
        "final_train_accuracy": result.final_train_accuracy,
        "iterations_run": result.iterations_run,
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "device": str(next(model.parameters()).device),
        "cpu": cpu_numerics(),
        "kernel": result.kernel,  # the kernels used (cfg.kernels: dense, sparse or auto): dense or sparse
    }
    write_json(out_result, summary)
    if log is not None:
        log(
            f"early stop at iteration {summary['early_stop_iteration']}: val_loss {summary['early_stop_val_loss']:.4f} "
            f"test_acc {summary['early_stop_test_accuracy']:.4f}; final test_acc {summary['final_test_accuracy']:.4f} "
            f"({pct:.1f}% of weights remaining)"
        )
    return summary


def read_result(path: str | os.PathLike) -> dict:
    with open(path) as fh:
        return json.load(fh)
