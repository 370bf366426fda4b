#!/usr/bin/env python3
"""How well a finished grid used its cores: wall time against the sum of its jobs' times / cores.

    python3 benchmarks/grid_efficiency.py RUN_DIR --cores 2 --wall-s 5400
    python3 benchmarks/grid_efficiency.py RUN_DIR --cores 2 --wall-s 1372 --wall-s 9000   # a resumed run
    python3 benchmarks/grid_efficiency.py RUN_DIR --cores 2 --timings timings.txt --name default
    python3 benchmarks/grid_efficiency.py RUN_DIR --cores 2 --log snakemake.log
    python3 benchmarks/grid_efficiency.py RUN_DIR --cores 2 --pieces    # a run stopped and resumed

RUN_DIR is the working directory of the run (``--directory``). Job times come from Snakemake's
``benchmark:`` files under RUN_DIR/benchmarks/ (column ``s``: the training jobs, which hold
almost all of the compute); with ``--log`` (Snakemake's console output of the run) every job's
start and finish time is read from it as well, so the jobs without benchmark files (init,
prune, aggregate, plot: a few seconds each) are counted too. The wall time of the run comes
from ``--wall-s`` (repeated: the segments of a stopped and resumed run, summed), from the last
line ``<name> ... wall_s=<seconds>`` of ``--timings``, or from the first and last timestamps of
``--log``, or with ``--pieces`` from Snakemake's own logs of the run (RUN_DIR/.snakemake/log/:
one per invocation; each piece from the time in its file name to its last timestamp, so the
minutes of jobs killed at a stop are left out, as they are from the benchmark files; dry runs
and ``--unlock`` have no timestamp and count 0). A resumed run's benchmark files hold its jobs
from every segment, while a log or a timings line may cover only the last one: give every
segment's wall time then; the work of jobs killed at a stop is in no benchmark file.

The figure is wall / (sum of job times / cores): 1.0 means the cores were never idle; the
issue's target is <= 1.15 with ``--cores 2``. A job's own time grows with whatever else runs on
the machine, so on a shared machine this ratio can look better than the cores' real use.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import sys
from pathlib import Path

import numpy as np

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_LOG_NAME = re.compile(r"^(\d{4}-\d\d-\d\dT\d{6})(?:\.\d+)?\.snakemake\.log$")


def benchmark_rows(run_dir: Path) -> dict[str, dict[str, float]]:
    """Relative path of each benchmark file -> its columns (each the mean of its repeats; a column
    that is not a number, such as h:m:s or an "NA" of a process too short to sample, is left out)."""
    out = {}
    for path in sorted((run_dir / "benchmarks").rglob("*.tsv")):
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            cols = {}
            for key in rows[0]:
                try:
                    cols[key] = sum(float(r[key]) for r in rows) / len(rows)
                except (TypeError, ValueError):
                    pass
            out[str(path.relative_to(run_dir))] = cols
    return out


def log_pieces(run_dir: Path) -> list[tuple[str, float]]:
    """(log name, seconds) per Snakemake invocation of the run, from RUN_DIR/.snakemake/log/: from
    the time in the log's name (when Snakemake started) to its last timestamp."""
    pieces = []
    for path in sorted((run_dir / ".snakemake" / "log").glob("*.snakemake.log")):
        m = _LOG_NAME.match(path.name)
        if not m:
            continue
        began = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H%M%S")
        last = None
        for line in path.read_text(errors="replace").splitlines():
            s = _STAMP.match(line)
            if s:
                last = dt.datetime.strptime(" ".join(s.group(1).split()), "%a %b %d %H:%M:%S %Y")
        pieces.append((path.name, max(0.0, (last - began).total_seconds()) if last else 0.0))
    return pieces


