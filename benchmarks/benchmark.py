#!/usr/bin/env python3
"""Speed of the training job, against the usual way and against the matmul bound (issue 4).

    python3 benchmarks/benchmark.py                 # ~1-3 min; prints a table, writes a CSV
    python3 benchmarks/benchmark.py --quick         # seconds: a smoke run (figures meaningless)
    python3 benchmarks/benchmark.py --out my.csv --threads 1 --reps 7
    python3 benchmarks/benchmark.py --profile       # where a step's time goes (torch.profiler)
    python3 benchmarks/benchmark.py --device cuda   # items 1-4 on the GPU (benchmarks/gpu_check.sh)
    python3 benchmarks/benchmark.py --levels-only --reps 5   # items 5 and 7 only: the per-level table
    python3 benchmarks/benchmark.py --check-jobs 5000   # + real jobs (fresh processes) against the job model

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
7. the kernels per paper level (``TrainConfig.kernels``, ``lth.sparse``; CPU only, ``--no-sparse``
   skips it): per paper level (100, 51.3, 21.1, 7.0, 3.6, 1.9 % remaining; masks from magnitude
   pruning of the initial weights with ``lth.pruning`` at the paper's rates, so each layer keeps
   the paper's count) a training step, a validation (5K) and a test evaluation (10K), dense and
   sparse, all interleaved, with the ratios sparse / dense (rows ``sparse_step_ms@21.1``, ...);
   the peak RSS of a job at 100, 21.1 and 1.9 % in each mode; a paper-protocol job's time per
   level before (dense kernels, ``test_eval: all``) and after (``kernels: auto``, ``test_eval:
   minima``; rows ``job_after_over_before@7.0``, ...), with the test evaluations counted on the
   committed paper-protocol curves; and the paper profile (185 jobs) projected from them
   (``paper_profile_after_over_before``). The per-level table is printed last, in Markdown.

The parts live in ``benchmarks/lthbench/``: ``common`` (paths, data, clocks, the run's rows),
``loops`` (items 1-4 and ``--profile``), ``jobs`` (items 5-6: fresh processes), ``levels`` (item 7's
measurements), ``projection`` (a job per level and the paper profile), ``report`` (the tables).

The MNIST files come from ``--mnist`` (default: $LTH_MNIST_DIR or ../shared/mnist, gzipped or
not); without them, random IDX files of the same size are written (the timings do not depend
on the pixel values). Item 7 of the issue (the grid's wall time against its jobs' times) needs
a finished run: see ``benchmarks/grid_efficiency.py``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from lthbench.common import ROOT, VAL_SIZE, Run, default_mnist_dir, prepare_data, put_meta, resolve_device, write_csv
from lthbench.jobs import check_job_model, fixed_cost, peak_rss, sparse_peak_rss
from lthbench.levels import PAPER_ROUNDS, level_label, sparse_levels
from lthbench.loops import check_loop, gpu_memory, profile, put_eval_rows, put_step_rows, time_in_process
from lthbench.projection import crossover, paper_projection, per_level_jobs, tested_evaluations
from lthbench.report import level_table, print_table

from lth.data import load_split  # lthbench.common put src/ on the path


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
    ap.add_argument("--no-sparse", action="store_true", help="skip item 7 (the kernels per paper level)")
    ap.add_argument("--levels-only", action="store_true",
                    help="only what the per-level table needs: items 5 and 7 (no usual way, bound, item 6)")
    ap.add_argument("--check-jobs", type=int, default=0, metavar="N",
                    help="also run real jobs of N iterations (before and after, 7.0 and 1.9 %%) against the job model")
    args = ap.parse_args(argv)
    if args.levels_only and args.no_sparse:
        ap.error("--levels-only measures item 7; it cannot go with --no-sparse")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.profile:
        if device.type == "cuda":
            raise SystemExit("benchmark.py: error: --profile measures the CPU only; run it without --device cuda")
        return profile(args)
    if args.levels_only and device.type == "cuda":
        raise SystemExit("benchmark.py: error: --levels-only measures the CPU kernels; run it without --device cuda")
    torch.set_num_threads(args.threads)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "benchmarks" / "results" / f"{stamp}.csv"
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    sparse = device.type != "cuda" and not args.no_sparse  # item 7: the sparse kernels are CPU kernels
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
        if not args.levels_only:
            masks20 = check_loop(run)
            if run.gpu:
                gpu_memory(run, masks20)
            mw, mc, n_steps = time_in_process(run, masks20)  # items 1-4
            put_step_rows(run, mw, mc, n_steps)
            put_eval_rows(run, mw, mc)
        if sparse:  # item 7 before item 5: its warm-up compiles numba's loops (or loads them) for the children
            levels = sparse_levels(run)
        sub = fixed_cost(run)  # item 5
        if not args.levels_only:
            peak_rss(run, sub)  # item 6
        if sparse:
            sparse_peak_rss(run, sub)
            tests = tested_evaluations()
            rounds = {level_label(r): r for r in PAPER_ROUNDS}
            jobs = per_level_jobs(run, levels, sub, tests, rounds)
            run.put("sparse_faster_below_percent", crossover(jobs, "wall"), "%", 1,
                    "a sparse job (test_eval minima) is faster than a dense one below this density (interpolated)",
                    cpu=crossover(jobs, "cpu"))
            paper_projection(run, levels, sub, tests)
            if args.check_jobs:
                check_job_model(run, levels, sub, args.check_jobs)
    elapsed = put_meta(run, started, load_start, stamp)
    print_table(run.rows, run.gpu)
    write_csv(run.rows, out)
    if sparse:
        print(f"\nper paper level (CPU time; medians of {run.reps} interleaved repetitions):\n")
        print(level_table(run.rows))
    print(f"\nwrote {out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
