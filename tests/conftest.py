"""Shared fixtures: small MNIST-shaped IDX files made here, and running the workflow in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lth.data import write_idx  # noqa: E402

SHARED_MNIST = Path(os.environ.get("LTH_MNIST_DIR", ROOT.parent / "shared" / "mnist"))


def make_small_mnist(folder: Path, n_train: int = 600, n_test: int = 200, seed: int = 0, gz: bool = False) -> Path:
    """Write four IDX files of 28x28 images that a network can learn, but not instantly: each
    class is a faint fixed +-20 pattern on grey, under +-90 noise, and 5 % of the labels are
    redrawn at random. LeNet-300-100 (batch 20) reaches about 85 % test accuracy after 60
    iterations and about 94 % after 300, so accuracies and early-stop iterations vary between
    jobs instead of all being 1.0. Returns the folder."""
    rng = np.random.default_rng(seed)
    templates = rng.choice([-20, 20], size=(10, 28, 28))
    folder.mkdir(parents=True, exist_ok=True)

    def images(n):
        labels = rng.integers(0, 10, size=n)
        noise = rng.integers(-90, 91, size=(n, 28, 28))
        x = np.clip(128 + templates[labels] + noise, 0, 255).astype(np.uint8)
        relabel = rng.random(n) < 0.05
        labels = np.where(relabel, rng.integers(0, 10, size=n), labels).astype(np.uint8)
        return x, labels

    for split, n in (("train", n_train), ("t10k", n_test)):
        x, y = images(n)
        write_idx(folder / f"{split}-images-idx3-ubyte", x)
        write_idx(folder / f"{split}-labels-idx1-ubyte", y)
    if gz:
        import gzip

        for p in list(folder.iterdir()):
            p.with_name(p.name + ".gz").write_bytes(gzip.compress(p.read_bytes()))
            p.unlink()
    return folder


@pytest.fixture
def small_mnist(tmp_path) -> Path:
    return make_small_mnist(tmp_path / "small_mnist")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """In-process training in tests uses one torch thread, as the workflow's jobs do (threads: 1):
    on a busy 2-core machine the default two threads oversubscribe it and a tiny training run
    takes seconds instead of a fraction of one."""
    import torch

    torch.set_num_threads(1)


# A tiny but complete grid on the small data: 2 trials x 2 rounds, with the reinit control.
TINY_CONFIG = {
    "trials": 2,
    "rounds": 2,
    "iterations": 60,
    "eval_every": 20,
    "batch_size": 20,
    "val_size": 100,
    "verify_data": False,
    "device": "cpu",
}


def snakemake_cmd(workdir: Path, *args: str, config: dict | None = None, configfile: Path | None = None,
                  repo: Path = ROOT) -> list[str]:
    """The snakemake command line of the workflow in ``repo`` (this repository, or a copy of it)."""
    cmd = [
        sys.executable, "-m", "snakemake",
        "-s", str(repo / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(configfile or repo / "config.yaml"),
    ]
    if config:
        cmd += ["--config"] + [f"{k}={_yaml_value(v)}" for k, v in config.items()]
    return cmd + list(args)


def _yaml_value(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(map(str, v)) + "]"
    return str(v)


def run_snakemake(workdir: Path, *args: str, config: dict | None = None, configfile: Path | None = None,
                  check: bool = True, timeout: float = 600, repo: Path = ROOT) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in ``workdir``; return the completed process."""
    cmd = snakemake_cmd(workdir, *args, config=config, configfile=configfile, repo=repo)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def dry_run_jobs(workdir: Path, *args: str, config: dict | None = None, configfile: Path | None = None,
                 repo: Path = ROOT) -> dict[str, int]:
    """Rule name -> number of jobs a dry run would execute (parsed from Snakemake's job stats)."""
    proc = run_snakemake(workdir, "-n", "--quiet", "rules", *args, config=config, configfile=configfile, repo=repo)
    counts: dict[str, int] = {}
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return counts
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def full_config(overrides: dict | None = None, configfile: Path | None = None) -> dict:
    """The checked configuration a run with these settings sees: config.yaml, then ``configfile``,
    then ``overrides`` (as ``--config``), with the schema's defaults."""
    import yaml

    from lth.config import check_config, load_schema

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if configfile is not None:
        config.update(yaml.safe_load(Path(configfile).read_text()))
    config.update(overrides or {})
    return check_config(config, load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def job_path(workdir: Path, overrides: dict, trial: int, experiment: str, round_: int, name: str) -> Path:
    """``name`` in the folder of one training job of the configuration ``overrides`` (lth.lineage)."""
    from lth.lineage import job_dir

    return workdir / job_dir(full_config(overrides), trial, experiment, round_) / name


def trial_path(workdir: Path, overrides: dict, trial: int, name: str) -> Path:
    """``name`` (init.pt, rewind_<k>.pt, reinit_<j>/round_<r>.pt) in a trial's dense-lineage folder."""
    from lth.lineage import TRIAL_DIR, lineage

    return workdir / TRIAL_DIR.format(dense=lineage(full_config(overrides)).dense, trial=trial) / name


def round_path(workdir: Path, overrides: dict, trial: int, round_: int, name: str) -> Path:
    """``name`` (mask.pt) in a pruning round's folder."""
    from lth.lineage import ROUND_DIR, lineage

    lin = lineage(full_config(overrides))
    return workdir / ROUND_DIR.format(dense=lin.dense, prune=lin.prune, trial=trial, round=round_) / name
