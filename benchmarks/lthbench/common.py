"""What every part of the benchmark shares: the paths, the constants of a training job, the
MNIST files, the clocks, the run's CSV rows and their file."""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import platform
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lth.data import FILE_NAMES, write_idx

from . import ROOT, SRC  # noqa: F401  (the package put SRC on the import path)

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


# --- clocks --------------------------------------------------------------------------------

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


# --- the run: its options, its rows, its CSV ---------------------------------------------------


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


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def put_meta(run: Run, started: float, load_start: float, stamp: str) -> float:
    elapsed = time.perf_counter() - started
    meta = {
        "timestamp": stamp,
        "host": platform.node(),
        "cpu": cpu_model(),
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
