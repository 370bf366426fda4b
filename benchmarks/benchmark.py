#!/usr/bin/env python3
"""Speed of the training job, against the usual way and against the matmul bound (issue 4).

    python3 benchmarks/benchmark.py                 # ~1-3 min; prints a table, writes a CSV
    python3 benchmarks/benchmark.py --quick         # seconds: a smoke run (figures meaningless)
    python3 benchmarks/benchmark.py --out my.csv --threads 1 --reps 7
    python3 benchmarks/benchmark.py --profile       # where a step's time goes (torch.profiler)
    python3 benchmarks/benchmark.py --device cuda   # items 1-4 on the GPU (benchmarks/gpu_check.sh)

Everything is measured in one run, on one machine, at one thread count (``--threads``, default
1, as a training job). Each figure is the median of ``--reps`` repetitions (default 9), and the
repetitions are interleaved (ours, usual, bound, evaluation, ours, ...) so that load from other
processes hits all of them alike. Each figure is given twice: from wall time (what a job waits)
and from CPU time (less sensitive to other processes taking the cores of a shared machine).

``--device`` (cpu, cuda or auto; default cpu) says where items 1-4 run: the model, its buffers
and the data on that device, as ``train()`` does with ``device: cuda``; the usual way keeps its
DataLoader on the CPU and copies each batch to the device (no pinned memory), as people do. On
cuda every timed span starts and ends with ``torch.cuda.synchronize()``, everything is warmed up
first, and the CPU-time column of items 1-4 is left empty: the CPU time of a process that waits
for a GPU measures the waiting, not the work. Items 5 and 6 stay measurements of CPU processes
(a training job with ``device: cpu``); on cuda the run also reports the peak GPU memory of our
training loop (``torch.cuda.max_memory_allocated``). The CSV's ``device`` column says where each
figure was measured (``cpu`` for items 5 and 6 in every run).

1. ``ours``: the loop of ``lth.training.train`` for LeNet-300-100 at batch 60, with the objects
   ``train`` builds (``_MLPStep`` + ``FusedAdam`` + ``_Masker``, batches gathered from a seeded
   permutation into preallocated buffers), dense and at 20 % of the weights remaining. The run
   checks that this loop gives the same weights as ``train`` itself (``ours_loop_equals_train``).
2. ``usual``: torchvision ``MNIST`` with ``ToTensor`` + ``Normalize`` through a ``DataLoader``
   (batch 60, shuffled, no worker processes), an ``nn.Sequential`` and ``torch.optim.Adam``;
   also ``usual_inmemory``: the same network and optimizer fed from in-memory tensors.
3. ``bound``: the eight matrix multiplications of a step (three forward, three weight
   gradients, two input gradients) on preallocated tensors, with the layouts ``_MLPStep`` uses:
   no autograd, no optimizer, no bias, no loss.
4. one evaluation (``lth.training.evaluate`` on 5K validation + 10K test images, the cost of
   ``test_eval: all``; validation only for ``test_eval: best`` between new minima), relative to
   the 100 training steps it follows (``eval_every: 100``).
5. per-job fixed cost: a fresh process that does the imports of a training job (Snakemake's
   script preamble, ``lth``) and ``load_split``, against ``python -c 'import torch'``; it also
   lists which of torchvision, pandas, matplotlib, torch._dynamo, scipy, sympy it imported.
6. peak RSS (VmHWM) of a short training job (a subprocess running ``run_training`` as the
   workflow does, 300 iterations) against a process that only imported torch.
7. the sparse kernels (``TrainConfig.kernels``, ``lth.sparse``; CPU only, ``--no-sparse`` skips
   it): per paper level (100, 51.3, 21.1, 7.0, 3.6, 1.9 % remaining; masks from magnitude
   pruning of the initial weights with ``lth.pruning`` at the paper's rates, so each layer keeps
   the paper's count) a training step and one evaluation (5K validation + 10K test), dense and
   sparse, all interleaved, with the ratios sparse / dense (rows ``sparse_step_ms@21.1``, ...);
   the peak RSS of a job at 100, 21.1 and 1.9 % in each mode; and the paper profile (185 jobs of
   50K steps + 501 evaluations + the fixed cost of item 5) projected from the measured per-level
   times, ``kernels: auto`` against dense (``paper_profile_auto_over_dense``).

The MNIST files come from ``--mnist`` (default: $LTH_MNIST_DIR or ../shared/mnist, gzipped or
not); without them, random IDX files of the same size are written (the timings do not depend
on the pixel values). Item 7 of the issue (the grid's wall time against its jobs' times) needs
a finished run: see ``benchmarks/grid_efficiency.py``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gc
import gzip
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from lth.data import FILE_NAMES, load_split, write_idx  # noqa: E402
from lth.models import init_model  # noqa: E402
from lth.pruning import MagnitudePruning, PruneConfig, dense_masks, percent_remaining, target_remaining  # noqa: E402
from lth.training import (  # noqa: E402
    AUTO_SPARSE_BELOW_PERCENT,
    EVAL_CHUNK,
    FusedAdam,
    TrainConfig,
    _DenseKernels,
    _make_step,
    _Masker,
    _MLPStep,
    _SparseKernels,
    evaluate,
)

BATCH = 60
LR = 1.2e-3
VAL_SIZE = 5000
EVAL_EVERY = 100
REMAINING = 0.2  # the sparse variant of "ours"
CSV_COLUMNS = ["metric", "value", "value_cpu", "unit", "reps", "detail", "device"]
# What a training job must not import (each costs seconds of start-up).
HEAVY_MODULES = ("torchvision", "pandas", "matplotlib", "torch._dynamo", "scipy", "sympy")


# --- data ----------------------------------------------------------------------------------


def default_mnist_dir() -> Path:
    return Path(os.environ.get("LTH_MNIST_DIR", ROOT.parent / "shared" / "mnist"))


def prepare_data(source: Path | None, tmp: Path) -> tuple[Path, Path, str]:
    """Decompressed IDX files in ``tmp/idx`` (our layout) and ``tmp/tv/MNIST/raw`` (torchvision's).

    Returns (idx folder, torchvision root, description of the data)."""
    idx = tmp / "idx"
    idx.mkdir(parents=True)
    found = source is not None and all(
        (source / n).is_file() or (source / f"{n}.gz").is_file() for n in FILE_NAMES
    )
    if found:
        for n in FILE_NAMES:
            if (source / n).is_file():
                shutil.copyfile(source / n, idx / n)
            else:
                with gzip.open(source / f"{n}.gz", "rb") as src, open(idx / n, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        what = f"MNIST from {source}"
    else:
        rng = np.random.default_rng(0)
        for split, n in (("train", 60000), ("t10k", 10000)):
            write_idx(idx / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
            write_idx(idx / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
        what = "random IDX files of MNIST's size (no MNIST folder found)"
    raw = tmp / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for n in FILE_NAMES:
        os.symlink(idx / n, raw / n)
    return idx, tmp / "tv", what


# --- timing helpers ------------------------------------------------------------------------

CPU = torch.device("cpu")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously): call before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def resolve_device(name: str) -> torch.device:
    """``--device``: cpu, cuda, or auto (cuda where torch sees one). SystemExit with one line if
    cuda is asked for and there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"benchmark.py: error: --device cuda, but torch {torch.__version__} sees no CUDA device "
            f"(built with CUDA {torch.version.cuda}); use --device cpu or auto"
        )
    return torch.device(name)