def log_jobs(log: Path) -> tuple[dict[int, tuple[str, float]], float | None]:
    """jobid -> (rule, seconds) from a Snakemake log, and the span of its timestamps (s)."""
    stamp = None
    first = last = None
    rule = None
    starts: dict[int, tuple[str, dt.datetime]] = {}
    jobs: dict[int, tuple[str, float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        m = _STAMP.match(line)
        if m:
            stamp = dt.datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            first = first or stamp
            last = stamp
            rule = None
            continue
        m = _RULE.match(line)
        if m:
            rule = m.group(1)
            continue
        m = _JOBID.match(line)
        if m and rule is not None and stamp is not None:
            starts.setdefault(int(m.group(1)), (rule, stamp))
            continue
        m = _FINISHED.match(line)
        if m and stamp is not None and int(m.group(1)) in starts:
            name, began = starts[int(m.group(1))]
            jobs[int(m.group(1))] = (name, (stamp - began).total_seconds())
    span = (last - first).total_seconds() if first and last else None
    return jobs, span


def wall_from_timings(path: Path, name: str) -> float:
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            m = re.search(r"wall_s=(\d+(?:\.\d+)?)", line)
            if m:
                wall = float(m.group(1))  # the last matching line wins (a resumed run)
    try:
        return wall
    except NameError:
        raise SystemExit(f"{path}: no line for run {name!r} with wall_s=") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--cores", type=int, required=True, help="the run's --cores")
    ap.add_argument("--wall-s", type=float, action="append", help="the run's wall time in seconds (repeat: summed)")
    ap.add_argument("--timings", type=Path, help="a file with a line '<name> ... wall_s=<seconds>' per run")
    ap.add_argument("--name", default="default", help="the run's name in --timings")
    ap.add_argument("--log", type=Path, help="Snakemake's console output of the run")
    ap.add_argument("--pieces", action="store_true",
                    help="the wall time from Snakemake's logs of the run (RUN_DIR/.snakemake/log/), summed")
    ap.add_argument("--out", type=Path, help="also write the figures to this CSV")
    args = ap.parse_args(argv)

    rows_by_file = benchmark_rows(args.run_dir)
    bench = {k: v["s"] for k, v in rows_by_file.items()}
    if not bench:
        raise SystemExit(f"{args.run_dir}/benchmarks: no benchmark files (has the run started?)")
    jobs, span = log_jobs(args.log) if args.log else ({}, None)
    if args.wall_s:
        wall, wall_from = sum(args.wall_s), "--wall-s" + (f" ({len(args.wall_s)} segments)" if len(args.wall_s) > 1 else "")
    elif args.timings is not None:
        wall, wall_from = wall_from_timings(args.timings, args.name), f"{args.timings} ({args.name})"
    elif args.pieces:
        pieces = log_pieces(args.run_dir)
        if not pieces:
            raise SystemExit(f"{args.run_dir}/.snakemake/log: no Snakemake logs")
        for name, secs in pieces:
            print(f"piece {name:<44} {secs:10.0f} s")
        wall = sum(secs for _, secs in pieces)
        wall_from = f"{sum(1 for _, secs in pieces if secs > 0)} pieces from .snakemake/log"
    elif span is not None:
        wall, wall_from = span, f"first to last timestamp of {args.log}"
    else:
        raise SystemExit("give the run's wall time: --wall-s, --timings or --log")

    secs = list(bench.values())
    bench_sum = sum(secs)
    rows = [
        ("wall_s", wall, wall_from),
        ("cores", args.cores, ""),
        ("benchmark_files", len(bench), "jobs with a benchmark: file (training)"),
        ("benchmark_sum_s", bench_sum, "sum of their s column"),
        ("wall_over_benchmark_sum_per_core", wall / (bench_sum / args.cores), "target <= 1.15"),
        ("benchmark_median_s", float(np.median(secs)), "a job's s: median"),
        ("benchmark_p10_s", float(np.quantile(secs, 0.1)), "10th percentile"),
        ("benchmark_p90_s", float(np.quantile(secs, 0.9)), "90th percentile"),
    ]
    kinds: dict[str, list[float]] = {}  # dense.tsv, ticket.tsv, reinit_<k>.tsv: what a job trained
    for path, secs in bench.items():
        kinds.setdefault(re.sub(r"_\d+$", "", Path(path).stem), []).append(secs)
    rows += [(f"benchmark_sum_s_{k}", sum(v), f"{len(v)} jobs, mean {sum(v) / len(v):.0f} s")
             for k, v in sorted(kinds.items())]
    cpu = [v["cpu_time"] for v in rows_by_file.values() if "cpu_time" in v]
    if cpu:
        rows.append(("benchmark_cpu_sum_s", sum(cpu), f"sum of the cpu_time column ({len(cpu)} files)"))
    rss = [v["max_rss"] for v in rows_by_file.values() if "max_rss" in v]
    if rss:
        rows.append(("benchmark_max_rss_mb", max(rss), "the largest peak RSS of a job"))
    if jobs:
        per_rule: dict[str, list[float]] = {}
        for rule, secs in jobs.values():
            per_rule.setdefault(rule, []).append(secs)
        all_sum = sum(sum(v) for r, v in per_rule.items() if r != "all")
        rows += [
            ("log_jobs", sum(len(v) for r, v in per_rule.items() if r != "all"), "finished jobs in the log"),
            ("log_sum_s", all_sum, "sum of their start-to-finish times (1 s resolution)"),
            ("wall_over_log_sum_per_core", wall / (all_sum / args.cores), "all jobs; target <= 1.15"),
        ]
        rows += [(f"log_sum_s_{r}", sum(v), f"{len(v)} jobs") for r, v in sorted(per_rule.items()) if r != "all"]
    for name, value, note in rows:
        shown = f"{value:12.4g}" if isinstance(value, float) else f"{value:>12}"
        print(f"{name:<36} {shown}  {note}")
    if args.out:
        with open(args.out, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["metric", "value", "detail"])
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
