"""Item 7: the kernels per paper level (100, 51.3, 21.1, 7.0, 3.6, 1.9 % of the weights remaining):
a training step, a validation evaluation (5K images) and a test evaluation (10K images), with the
dense and the sparse kernels, all interleaved in every repetition."""

from __future__ import annotations

import time

import torch

from lth.models import init_model
from lth.pruning import MagnitudePruning, PruneConfig, dense_masks, percent_remaining
from lth.training import TrainConfig, _DenseKernels, _Masker, _SparseKernels

from .common import BATCH, LR, Run, measure, median

# Rounds of the paper's pruning (20 % per round in the hidden layers, 10 % in the output layer)
# whose levels the table shows: 100, 51.3, 21.1, 7.0, 3.6 and 1.9 % of the weights remaining.
PAPER_ROUNDS = (0, 3, 7, 12, 15, 18)
RSS_ROUNDS = (0, 7, 18)
KERNELS = ("dense", "sparse")
PARTS = ("step", "val", "test")  # a training step, a 5K validation and a 10K test evaluation
# Issue 25's targets, sparse step / dense step.
STEP_TARGETS = {"21.1": 1.0, "7.0": 0.30, "1.9": 0.15}


def paper_masks(round_: int) -> dict[str, torch.Tensor] | None:
    """Masks of round ``round_``: magnitude pruning (lth.pruning, the paper's rates) of the
    initial weights of seed 0, so each layer keeps exactly the paper's count (None at round 0)."""
    if round_ == 0:
        return None
    model = init_model("lenet_300_100", 0)
    weights = {n: p.detach() for n, p in model.named_parameters() if n.endswith("weight")}
    return MagnitudePruning(PruneConfig(), "fc3.weight").prune(weights, dense_masks(weights), round_)


def level_label(round_: int) -> str:
    """The percent of weights remaining after ``round_`` rounds, as the table names it (21.1)."""
    masks = paper_masks(round_)
    return "100" if masks is None else f"{percent_remaining(masks):.1f}"


class KernelLoop:
    """``train``'s loop with the kernels object ``train`` builds for ``kernels`` (dense: the
    ``_MLPStep`` path of ``OursLoop``; sparse: ``lth.sparse``), and its evaluations (5K
    validation, 10K test images). ``setup_s``: (wall, CPU) seconds to build the kernels."""

    def __init__(self, data, masks, kernels: str) -> None:
        model = init_model("lenet_300_100", 0)
        masker = _Masker(model, masks)
        masker.apply()
        cfg = TrainConfig(lr=LR, batch_size=BATCH, kernels=kernels)
        w, c = time.perf_counter(), time.process_time()
        if kernels == "sparse":
            self.kernels = _SparseKernels(model, masks, cfg)
        else:
            self.kernels = _DenseKernels(model, masker, cfg)
        self.setup_s = (time.perf_counter() - w, time.process_time() - c)
        self.data = data
        self.n = len(data.train_x)
        self.batches = self.n // BATCH
        self.generator = torch.Generator().manual_seed(0)
        self.batch_x = torch.empty((BATCH, *data.train_x.shape[1:]), dtype=data.train_x.dtype)
        self.batch_y = torch.empty((BATCH,), dtype=data.train_y.dtype)
        self.iteration = 0
        self.perm = None

    def step(self, steps: int) -> None:
        data, bx, by, kernels = self.data, self.batch_x, self.batch_y, self.kernels
        for _ in range(steps):
            batch = self.iteration % self.batches
            if batch == 0:
                self.perm = torch.randperm(self.n, generator=self.generator)
            rows = self.perm[batch * BATCH : (batch + 1) * BATCH]
            torch.index_select(data.train_x, 0, rows, out=bx)
            torch.index_select(data.train_y, 0, rows, out=by)
            kernels.step(bx, by)
            self.iteration += 1

    def val(self, _n: int) -> None:
        self.kernels.evaluate(self.data.val_x, self.data.val_y)

    def test(self, _n: int) -> None:
        self.kernels.evaluate(self.data.test_x, self.data.test_y)


def sparse_levels(run: Run) -> dict[str, dict]:
    """Item 7: per paper level, a training step, a validation and a test evaluation, dense and
    sparse (all interleaved in each repetition), and their ratios. Returns {level: {(kernels,
    part, clock): median seconds}} with part in PARTS and "setup"."""
    from lth.sparse import _kernels

    _kernels()  # numba's start (counted in a job's fixed cost, item 5), before any setup is timed
    loops = {(level_label(r), k): KernelLoop(run.data, paper_masks(r), k) for r in PAPER_ROUNDS for k in KERNELS}
    for loop in loops.values():  # warm-up (the first sparse call also loads numba's compiled loops)
        loop.step(min(20, run.steps))
        loop.val(1)
        loop.test(1)
    wall = {key: {part: [] for part in PARTS} for key in loops}
    cpu = {key: {part: [] for part in PARTS} for key in loops}
    for _ in range(run.reps):
        for key, loop in loops.items():
            for part, n in (("step", run.steps), ("val", 1), ("test", 1)):
                w, c = measure(getattr(loop, part), n)
                wall[key][part].append(w)
                cpu[key][part].append(c)
    levels: dict[str, dict] = {}
    for level in dict.fromkeys(label for label, _ in loops):
        m = {(k, part, clock): median(src[(level, k)][part])
             for k in KERNELS for part in PARTS for clock, src in (("wall", wall), ("cpu", cpu))}
        for k in KERNELS:
            m[(k, "setup", "wall")], m[(k, "setup", "cpu")] = loops[(level, k)].setup_s
            for clock in ("wall", "cpu"):  # one evaluation of test_eval: all (validation + test)
                m[(k, "eval", clock)] = m[(k, "val", clock)] + m[(k, "test", clock)]
        levels[level] = m
        for part, what in (("step", f"{run.steps} steps per repetition"),
                           ("val", "5K validation images"), ("test", "10K test images"),
                           ("eval", "one evaluation: 5K validation + 10K test images")):
            for k in KERNELS:
                run.put(f"{k}_{part}_ms@{level}", m[(k, part, "wall")] * 1e3, "ms", detail=what,
                        cpu=m[(k, part, "cpu")] * 1e3)
            target = STEP_TARGETS.get(level) if part == "step" else None
            run.put(f"sparse_over_dense_{part}@{level}", m[("sparse", part, "wall")] / m[("dense", part, "wall")], "x",
                    detail=f"target <= {target}" if target else "",
                    cpu=m[("sparse", part, "cpu")] / m[("dense", part, "cpu")])
        run.put(f"sparse_setup_ms@{level}", m[("sparse", "setup", "wall")] * 1e3, "ms", 1,
                "building the sparse kernels once per job (CSR indices, buffers)", cpu=m[("sparse", "setup", "cpu")] * 1e3)
    return levels