def sparse_masks(model: nn.Module, remaining: float, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    masks = {}
    for name, p in model.named_parameters():
        if name.endswith("weight"):
            flat = torch.zeros(p.numel(), dtype=torch.bool)
            flat[torch.randperm(p.numel(), generator=g)[: round(remaining * p.numel())]] = True
            masks[name] = flat.view_as(p)
    return masks


class OursLoop:
    """The body of ``lth.training.train``'s loop, built the way ``train`` builds it: the step of
    ``_make_step`` (``_MLPStep``), ``FusedAdam``, ``_Masker``, a seeded permutation per epoch and
    each batch gathered into preallocated buffers. ``check_against_train`` shows that it
    computes what ``train`` computes."""

    def __init__(self, data, masks, data_seed: int = 0, device: torch.device = CPU) -> None:
        # As train(): the model and the data on the device first, then the masker and optimizer.
        self.device = device
        self.model = init_model("lenet_300_100", 0).to(device)
        data = data.to(device)
        self.masker = _Masker(self.model, masks)
        self.masker.apply()
        self.optimizer = FusedAdam(self.model.parameters(), lr=LR)
        self.step = _make_step(self.model, BATCH, self.optimizer)
        assert isinstance(self.step, _MLPStep), "LeNet-300-100 must take the hand-written MLP step"
        self.data = data
        self.n = len(data.train_x)
        self.batches = self.n // BATCH
        self.generator = torch.Generator().manual_seed(data_seed)
        self.batch_x = torch.empty((BATCH, *data.train_x.shape[1:]), dtype=data.train_x.dtype, device=device)
        self.batch_y = torch.empty((BATCH,), dtype=data.train_y.dtype, device=device)
        self.running_loss = torch.zeros((), device=device)
        self.iteration = 0
        self.perm = None

    def run(self, steps: int) -> float:
        """Seconds per step (the per-epoch permutation included where an epoch starts)."""
        data, bx, by, step, masker = self.data, self.batch_x, self.batch_y, self.step, self.masker
        sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            batch = self.iteration % self.batches
            if batch == 0:
                self.perm = torch.randperm(self.n, generator=self.generator).to(self.device)
            rows = self.perm[batch * BATCH : (batch + 1) * BATCH]
            torch.index_select(data.train_x, 0, rows, out=bx)
            torch.index_select(data.train_y, 0, rows, out=by)
            self.running_loss += step(bx, by)
            masker.apply()
            self.iteration += 1
        sync(self.device)
        return (time.perf_counter() - t) / steps


def check_against_train(data, masks, steps: int, device: torch.device = CPU) -> bool:
    """True if ``steps`` steps of ``OursLoop`` give the weights ``lth.training.train`` gives
    (both on ``device``)."""
    from lth.training import TrainConfig, train

    loop = OursLoop(data, masks, data_seed=7, device=device)
    loop.run(steps)
    model = init_model("lenet_300_100", 0)
    cfg = TrainConfig(lr=LR, batch_size=BATCH, iterations=steps, eval_every=steps, data_seed=7, device=device.type)
    train(model, masks, data, cfg)
    mine, theirs = loop.model.state_dict(), model.state_dict()
    return all(torch.equal(mine[k], theirs[k]) for k in theirs)


def lenet_sequential() -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
    )


class UsualLoop:
    """torchvision MNIST + ToTensor + Normalize + DataLoader + nn.Sequential + torch.optim.Adam."""

    def __init__(self, tv_root: Path, device: torch.device = CPU) -> None:
        from torchvision import datasets, transforms

        self.device = device
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        self.dataset = datasets.MNIST(str(tv_root), train=True, download=False, transform=tf)
        self.loader = torch.utils.data.DataLoader(self.dataset, batch_size=BATCH, shuffle=True, drop_last=True)
        self.model = lenet_sequential().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()
        self.it = iter(self.loader)

    def _next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def run(self, steps: int) -> float:
        device = self.device
        sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            x, y = self._next()
            x, y = x.to(device), y.to(device)  # no-ops on the CPU
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(x), y)
            loss.backward()
            self.optimizer.step()
        sync(device)
        return (time.perf_counter() - t) / steps


