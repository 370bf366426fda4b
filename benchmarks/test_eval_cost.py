"""What test_eval saves: a paper-protocol job's time under minima and best against all, in one run.

    python3 benchmarks/test_eval_cost.py [--mnist ../shared/mnist] [--reps 7] [--check-iterations 3000]

One thread, LeNet-300-100, dense kernels. In one process, interleaved and repeated (medians of CPU
time): 100 training steps, one validation evaluation (5K images) and one test evaluation (10K).
How many evaluations measure the test split under each mode is counted on the committed
``oneshot_vs_iterative`` run's curves (every job of both variants, 500 evaluations each, test
accuracy at every one): the new minima of the validation loss, the last evaluation and, under
minima, the first evaluation of every ``test_every`` iterations. A 50K-iteration job's time is
then 500 x (100 steps + validation) + (tested fraction) x 500 x test + the final training-set
accuracy (55K images); the printed figures are ratios to ``all``.
A check trains one short job per mode with ``lth.training.train`` (interleaved, medians) and
sets the measured ratio beside the one the figures above predict for it. Speed is a ratio
against a baseline of the same run, never a time compared with a number fixed in advance.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lth.data import Split, load_split  # noqa: E402
from lth.models import init_model  # noqa: E402
from lth.training import TrainConfig, _DenseKernels, _Masker, evaluate, train  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from lthbench.common import prepare_data  # noqa: E402

RUN = ROOT / "results" / "studies" / "oneshot_vs_iterative"
KEYS = ["experiment", "replicate", "trial", "round"]


def data(mnist: Path | None, tmp: Path) -> tuple[Split, str]:
    """The real MNIST split (5K validation), or random images of its size (benchmark.py's data)."""
    idx, _, what = prepare_data(mnist, tmp)
    return load_split(idx, 5000, 0), what


def tested_fraction(curves: pd.DataFrame, mode: str, test_every: int = 1000, eval_every: int = 100) -> float:
    """The fraction of evaluations that measure the test split under ``mode``, over every job."""
    tested = total = 0
    for _, c in curves.groupby(["variant", *KEYS]):
        val, it = c["val_loss"].to_numpy(), c["iteration"].to_numpy()
        sel = np.ones(len(c), bool) if mode == "all" else np.r_[True, val[1:] < np.minimum.accumulate(val)[:-1]]
        sel[-1] = True
        if mode == "minima":
            sel |= it % test_every < eval_every
        tested += int(sel.sum())
        total += len(c)
    return tested / total


def cpu_median(fns: dict, reps: int) -> dict[str, float]:
    """CPU seconds of each function, medians of ``reps`` interleaved repetitions."""
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            start = time.process_time()
            fn()
            times[k].append(time.process_time() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("LTH_MNIST_DIR", ROOT.parent / "shared" / "mnist"))
    ap.add_argument("--mnist", type=Path, default=default, help="MNIST folder (default ../shared/mnist)")
    ap.add_argument("--reps", type=int, default=7, help="interleaved repetitions of each part (default 7)")
    ap.add_argument("--check-iterations", type=int, default=3000,
                    help="iterations of the end-to-end check's job per mode (default 3000; 0: no check)")
    ap.add_argument("--test-every", type=int, default=1000, help="test_eval minima's cadence (default 1000)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        split, what = data(args.mnist, Path(tmp))

    model = init_model("lenet_300_100", 0)
    kernels = _DenseKernels(model, _Masker(model, None), TrainConfig())
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(0, len(split.train_x), (100, 60), generator=g)

    def steps():
        for r in rows:
            kernels.step(split.train_x[r], split.train_y[r])

    parts = cpu_median({"steps": steps, "val": lambda: evaluate(model, split.val_x, split.val_y),
                        "test": lambda: evaluate(model, split.test_x, split.test_y),
                        "train": lambda: evaluate(model, split.train_x, split.train_y)}, args.reps)

    def job_s(iterations: int, evaluations: int, tests: float) -> float:
        """A job's CPU time from the parts (training steps, evaluations, the final train accuracy)."""
        return (iterations / 100 * parts["steps"] + evaluations * parts["val"] + tests * parts["test"]
                + parts["train"])

    # The two variants' jobs share their keys (and the dense runs): one job per (variant, keys).
    curves = pd.concat([pd.read_csv(RUN / v / "curves.csv").assign(variant=v) for v in ("iterative", "oneshot")])
    print(f"# test_eval cost: 1 thread, {what}, medians of {args.reps} interleaved repetitions (CPU time)\n")
    print(f"100 steps {1000 * parts['steps']:.1f} ms; one evaluation / 100 steps: validation "
          f"{parts['val'] / parts['steps']:.3f}, test {parts['test'] / parts['steps']:.3f}\n")
    print("| test_eval | evaluations that test (committed study) | job time / all |")
    print("|---|---|---|")
    for mode in ("all", "minima", "best"):
        f = tested_fraction(curves, mode, args.test_every)
        label = f"minima (test_every {args.test_every})" if mode == "minima" else mode
        print(f"| {label} | {f:.3f} | {job_s(50_000, 500, 500 * f) / job_s(50_000, 500, 500):.3f} |")

    if args.check_iterations:
        n = args.check_iterations
        results = {}

        def job(mode):
            def run():
                cfg = TrainConfig(iterations=n, eval_every=100, data_seed=1, test_eval=mode, test_every=args.test_every)
                results[mode] = train(init_model("lenet_300_100", 0), None, split, cfg)
            return run

        reps = max(3, args.reps // 2)
        t = cpu_median({m: job(m) for m in ("all", "minima", "best")}, reps)
        print(f"\ncheck: one {n:,}-iteration job per mode (train(), medians of {reps} interleaved runs)\n")
        print("| test_eval | evaluations that test | measured job time / all | predicted from the parts |")
        print("|---|---|---|---|")
        evals = len(results["all"].curve)
        for mode in ("all", "minima", "best"):
            tests = sum(not np.isnan(r["test_accuracy"]) for r in results[mode].curve)
            predicted = job_s(n, evals, tests) / job_s(n, evals, evals)
            print(f"| {mode} | {tests / evals:.3f} | {t[mode] / t['all']:.3f} | {predicted:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
