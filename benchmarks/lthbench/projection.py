"""A paper-protocol job's time per paper level, before and after, and the paper profile (185 jobs)
projected from them.

A job (50K steps, an evaluation every 100: 500 evaluations) costs its fixed cost (fresh process:
start, imports, ``load_split``; with the sparse kernels also numba's start and the load of the
compiled loops, and building the survivors' CSR form), 50K steps, 500 validation evaluations,
a test evaluation wherever ``test_eval`` measures it, and the final training-set accuracy (55K
images: 11 validation evaluations' worth). Every part is measured in this run (item 5, item 7);
how many evaluations measure the test split is counted on the committed paper-protocol curves
(``results/paper/curves.csv``: 185 jobs, the validation loss at every evaluation).

- **before** (today's defaults): dense kernels, ``test_eval: all`` (a test evaluation at each of
  the 500);
- **after** (the new defaults): ``kernels: auto`` (sparse below ``AUTO_SPARSE_BELOW_PERCENT``) and
  ``test_eval: minima`` with ``test_every`` 1000 (the test split at new validation minima, at the
  last evaluation and at each multiple of 1000 iterations).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from lth.pruning import target_remaining
from lth.training import AUTO_SPARSE_BELOW_PERCENT

from .common import ROOT, Run

PAPER_CURVES = ROOT / "results" / "paper" / "curves.csv"
# The paper profile (config/paper.yaml): 5 trials x 19 ticket levels (rounds 0-18) + 5 x 18
# reinitialised levels (rounds 1-18).
PAPER_TRIALS = 5
PAPER_JOB_ROUNDS = [*range(0, 19), *range(1, 19)]
PAPER_ITERATIONS = 50_000
EVAL_EVERY = 100
PAPER_EVALUATIONS = PAPER_ITERATIONS // EVAL_EVERY
TEST_EVERY = 1000
TRAIN_EVAL_IN_VALS = 11  # the final training-set accuracy: 55K images, 11 x the 5K validation split
# Issue 25's targets: a job after / before per level, and the paper profile.
JOB_TARGETS = {"100": 0.70, "7.0": 0.30, "1.9": 0.15}
PROFILE_TARGET = 0.45


def paper_densities() -> list[float]:
    """Percent remaining of each round 0-18 of the paper's rates (per-layer counts, lth.pruning)."""
    sizes = ((235200, 0.2), (30000, 0.2), (1000, 0.1))
    total = sum(n for n, _ in sizes)
    return [100.0 * sum(target_remaining(n, rate, r) for n, rate in sizes) / total for r in range(19)]


def tested_evaluations(curves: Path = PAPER_CURVES, test_every: int = TEST_EVERY) -> dict[int, float]:
    """Mean number of evaluations per job that measure the test split under ``test_eval: minima``,
    by round, over the jobs of ``curves`` (a new minimum of the validation loss, the last
    evaluation, or the first evaluation of a window of ``test_every`` iterations)."""
    jobs: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    with open(curves, newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["experiment"], row["replicate"], row["trial"], int(row["round"]))
            jobs[key].append((int(row["iteration"]), float(row["val_loss"])))
    per_round: dict[int, list[int]] = defaultdict(list)
    for key, rows in jobs.items():
        rows.sort()
        best, tested = float("inf"), 0
        for i, (iteration, val_loss) in enumerate(rows):
            new_min = val_loss < best
            best = min(best, val_loss)
            if new_min or i == len(rows) - 1 or iteration % test_every < EVAL_EVERY:
                tested += 1
        per_round[key[3]].append(tested)
    return {r: float(np.mean(v)) for r, v in sorted(per_round.items())}


def job_seconds(m: dict, kernels: str, clock: str, fixed: float, tests: float) -> float:
    """A paper-protocol job's seconds from the medians ``m`` of one level (see the module)."""
    return (fixed + m[(kernels, "setup", clock)] + PAPER_ITERATIONS * m[(kernels, "step", clock)]
            + (PAPER_EVALUATIONS + TRAIN_EVAL_IN_VALS) * m[(kernels, "val", clock)] + tests * m[(kernels, "test", clock)])


def auto_kernels(pct: float) -> str:
    return "sparse" if pct < AUTO_SPARSE_BELOW_PERCENT else "dense"


def _fixed(sub: dict, kernels: str, i: int) -> float:
    return sub["sparse_startup" if kernels == "sparse" else "job_startup"][i]