class InMemoryLoop:
    """The usual network and optimizer, fed from in-memory tensors (no DataLoader)."""

    def __init__(self, data, device: torch.device = CPU) -> None:
        self.device = device
        self.x, self.y = data.train_x.to(device), data.train_y.to(device)
        self.model = lenet_sequential().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batches = len(self.x) // BATCH
        self.batch = 0

    def run(self, steps: int) -> float:
        sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            lo = self.batch * BATCH
            self.batch = (self.batch + 1) % self.batches
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(self.x[lo : lo + BATCH]), self.y[lo : lo + BATCH])
            loss.backward()
            self.optimizer.step()
        sync(self.device)
        return (time.perf_counter() - t) / steps


class BoundLoop:
    """Eight matmuls per step, on preallocated tensors with the layouts ``_MLPStep`` uses."""

    def __init__(self, data, device: torch.device = CPU) -> None:
        self.device = device
        g = torch.Generator().manual_seed(0)  # drawn on the CPU, then moved (a no-op there)
        self.x = data.train_x[:BATCH].clone().to(device)
        self.w = [(torch.randn(o, i, generator=g) * 0.05).to(device) for i, o in ((784, 300), (300, 100), (100, 10))]
        self.a = [torch.empty(BATCH, o, device=device) for o in (300, 100, 10)]  # activations
        self.d = [torch.rand(BATCH, o, generator=g).to(device) for o in (300, 100, 10)]  # dL/dz
        self.g = [torch.empty_like(w) for w in self.w]  # weight gradients

    def run(self, steps: int) -> float:
        x, (w1, w2, w3), (a1, a2, a3), (d1, d2, d3), (g1, g2, g3) = self.x, self.w, self.a, self.d, self.g
        mm = torch.mm
        sync(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            mm(x, w1.t(), out=a1)
            mm(a1, w2.t(), out=a2)
            mm(a2, w3.t(), out=a3)
            mm(d3.t(), a2, out=g3)
            mm(d3, w3, out=d2)
            mm(d2.t(), a1, out=g2)
            mm(d2, w2, out=d1)
            mm(d1.t(), x, out=g1)
        sync(self.device)
        return (time.perf_counter() - t) / steps


# --- subprocess measurements ---------------------------------------------------------------

# The imports of a training job: Snakemake's script preamble, then workflow/scripts/train.py's.
JOB_IMPORTS = textwrap.dedent(
    """
    try:
        from snakemake.logging import logger
        from snakemake.iocontainers import Snakemake
    except ImportError:
        pass
    import torch
    from lth.experiment import data_seed, run_training
    from lth.jobs import run_job
    from lth.training import TrainConfig
    """
)


def job_startup_code(idx: Path, threads: int) -> str:
    return JOB_IMPORTS + textwrap.dedent(
        f"""
        torch.set_num_threads({threads})
        import sys
        from lth.data import load_split
        load_split({str(idx)!r}, {VAL_SIZE}, 0)
        heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
        print("HEAVY=" + ",".join(heavy))
        """
    )


def job_train_code(idx: Path, work: Path, threads: int, iterations: int) -> str:
    return JOB_IMPORTS + textwrap.dedent(
        f"""
        torch.set_num_threads({threads})
        from lth.experiment import make_init
        from lth import checkpoint
        import torch as _t
        work = {str(work)!r}
        make_init("lenet_300_100", 0, work + "/init.pt")
        model = _t.load(work + "/init.pt", weights_only=True)["state"]
        g = _t.Generator().manual_seed(0)
        masks = {{}}
        for n in ("fc1.weight", "fc2.weight", "fc3.weight"):
            flat = _t.zeros(model[n].numel(), dtype=_t.bool)
            flat[_t.randperm(model[n].numel(), generator=g)[: model[n].numel() // 5]] = True
            masks[n] = flat.view_as(model[n])
        checkpoint.save_masks(work + "/mask.pt", "lenet_300_100", masks)
        cfg = TrainConfig(iterations={iterations}, eval_every=100, data_seed=data_seed(0, 0), device="cpu")
        run_training("lenet_300_100", work + "/init.pt", work + "/mask.pt", {str(idx)!r}, cfg, {VAL_SIZE}, 0,
                     work + "/model.pt", work + "/curve.csv", work + "/result.json")
        """
    )


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_child(code: str) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS in MB, stdout) of ``python -c code`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), text=True
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU times add up over children: a delta is this one's
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err[-3000:]}")
    # The peak RSS comes from the child itself (PEAK_SUFFIX): ru_maxrss of RUSAGE_CHILDREN is the
    # maximum over every child so far (and includes this process's own peak, through fork).
    peak = float("nan")
    for line in out.splitlines():
        if line.startswith("PEAK_RSS_KB="):
            peak = int(line.split("=", 1)[1]) / 1024
    return wall, cpu, peak, out


# Appended to a child's code: its own peak RSS, VmHWM of /proc/self/status. Not getrusage's
# ru_maxrss: Linux carries that across fork + exec, so a child of this (large) process would
# report at least the parent's peak.
PEAK_SUFFIX = textwrap.dedent(
    """
    with open("/proc/self/status") as _fh:
        print("PEAK_RSS_KB=" + next(l.split()[1] for l in _fh if l.startswith("VmHWM:")))
    """
)


# --- the benchmark -------------------------------------------------------------------------


def measure(fn, n: int, device: torch.device = CPU) -> tuple[float, float]:
    """(wall, CPU) seconds per unit of ``fn(n)``. CPU time (this process's) is less sensitive to
    other processes taking the cores; wall time is what a job waits. On a GPU the span starts and
    ends with the device idle (``sync``), and only the wall figure means anything."""
    sync(device)
    w, c = time.perf_counter(), time.process_time()
    fn(n)
    sync(device)
    return (time.perf_counter() - w) / n, (time.process_time() - c) / n


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# --- item 7: the sparse kernels per paper level ----------------------------------------------

# Rounds of the paper's pruning (20 % per round in the hidden layers, 10 % in the output layer)
# whose levels the table shows: 100, 51.3, 21.1, 7.0, 3.6 and 1.9 % of the weights remaining.
PAPER_ROUNDS = (0, 3, 7, 12, 15, 18)
RSS_ROUNDS = (0, 7, 18)
# The paper profile (config/paper.yaml): 5 trials x 19 ticket levels (rounds 0-18) + 5 x 18
# reinitialised levels (rounds 1-18); a job is 50K steps and 501 evaluations (val + test).
PAPER_TRIALS = 5
PAPER_JOB_ROUNDS = [*range(0, 19), *range(1, 19)]
PAPER_ITERATIONS = 50_000
PAPER_EVALUATIONS = 501
STEP_TARGETS = {"21.1": 1.0, "7.0": 0.40, "1.9": 0.25}
EVAL_TARGETS = {"100": 0.75, "7.0": 0.40}
PROFILE_TARGET = 0.65


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
    ``_MLPStep`` path of ``OursLoop``; sparse: ``lth.sparse``), and its evaluation (5K
    validation + 10K test images). ``setup_s``: (wall, CPU) seconds to build the kernels."""

    def __init__(self, data, masks, kernels: str) -> None:
        model = init_model("lenet_300_100", 0)
        masker = _Masker(model, masks)
        masker.apply()
        cfg = TrainConfig(lr=LR, batch_size=BATCH, kernels=kernels)
        w, c = time.perf_counter(), time.process_time()
        if kernels == "sparse":
            self.kernels = _SparseKernels(model, masks, cfg, fixed_inputs=(data.val_x, data.test_x))
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

    def run(self, steps: int) -> None:
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

    def evaluate(self, _n: int) -> None:
        self.kernels.evaluate(self.data.val_x, self.data.val_y)
        self.kernels.evaluate(self.data.test_x, self.data.test_y)


def sparse_levels(run: Run) -> dict[str, dict]:
    """Item 7: per paper level, a training step and one evaluation, dense and sparse (all
    interleaved in each repetition), and their ratios. Returns {level: medians and setup}."""
    loops = {(level_label(r), k): KernelLoop(run.data, paper_masks(r), k)
             for r in PAPER_ROUNDS for k in ("dense", "sparse")}
    for loop in loops.values():
        loop.run(min(20, run.steps))
        loop.evaluate(1)
    wall = {key: {"step": [], "eval": []} for key in loops}
    cpu = {key: {"step": [], "eval": []} for key in loops}
    for _ in range(run.reps):
        for key, loop in loops.items():
            for part, fn, n in (("step", loop.run, run.steps), ("eval", loop.evaluate, 1)):
                w, c = measure(fn, n)
                wall[key][part].append(w)
                cpu[key][part].append(c)
    levels: dict[str, dict] = {}
    for level in dict.fromkeys(label for label, _ in loops):
        m = {(k, part, clock): median(src[(level, k)][part])
             for k in ("dense", "sparse") for part in ("step", "eval") for clock, src in (("wall", wall), ("cpu", cpu))}
        for k in ("dense", "sparse"):
            m[(k, "setup", "wall")], m[(k, "setup", "cpu")] = loops[(level, k)].setup_s
        levels[level] = m
        for part, unit_scale, what in (("step", 1e3, f"{run.steps} steps per repetition"),
                                       ("eval", 1e3, "one evaluation: 5K validation + 10K test images")):
            for k in ("dense", "sparse"):
                run.put(f"{k}_{part}_ms@{level}", m[(k, part, "wall")] * unit_scale, "ms", detail=what,
                        cpu=m[(k, part, "cpu")] * unit_scale)
            target = (STEP_TARGETS if part == "step" else EVAL_TARGETS).get(level)
            run.put(f"sparse_over_dense_{part}@{level}", m[("sparse", part, "wall")] / m[("dense", part, "wall")], "x",
                    detail=f"target <= {target}" if target else "", cpu=m[("sparse", part, "cpu")] / m[("dense", part, "cpu")])
        run.put(f"sparse_setup_ms@{level}", m[("sparse", "setup", "wall")] * 1e3, "ms", 1,
                "building the sparse kernels once per job (CSR indices, eval copies)", cpu=m[("sparse", "setup", "cpu")] * 1e3)
    return levels


def job_train_code_at(idx: Path, work: Path, threads: int, iterations: int, round_: int, kernels: str) -> str:
    """A training job (``run_training``, as the workflow runs it) at a paper level, with ``kernels``."""
    return JOB_IMPORTS + textwrap.dedent(
        f"""
        torch.set_num_threads({threads})
        from lth.experiment import make_init
        from lth import checkpoint
        from lth.models import init_model
        from lth.pruning import MagnitudePruning, PruneConfig, dense_masks
        work = {str(work)!r}
        make_init("lenet_300_100", 0, work + "/init.pt")
        mask = None
        if {round_} > 0:
            w = {{n: p.detach() for n, p in init_model("lenet_300_100", 0).named_parameters() if n.endswith("weight")}}
            masks = MagnitudePruning(PruneConfig(), "fc3.weight").prune(w, dense_masks(w), {round_})
            checkpoint.save_masks(work + "/mask.pt", "lenet_300_100", masks)
            mask = work + "/mask.pt"
        cfg = TrainConfig(iterations={iterations}, eval_every=100, data_seed=data_seed(0, 0), device="cpu",
                          kernels={kernels!r})
        run_training("lenet_300_100", work + "/init.pt", mask, {str(idx)!r}, cfg, {VAL_SIZE}, 0,
                     work + "/model.pt", work + "/curve.csv", work + "/result.json")
        """
    )


def sparse_peak_rss(run: Run, sub: dict) -> None:
    """Item 7: peak RSS of a training job at 100, 21.1 and 1.9 %, dense and sparse kernels."""
    iters = 100 if run.args.quick else 300
    for round_ in RSS_ROUNDS:
        level = level_label(round_)
        for kernels in ("dense", "sparse"):
            work = run.tmp / f"rss_{round_}_{kernels}"
            work.mkdir()
            rss = run_child(job_train_code_at(run.idx, work, run.args.threads, iters, round_, kernels) + PEAK_SUFFIX)[2]
            run.put(f"{kernels}_job_peak_rss_mb@{level}", rss, "MB", 1,
                    f"run_training, kernels={kernels}, {iters} iterations; import torch alone: "
                    f"{sub['import_torch'][2]:.0f} MB", on="cpu")


def paper_densities() -> list[float]:
    """Percent remaining of each round 0-18 of the paper's rates (per-layer counts, lth.pruning)."""
    sizes = ((235200, 0.2), (30000, 0.2), (1000, 0.1))
    total = sum(n for n, _ in sizes)
    return [100.0 * sum(target_remaining(n, rate, r) for n, rate in sizes) / total for r in range(19)]


def paper_projection(run: Run, levels: dict[str, dict], sub: dict) -> None:
    """Item 7: the paper profile's training time, projected from the measured per-level job
    times (50K steps + 501 evaluations + the fixed cost of a job + building the kernels),
    interpolated linearly in density between the measured levels: ``auto`` against dense."""
    pcts = sorted(float(level) for level in levels)
    keys = {float(level): level for level in levels}
    densities = paper_densities()
    for clock, i in (("wall", 0), ("cpu", 1)):
        fixed = sub["job_startup"][i]

        def job_s(kernels, pct, _clock=clock, _fixed=fixed):
            def at(part):
                ys = [levels[keys[p]][(kernels, part, _clock)] for p in pcts]
                return float(np.interp(pct, pcts, ys))
            return _fixed + at("setup") + PAPER_ITERATIONS * at("step") + PAPER_EVALUATIONS * at("eval")

        totals = {"dense": 0.0, "sparse": 0.0, "auto": 0.0, "best": 0.0}
        for r in PAPER_JOB_ROUNDS:
            pct = densities[r]
            d, s = job_s("dense", pct), job_s("sparse", pct)
            totals["dense"] += PAPER_TRIALS * d
            totals["sparse"] += PAPER_TRIALS * s
            totals["auto"] += PAPER_TRIALS * (s if pct < AUTO_SPARSE_BELOW_PERCENT else d)
            totals["best"] += PAPER_TRIALS * min(d, s)
        levels[f"_totals_{clock}"] = totals
    tw, tc = levels["_totals_wall"], levels["_totals_cpu"]
    n_jobs = PAPER_TRIALS * len(PAPER_JOB_ROUNDS)
    for k in ("dense", "sparse", "auto"):
        run.put(f"paper_profile_{k}_s", tw[k], "s", 1, f"{n_jobs} jobs, projected (one thread per job, summed)",
                cpu=tc[k])
    run.put("paper_profile_auto_over_dense", tw["auto"] / tw["dense"], "x", 1,
            f"kernels=auto (sparse below {AUTO_SPARSE_BELOW_PERCENT:g} %) / dense; target <= {PROFILE_TARGET}",
            cpu=tc["auto"] / tc["dense"])
    run.put("paper_profile_best_over_dense", tw["best"] / tw["dense"], "x", 1,
            "the faster kernels at every level (an upper bound for any crossover)", cpu=tc["best"] / tc["dense"])
    # The crossover the run measured: the highest density below which sparse jobs are faster.
    for clock in ("wall", "cpu"):
        faster = [p for p in pcts if levels[keys[p]][("sparse", "step", clock)] * PAPER_ITERATIONS
                  + levels[keys[p]][("sparse", "eval", clock)] * PAPER_EVALUATIONS
                  < levels[keys[p]][("dense", "step", clock)] * PAPER_ITERATIONS
                  + levels[keys[p]][("dense", "eval", clock)] * PAPER_EVALUATIONS]
        below = [p for p in pcts if all(q in faster for q in pcts if q <= p)]
        levels[f"_crossover_{clock}"] = max(below) if below else 0.0
    run.put("sparse_faster_up_to_percent", levels["_crossover_wall"], "%", 1,
            f"highest measured level at and below which sparse jobs are faster; auto's crossover: "
            f"{AUTO_SPARSE_BELOW_PERCENT:g} %", cpu=levels["_crossover_cpu"])


def print_sparse_table(rows: list[dict]) -> None:
    """The table of item 7 (wall / CPU time, ratios sparse over dense)."""
    r = {row["metric"]: row for row in rows}
    levels = [row["metric"].split("@")[1] for row in rows if row["metric"].startswith("dense_step_ms@")]
    print("\nsparse kernels per paper level (ms; wall / CPU time; ratios sparse / dense)")
    print(f"{'remaining %':>11} | {'step dense':>13} {'step sparse':>13} {'ratio':>11} | "
          f"{'eval dense':>13} {'eval sparse':>13} {'ratio':>11}")

    def pair(name, fmt):
        return f"{format(r[name]['value'], fmt)} / {format(r[name]['value_cpu'], fmt)}"

    for lv in levels:
        print(f"{lv:>11} | {pair(f'dense_step_ms@{lv}', '.3f'):>13} {pair(f'sparse_step_ms@{lv}', '.3f'):>13} "
              f"{pair(f'sparse_over_dense_step@{lv}', '.2f'):>11} | {pair(f'dense_eval_ms@{lv}', '.0f'):>13} "
              f"{pair(f'sparse_eval_ms@{lv}', '.0f'):>13} {pair(f'sparse_over_dense_eval@{lv}', '.2f'):>11}")
    print(f"paper profile, auto / dense: {pair('paper_profile_auto_over_dense', '.3f')} "
          f"(target <= {PROFILE_TARGET}); best per level: {pair('paper_profile_best_over_dense', '.3f')}")


# --- the run: a sequence of named steps ----------------------------------------------------


@dataclass
class Run:
    """What the steps of one benchmark run share: the options, the data, and the CSV rows."""

    args: argparse.Namespace
    device: torch.device
    reps: int
    steps: int
    sub_reps: int
    tmp: Path
    idx: Path
    tv_root: Path
    what: str
    data: object = None
    rows: list[dict] = field(default_factory=list)

    @property
    def gpu(self) -> bool:
        return self.device.type == "cuda"

    def put(self, metric, value, unit, n=None, detail="", cpu="", on=None):
        self.rows.append({"metric": metric, "value": value, "value_cpu": cpu, "unit": unit,
                          "reps": self.reps if n is None else n, "detail": detail,
                          "device": self.device.type if on is None else on})

    def put_dev(self, metric, value, unit, n=None, detail="", cpu=""):
        """A figure of items 1-4, measured on ``device``: no CPU-time figure on a GPU (see the docstring)."""
        self.put(metric, value, unit, n, detail, "" if self.gpu else cpu)

    def on_cpu(self, detail):
        """Items 5 and 6 are CPU processes in every run: say so where the rest ran on a GPU."""
        return (f"{detail} [CPU process]" if detail else "[CPU process]") if self.gpu else detail


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a training job)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per figure (default 9; --quick: 1)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per repetition (default 200)")
    ap.add_argument("--mnist", type=Path, default=None, help="MNIST folder (default $LTH_MNIST_DIR or ../shared/mnist)")
    ap.add_argument("--out", type=Path, default=None, help="CSV path (default benchmarks/results/<timestamp>.csv)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 1 repetition, few steps")
    ap.add_argument("--profile", action="store_true",
                    help="instead: torch.profiler tables of our step, the bound and one evaluation (CPU only)")
    ap.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                    help="where items 1-4 run (default cpu; auto: cuda where available)")
    ap.add_argument("--no-sparse", action="store_true", help="skip item 7 (the sparse kernels per paper level)")
    return ap.parse_args(argv)


def check_loop(run: Run) -> dict:
    """``ours_loop_equals_train``: the timed loop computes what ``train`` computes. Returns the masks used."""
    masks20 = sparse_masks(init_model("lenet_300_100", 0), REMAINING)
    same = check_against_train(run.data, masks20, 30, run.device)
    run.put("ours_loop_equals_train", str(same), "bool", 1, "the timed loop gives train()'s weights (30 steps)")
    if not same:
        print("warning: the benchmark's loop no longer computes what lth.training.train computes")
    return masks20


def gpu_memory(run: Run, masks20) -> None:
    """Peak GPU memory of our loop (20 % remaining) and one evaluation, the split already there."""
    device, data = run.device, run.data
    gc.collect()  # check_against_train's models and buffers
    sync(device)
    split_bytes = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    probe = OursLoop(data, masks20, device=device)
    probe.run(run.steps)
    probe.model.eval()
    evaluate(probe.model, data.val_x, data.val_y)
    evaluate(probe.model, data.test_x, data.test_y)
    sync(device)
    peak = torch.cuda.max_memory_allocated(device)
    del probe
    run.put("gpu_split_mb", split_bytes / 2**20, "MB", 1, "MNIST split on the device (allocated before the loop)")
    run.put("gpu_peak_allocated_mb", peak / 2**20, "MB", 1,
            f"torch.cuda.max_memory_allocated: split + our loop (20% remaining, {run.steps} steps) + one evaluation")
    run.put("gpu_peak_minus_split_mb", (peak - split_bytes) / 2**20, "MB", 1, "our loop and evaluation alone")


def time_in_process(run: Run, masks20) -> tuple[dict, dict, dict]:
    """Items 1-4, interleaved: (median wall s, median CPU s, steps per repetition) per name."""
    device, data, steps = run.device, run.data, run.steps
    dense = OursLoop(data, None, device=device)
    loops = {
        "ours_dense": dense,
        "ours_sparse20": OursLoop(data, masks20, device=device),
        "usual": UsualLoop(run.tv_root, device),
        "usual_inmemory": InMemoryLoop(data, device),
        "bound": BoundLoop(data, device),
    }
    usual_steps = max(10, steps // 4)  # the usual way is slow: fewer steps, same repetitions
    n_steps = {k: usual_steps if k == "usual" else steps for k in loops}
    # Warm-up: allocator, MKL, the DataLoader's iterator; on a GPU also the CUDA context,
    # cuBLAS handles and the lazily loaded kernels (evaluation's too).
    for loop in loops.values():
        loop.run(min(20, steps))

    def eval_val(_n):
        evaluate(dense.model, data.val_x, data.val_y)

    def eval_test(_n):
        evaluate(dense.model, data.test_x, data.test_y)

    dense.model.eval()
    eval_val(1)
    eval_test(1)
    dense.model.train()
    sync(device)
    wall: dict[str, list[float]] = {k: [] for k in [*loops, "eval_val", "eval_test"]}
    cpu: dict[str, list[float]] = {k: [] for k in wall}
    for _ in range(run.reps):
        for name, loop in loops.items():
            w, c = measure(loop.run, n_steps[name], device)
            wall[name].append(w)
            cpu[name].append(c)
        dense.model.eval()
        for name, fn in (("eval_val", eval_val), ("eval_test", eval_test)):
            w, c = measure(fn, 1, device)
            wall[name].append(w)
            cpu[name].append(c)
        dense.model.train()
    mw = {k: median(v) for k, v in wall.items()}
    # On a GPU the CPU-time figures are not written (put_dev); stand-ins keep the arithmetic safe.
    mc = mw if run.gpu else {k: median(v) for k, v in cpu.items()}
    return mw, mc, n_steps


def put_step_rows(run: Run, mw: dict, mc: dict, n_steps: dict) -> None:
    """Items 1-3: time per step, steps per second, and the ratios against the usual way and the bound."""
    loops = [k for k in n_steps]
    for name in loops:
        run.put_dev(f"{name}_step_ms", mw[name] * 1e3, "ms", detail=f"{n_steps[name]} steps per repetition",
                    cpu=mc[name] * 1e3)
    for name in loops:
        run.put_dev(f"{name}_steps_per_s", 1 / mw[name], "steps/s", cpu=1 / mc[name])
    for name in ("ours_dense", "ours_sparse20"):
        run.put_dev(f"ratio_{name}_over_usual", mw["usual"] / mw[name], "x", detail="steps/s ratio; target >= 4",
                    cpu=mc["usual"] / mc[name])
        run.put_dev(f"ratio_{name}_over_bound", mw["bound"] / mw[name], "x", detail="steps/s ratio; target >= 0.8",
                    cpu=mc["bound"] / mc[name])
    for name in ("usual", "usual_inmemory"):
        run.put_dev(f"ratio_{name}_over_bound", mw["bound"] / mw[name], "x", cpu=mc["bound"] / mc[name])


def put_eval_rows(run: Run, mw: dict, mc: dict) -> None:
    """Item 4: one evaluation, and its cost against the 100 steps it follows."""
    data = run.data
    run.put_dev("eval_val_ms", mw["eval_val"] * 1e3, "ms", detail=f"{len(data.val_x)} images, chunks of {EVAL_CHUNK}",
                cpu=mc["eval_val"] * 1e3)
    run.put_dev("eval_test_ms", mw["eval_test"] * 1e3, "ms",
                detail=f"{len(data.test_x)} images, chunks of {EVAL_CHUNK}", cpu=mc["eval_test"] * 1e3)
    hw, hc = EVAL_EVERY * mw["ours_dense"], EVAL_EVERY * mc["ours_dense"]
    run.put_dev("eval_all_over_100_steps", (mw["eval_val"] + mw["eval_test"]) / hw, "x",
                detail="test_eval=all: val + test per evaluation; target <= 0.25",
                cpu=(mc["eval_val"] + mc["eval_test"]) / hc)
    run.put_dev("eval_best_over_100_steps", mw["eval_val"] / hw, "x",
                detail="test_eval=best: val only (+ test at a new minimum)", cpu=mc["eval_val"] / hc)


def fixed_cost(run: Run) -> dict:
    """Item 5: a job's fixed cost (fresh processes, interleaved). Returns {name: [(wall, CPU, RSS)]}."""
    sub: dict[str, list[tuple[float, float, float]]] = {"python": [], "import_torch": [], "job_startup": []}
    heavy = "?"
    for _ in range(run.sub_reps):  # interleaved, as above
        sub["python"].append(run_child("pass")[:3])
        sub["import_torch"].append(run_child("import torch" + PEAK_SUFFIX)[:3])
        w, c, r, o = run_child(job_startup_code(run.idx, run.args.threads))
        sub["job_startup"].append((w, c, r))
        heavy = next((ln[6:] for ln in o.splitlines() if ln.startswith("HEAVY=")), "?")

    def med(key, i):
        return median([t[i] for t in sub[key]])

    n, on_cpu = run.sub_reps, run.on_cpu
    run.put("python_start_s", med("python", 0), "s", n, on_cpu("python -c pass"), cpu=med("python", 1), on="cpu")
    run.put("import_torch_s", med("import_torch", 0), "s", n, on_cpu("python -c 'import torch'"),
            cpu=med("import_torch", 1), on="cpu")
    run.put("job_fixed_cost_s", med("job_startup", 0), "s", n,
            on_cpu("process start + Snakemake preamble + lth imports + load_split; target <= 3"),
            cpu=med("job_startup", 1), on="cpu")
    run.put("job_fixed_cost_minus_import_torch_s", med("job_startup", 0) - med("import_torch", 0), "s", n,
            on_cpu(""), cpu=med("job_startup", 1) - med("import_torch", 1), on="cpu")
    run.put("job_heavy_imports", heavy or "none", "modules", n,
            on_cpu(f"which of {'/'.join(HEAVY_MODULES)} a training job imports"), on="cpu")
    return {k: (med(k, 0), med(k, 1), med(k, 2)) for k in sub}


def peak_rss(run: Run, sub: dict) -> None:
    """Item 6: peak RSS of a short training job against a process that only imported torch."""
    iters = 100 if run.args.quick else 300
    n_rss = max(1, run.sub_reps - 1)
    job_rss = []
    for i in range(n_rss):
        work = run.tmp / f"job{i}"
        work.mkdir()
        job_rss.append(run_child(job_train_code(run.idx, work, run.args.threads, iters) + PEAK_SUFFIX)[2])
    run.put("import_torch_peak_rss_mb", sub["import_torch"][2], "MB", run.sub_reps, run.on_cpu("python -c 'import torch'"),
            on="cpu")
    run.put("job_peak_rss_mb", median(job_rss), "MB", n_rss,
            run.on_cpu(f"run_training, 20% remaining, {iters} iterations, with a job's imports"), on="cpu")
    run.put("job_rss_minus_import_torch_mb", median(job_rss) - sub["import_torch"][2], "MB", n_rss,
            run.on_cpu("target <= 400"), on="cpu")


def put_meta(run: Run, started: float, load_start: float, stamp: str) -> float:
    elapsed = time.perf_counter() - started
    meta = {
        "timestamp": stamp,
        "host": platform.node(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "threads": run.args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "data": run.what,
        "load_average_start": round(load_start, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
        "elapsed_s": round(elapsed, 1),
        "quick": run.args.quick,
    }
    if run.gpu:  # only on a GPU run: the CPU run's meta rows stay as they were
        meta["gpu"] = torch.cuda.get_device_name(run.device)
        meta["torch_cuda"] = torch.version.cuda
    for k, v in meta.items():
        run.put(f"meta_{k}", v, "", 1)
    return elapsed


def write_csv(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.profile:
        if device.type == "cuda":
            raise SystemExit("benchmark.py: error: --profile measures the CPU only; run it without --device cuda")
        return profile(args)
    torch.set_num_threads(args.threads)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "benchmarks" / "results" / f"{stamp}.csv"
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        idx, tv_root, what = prepare_data(args.mnist or default_mnist_dir(), tmp)
        run = Run(args, device, reps=args.reps or (1 if args.quick else 9), steps=args.steps or (30 if args.quick else 200),
                  sub_reps=1 if args.quick else 3, tmp=tmp, idx=idx, tv_root=tv_root, what=what)
        print(f"data: {what}; torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs, "
              f"load average {load_start:.2f}; medians of {run.reps} repetitions of {run.steps} steps")
        if run.gpu:
            print(f"device: {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}) for items 1-4; "
                  f"CPU-time column empty for them (a process waiting on the GPU)")
        run.data = load_split(idx, VAL_SIZE, 0).to(device)
        masks20 = check_loop(run)
        if run.gpu:
            gpu_memory(run, masks20)
        mw, mc, n_steps = time_in_process(run, masks20)  # items 1-4
        put_step_rows(run, mw, mc, n_steps)
        put_eval_rows(run, mw, mc)
        sub = fixed_cost(run)  # item 5
        peak_rss(run, sub)  # item 6
        if not run.gpu and not args.no_sparse:  # item 7: the sparse kernels are CPU kernels
            levels = sparse_levels(run)
            sparse_peak_rss(run, sub)
            paper_projection(run, levels, sub)
    elapsed = put_meta(run, started, load_start, stamp)
    print_table(run.rows, run.gpu)
    write_csv(run.rows, out)
    if not run.gpu and not args.no_sparse:
        print_sparse_table(run.rows)
    print(f"wrote {out} ({elapsed:.0f} s)")
    return 0


def breakdown(data, reps: int = 9, steps: int = 200) -> dict[str, float]:
    """CPU seconds per step of our step's parts, each timed alone (interleaved repetitions)."""
    full = OursLoop(data, sparse_masks(init_model("lenet_300_100", 0), REMAINING))
    no_opt = OursLoop(data, sparse_masks(init_model("lenet_300_100", 0), REMAINING))
    no_opt.step.optimizer = type("NoStep", (), {"step": lambda self: None})()
    opt, masker = full.optimizer, full.masker
    bx, by = full.batch_x, full.batch_y
    perm = torch.randperm(len(data.train_x))
    bound = BoundLoop(data)

    def gather(n):
        for i in range(n):
            rows = perm[i * BATCH : (i + 1) * BATCH]
            torch.index_select(data.train_x, 0, rows, out=bx)
            torch.index_select(data.train_y, 0, rows, out=by)

    def repeat(fn):
        def run(n):
            for _ in range(n):
                fn()
        return run

    parts = {
        "whole step (train()'s loop, 20% remaining)": full.run,
        "  without the optimizer step": no_opt.run,
        "  FusedAdam.step alone": repeat(opt.step),
        "  _Masker.apply alone": repeat(masker.apply),
        "  batch gather alone": gather,
        "bound: the 8 matmuls": bound.run,
    }
    times: dict[str, list[float]] = {k: [] for k in parts}
    for fn in parts.values():
        fn(20)
    for _ in range(reps):
        for k, fn in parts.items():
            times[k].append(measure(fn, steps)[1])
    return {k: median(v) for k, v in times.items()}


def profile(args) -> int:
    """Where the time of a step goes: torch.profiler's per-operator self CPU time, for 300 steps
    of our loop (20 % remaining), 300 steps of the bound, and one evaluation (val + test)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(args.threads)
    steps = args.steps or 300
    with tempfile.TemporaryDirectory(prefix="lth-bench-") as tmp_name:
        idx, _tv, what = prepare_data(args.mnist or default_mnist_dir(), Path(tmp_name))
        data = load_split(idx, VAL_SIZE, 0)
    ours = OursLoop(data, sparse_masks(init_model("lenet_300_100", 0), REMAINING))
    bound = BoundLoop(data)
    ours.run(50)
    bound.run(50)

    def evaluation(_n):
        evaluate(ours.model, data.val_x, data.val_y)
        evaluate(ours.model, data.test_x, data.test_y)

    print(f"data: {what}; {args.threads} thread(s)")
    print("\n== our step in parts: CPU time per step, median of 9 repetitions of 200 steps")
    for name, per_step in breakdown(data).items():
        print(f"{name:<48} {per_step * 1e3:8.3f} ms")
    print("\n== self CPU time per operator (torch.profiler)")
    for title, fn, n in ((f"ours, {steps} steps", ours.run, steps), (f"bound, {steps} steps", bound.run, steps),
                         ("one evaluation (5K val + 10K test)", evaluation, 1)):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(n)
        print(f"\n== {title}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=16))
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def print_table(rows: list[dict], gpu: bool = False) -> None:
    print(f"{'':<38} {'wall':>10} {'CPU time':>10}")
    if gpu:
        print("(GPU figures have no CPU-time figure; the rows marked [CPU process] ran on the CPU)")
    for row in rows:
        if row["metric"].startswith("meta_"):
            continue
        v, c = row["value"], row["value_cpu"]
        shown = f"{v:10.4g}" if isinstance(v, float) else f"{v!s:>10}"
        shown_c = f"{c:10.4g}" if isinstance(c, float) else f"{c!s:>10}"
        print(f"{row['metric']:<38} {shown} {shown_c} {row['unit']:<8} {row['detail']}")
    meta = {r["metric"][5:]: r["value"] for r in rows if r["metric"].startswith("meta_")}
    print(json.dumps(meta))


if __name__ == "__main__":
    sys.exit(main())
