#!/usr/bin/env python3
"""Rerun finished training jobs of a CPU run on another device and compare what they measured.

    python3 benchmarks/cuda_jobs.py --run-dir RUN_DIR --mnist MNIST_DIR --trial 2 \\
        --job ticket/round_0 --job ticket/round_7 --job reinit_0/round_7 --out cuda_jobs.csv

RUN_DIR is the working directory of a finished (or partly finished) run (``--directory``); with
several lineages in it, ``--lineage dense_<hash>/prune_<hash>`` says which (``python3 -m lth.store
list``). Only the files each job reads and wrote are needed (``lth.lineage``): theta0, the rewind
point or the reinit's init, the round's ``mask.pt``, its ``result.json`` and, for the CPU wall
time, Snakemake's ``benchmarks/runs/...tsv``. MNIST_DIR holds the four MNIST files, gzipped or not; they are
verified against their checksums as the pipeline's download step does (``--no-verify``: not).
With ``--device cpu`` on the machine that made the run, every rerun must equal its record: a
reproducibility check (tests/test_benchmark.py does that on a tiny run).

Each job is trained again with the settings its result.json recorded (or the config schema's
defaults, the paper's, where an older result did not record them), on ``--device`` (default
cuda), through the same ``lth.experiment.run_training`` that the workflow's train rule calls. The
table gives, per job, the recorded and the rerun early-stop iteration, test accuracy at early
stop, final test accuracy and wall time. GPU and CPU kernels sum in different orders, so their
numbers agree closely but not bit for bit: a grid is reproducible on one device, and every
result.json says which device made it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from lth.config import load_schema, schema_defaults  # noqa: E402
from lth.data import fetch_mnist  # noqa: E402
from lth.experiment import data_seed, run_training  # noqa: E402
from lth.lineage import RUNS  # noqa: E402
from lth.summarize import find_lineage  # noqa: E402
from lth.training import TrainConfig  # noqa: E402

# Settings of results that did not record them (older versions): the config schema's defaults.
DEFAULTS = schema_defaults(load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
COMPARED = ("early_stop_iteration", "early_stop_test_accuracy", "final_test_accuracy", "percent_remaining")


def cpu_wall_s(job_dir: Path) -> float | None:
    """The CPU job's wall time from Snakemake's benchmark file (None if it has none)."""
    parts = job_dir.parts
    i = len(parts) - 1 - parts[::-1].index("results")
    path = Path(*parts[:i], "benchmarks", *parts[i + 1:]).with_suffix(".tsv")
    if not path.exists():
        return None
    with open(path) as fh:
        return float(next(csv.DictReader(fh, delimiter="\t"))["s"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--mnist", type=Path, required=True)
    ap.add_argument("--lineage", default=None, help="dense_<hash>/prune_<hash>: needed where the run holds several")
    ap.add_argument("--trial", type=int, default=0)
    ap.add_argument("--job", action="append", required=True, help="EXPERIMENT/round_R, e.g. ticket/round_7")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--iterations", type=int, default=None, help="override (a quick check); default: as recorded")
    ap.add_argument("--out", type=Path, default=None, help="CSV of the comparison")
    ap.add_argument(
        "--no-verify",
        action="store_true",
        help="do not check the files against the MNIST checksums (as verify_data: false; tests)",
    )
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"cuda_jobs.py: error: torch {torch.__version__} sees no CUDA device")

    dense, prune = find_lineage(args.run_dir, args.lineage)
    dense_dir = args.run_dir / RUNS / dense / f"trial_{args.trial}"
    prune_dir = args.run_dir / RUNS / dense / str(prune) / f"trial_{args.trial}"
    rewind = json.loads((prune_dir.parent / "settings.json").read_text())["rewind_iteration"] if prune else 0
    ticket_init = dense_dir / ("init.pt" if rewind == 0 else f"rewind_{rewind}.pt")
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fetch_mnist(tmp / "mnist", source=args.mnist, verify_checksums=not args.no_verify, log=lambda *_: None)
        for job in args.job:
            experiment, _, round_name = job.partition("/")
            round_ = int(round_name.removeprefix("round_"))
            job_dir = dense_dir / "dense" if round_ == 0 else prune_dir / round_name / experiment
            cpu = json.loads((job_dir / "result.json").read_text())
            settings = {**DEFAULTS, **cpu.get("train_config", {})}
            cfg = TrainConfig(
                lr=settings["lr"],
                batch_size=settings["batch_size"],
                iterations=args.iterations or settings["iterations"],
                eval_every=settings["eval_every"],
                test_eval=settings["test_eval"],
                patience=settings["patience"],
                data_seed=data_seed(settings["seed"], args.trial),
                device=args.device,
            )
            init = ticket_init if experiment in ("ticket", "random_pruning") else dense_dir / experiment / f"{round_name}.pt"
            mask = None if round_ == 0 else job_dir / "mask.pt" if experiment == "random_pruning" else job_dir.parent / "mask.pt"
            out = tmp / f"job_{len(rows)}"  # a job may be listed twice: a repeatability check
            out.mkdir(parents=True)
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            new = run_training(
                settings["model"],
                init,
                mask,
                tmp / "mnist",
                cfg,
                val_size=settings["val_size"],
                split_seed=settings["seed"],
                out_model=out / "model.pt",
                out_curve=out / "curve.csv",
                out_result=out / "result.json",
            )
            wall = time.perf_counter() - start
            row = {"trial": args.trial, "job": job, "device": new["device"], "iterations": cfg.iterations}
            for key in COMPARED:
                row[f"recorded_{key}"], row[f"rerun_{key}"] = cpu[key], new[key]
            row["recorded_device"] = cpu.get("device", "?")
            row["recorded_wall_s"] = cpu_wall_s(job_dir)
            row["rerun_wall_s"] = round(wall, 2)
            rows.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    print("\n| job | remaining | early-stop iteration | test acc at early stop (%) | final test acc (%) | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:

        def pair(key, fmt, r=r):
            return f"{fmt(r['recorded_' + key])} / {fmt(r['rerun_' + key])}"

        wall = "?" if r["recorded_wall_s"] is None else f"{r['recorded_wall_s']:.0f}"
        print(
            f"| {r['job']} | {r['rerun_percent_remaining']:.1f}% | {pair('early_stop_iteration', str)} | "
            f"{pair('early_stop_test_accuracy', lambda v: f'{100 * v:.2f}')} | "
            f"{pair('final_test_accuracy', lambda v: f'{100 * v:.2f}')} | {wall} / {r['rerun_wall_s']:.1f} |"
        )
    print(
        f"(each cell: recorded on {rows[0]['recorded_device']} / rerun on {rows[0]['device']}"
        + (f"; rerun cut to {args.iterations} iterations, so the columns differ by design)" if args.iterations else ")")
    )
    if args.out is not None:
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