def per_level_jobs(run: Run, levels: dict[str, dict], sub: dict, tests_by_round: dict[int, float],
                   rounds: dict[str, int]) -> dict[str, dict]:
    """Rows ``job_before_s@L``, ``job_after_s@L`` and their ratio per measured level; also the
    job with the sparse kernels at every level (``job_sparse_s@L``), for the crossover."""
    jobs = {}
    for level, m in levels.items():
        tests = tests_by_round[rounds[level]]
        k = auto_kernels(float(level))
        t = {}
        for clock, i in (("wall", 0), ("cpu", 1)):
            t[("before", clock)] = job_seconds(m, "dense", clock, _fixed(sub, "dense", i), PAPER_EVALUATIONS)
            t[("after", clock)] = job_seconds(m, k, clock, _fixed(sub, k, i), tests)
            t[("dense_minima", clock)] = job_seconds(m, "dense", clock, _fixed(sub, "dense", i), tests)
            t[("sparse_minima", clock)] = job_seconds(m, "sparse", clock, _fixed(sub, "sparse", i), tests)
        jobs[level] = t
        target = JOB_TARGETS.get(level)
        run.put(f"tests_per_job@{level}", tests, "evaluations", 1,
                f"test_eval minima (test_every {TEST_EVERY}): mean over round {rounds[level]}'s jobs of {PAPER_CURVES.name}")
        run.put(f"job_before_s@{level}", t[("before", "wall")], "s", 1,
                f"dense kernels, test_eval all: 50K steps + {PAPER_EVALUATIONS} x (val + test) + train accuracy + fixed",
                cpu=t[("before", "cpu")])
        run.put(f"job_after_s@{level}", t[("after", "wall")], "s", 1,
                f"kernels auto ({k} here), test_eval minima: 50K steps + {PAPER_EVALUATIONS} val + {tests:.0f} test + "
                f"train accuracy + fixed", cpu=t[("after", "cpu")])
        run.put(f"job_after_over_before@{level}", t[("after", "wall")] / t[("before", "wall")], "x", 1,
                f"target <= {target}" if target else "", cpu=t[("after", "cpu")] / t[("before", "cpu")])
        run.put(f"job_sparse_over_dense@{level}", t[("sparse_minima", "wall")] / t[("dense_minima", "wall")], "x", 1,
                "both test_eval minima: the kernels alone", cpu=t[("sparse_minima", "cpu")] / t[("dense_minima", "cpu")])
    return jobs


def crossover(jobs: dict[str, dict], clock: str) -> float:
    """The density (percent) below which a sparse job is faster than a dense one (both with
    ``test_eval: minima``), interpolated linearly between the measured levels where the sign of
    (sparse - dense) changes from the top; 0 if sparse is slower everywhere, 100 if faster."""
    pts = sorted(((float(lv), t[("sparse_minima", clock)] - t[("dense_minima", clock)]) for lv, t in jobs.items()),
                 reverse=True)
    if pts[0][1] < 0:
        return 100.0
    for (p_hi, d_hi), (p_lo, d_lo) in zip(pts, pts[1:]):
        if d_lo < 0 <= d_hi:
            return p_lo + (p_hi - p_lo) * (-d_lo) / (d_hi - d_lo)
    return 0.0


def paper_projection(run: Run, levels: dict[str, dict], sub: dict, tests_by_round: dict[int, float]) -> dict:
    """The paper profile's training time (185 jobs, one thread per job, summed), projected from
    the per-level medians interpolated linearly in density between the measured levels: before
    (dense, test all), after (auto, test minima), and the bounds (dense and sparse everywhere,
    test minima; the faster per job)."""
    pcts = sorted(float(level) for level in levels)
    keys = {float(level): level for level in levels}
    densities = paper_densities()
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for clock, i in (("wall", 0), ("cpu", 1)):

        def at(kernels, part, pct, _clock=clock):
            return float(np.interp(pct, pcts, [levels[keys[p]][(kernels, part, _clock)] for p in pcts]))

        for r in PAPER_JOB_ROUNDS:
            pct, tests = densities[r], tests_by_round[r]
            m = {(k, part, clock): at(k, part, pct) for k in ("dense", "sparse") for part in ("setup", "step", "val", "test")}
            d_all = job_seconds(m, "dense", clock, _fixed(sub, "dense", i), PAPER_EVALUATIONS)
            d = job_seconds(m, "dense", clock, _fixed(sub, "dense", i), tests)
            s = job_seconds(m, "sparse", clock, _fixed(sub, "sparse", i), tests)
            totals[("before", clock)] += PAPER_TRIALS * d_all
            totals[("after", clock)] += PAPER_TRIALS * (s if auto_kernels(pct) == "sparse" else d)
            totals[("dense_minima", clock)] += PAPER_TRIALS * d
            totals[("sparse_minima", clock)] += PAPER_TRIALS * s
            totals[("best_minima", clock)] += PAPER_TRIALS * min(d, s)
    n_jobs = PAPER_TRIALS * len(PAPER_JOB_ROUNDS)
    for name, what in (("before", "dense kernels, test_eval all (today's defaults)"),
                       ("after", f"kernels auto (sparse below {AUTO_SPARSE_BELOW_PERCENT:g} %), test_eval minima"),
                       ("dense_minima", "dense kernels, test_eval minima"),
                       ("sparse_minima", "sparse kernels at every level, test_eval minima")):
        run.put(f"paper_profile_{name}_s", totals[(name, "wall")], "s", 1, f"{n_jobs} jobs, projected: {what}",
                cpu=totals[(name, "cpu")])
    run.put("paper_profile_after_over_before", totals[("after", "wall")] / totals[("before", "wall")], "x", 1,
            f"target <= {PROFILE_TARGET}", cpu=totals[("after", "cpu")] / totals[("before", "cpu")])
    run.put("paper_profile_best_over_before", totals[("best_minima", "wall")] / totals[("before", "wall")], "x", 1,
            "the faster kernels for every job, test_eval minima (a bound for any crossover)",
            cpu=totals[("best_minima", "cpu")] / totals[("before", "cpu")])
    run.put("paper_profile_auto_over_dense", totals[("after", "wall")] / totals[("dense_minima", "wall")], "x", 1,
            "the kernels alone: auto / dense, both test_eval minima",
            cpu=totals[("after", "cpu")] / totals[("dense_minima", "cpu")])
    return totals
