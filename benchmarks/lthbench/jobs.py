"""Items 5 and 6, in fresh processes as the workflow runs a job: a training job's fixed cost
(start, imports, ``load_split``; with the sparse kernels also numba's start and the load of the
compiled loops from its cache) and its peak RSS, against a process that only imports torch."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from .common import HEAVY_MODULES, SRC, VAL_SIZE, Run, median
from .levels import RSS_ROUNDS, level_label

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


def sparse_startup_code(idx: Path, threads: int) -> str:
    """A job's start with the sparse kernels: ``job_startup_code``, then what ``train`` adds for
    ``kernels: sparse`` before its first step (numba's import, its start, loading the compiled
    loops from numba's cache; building the survivors' CSR form is timed in item 7, per level)."""
    return job_startup_code(idx, threads) + textwrap.dedent(
        """
        from lth.models import init_model
        from lth.sparse import SparseNet
        net = SparseNet(init_model("lenet_300_100", 0).linear_layers(), [None] * 3, 60, 1e-3)
        x, y = torch.zeros(60, 784), torch.zeros(60, dtype=torch.int64)
        net.step(x, y)
        net.evaluate(x, y)
        """
    )


def fixed_cost(run: Run) -> dict:
    """Item 5: a job's fixed cost (fresh processes, interleaved). Returns {name: [(wall, CPU, RSS)]}."""
    sub: dict[str, list[tuple[float, float, float]]] = {"python": [], "import_torch": [], "job_startup": [],
                                                         "sparse_startup": []}
    heavy = "?"
    for _ in range(run.sub_reps):  # interleaved, as above
        sub["python"].append(run_child("pass")[:3])
        sub["import_torch"].append(run_child("import torch" + PEAK_SUFFIX)[:3])
        w, c, r, o = run_child(job_startup_code(run.idx, run.args.threads))
        sub["job_startup"].append((w, c, r))
        heavy = next((ln[6:] for ln in o.splitlines() if ln.startswith("HEAVY=")), "?")
        if not run.args.no_sparse:
            sub["sparse_startup"].append(run_child(sparse_startup_code(run.idx, run.args.threads))[:3])

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
    if sub["sparse_startup"]:
        run.put("sparse_job_fixed_cost_s", med("sparse_startup", 0), "s", n,
                on_cpu("job_fixed_cost + numba's start + loading the compiled loops (kernels: sparse)"),
                cpu=med("sparse_startup", 1), on="cpu")
    return {k: (med(k, 0), med(k, 1), med(k, 2)) for k in sub if sub[k]}


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


def job_code(idx: Path, work: Path, threads: int, iterations: int, round_: int, kernels: str, test_eval: str) -> str:
    """A training job at a paper level as the workflow runs it, with ``kernels`` and ``test_eval``."""
    return job_train_code_at(idx, work, threads, iterations, round_, kernels).replace(
        f"kernels={kernels!r})", f"kernels={kernels!r}, test_eval={test_eval!r}, test_every=1000)")


def check_job_model(run: Run, levels: dict, sub: dict, iterations: int, rounds=((12, "7.0"), (18, "1.9"))) -> None:
    """``--check-jobs N``: real jobs of N iterations in fresh processes, before (dense, test_eval
    all) and after (auto, test_eval minima), at 7.0 and 1.9 %; their CPU-time ratio beside the one
    the job model of ``projection`` gives for the same iterations and the evaluations the jobs made."""
    import csv
    import json
    import math

    from .projection import TRAIN_EVAL_IN_VALS

    for round_, level in rounds:
        measured, model = {}, {}
        for mode, kernels, test_eval in (("before", "dense", "all"), ("after", "auto", "minima")):
            work = run.tmp / f"check_{round_}_{mode}"
            work.mkdir()
            cpu = run_child(job_code(run.idx, work, run.args.threads, iterations, round_, kernels, test_eval))[1]
            curve = list(csv.DictReader(open(work / "curve.csv")))
            tests = sum(1 for r in curve if r["test_accuracy"] and not math.isnan(float(r["test_accuracy"])))
            used = json.loads((work / "result.json").read_text())["kernel"]
            m = levels[level]
            fixed = sub["sparse_startup" if used == "sparse" else "job_startup"][1]
            measured[mode] = cpu
            model[mode] = (fixed + m[(used, "setup", "cpu")] + iterations * m[(used, "step", "cpu")]
                           + (len(curve) + TRAIN_EVAL_IN_VALS) * m[(used, "val", "cpu")] + tests * m[(used, "test", "cpu")])
            run.put(f"check_job_{mode}_s@{level}", cpu, "s", 1,
                    f"a real job in a fresh process: {iterations} iterations, kernels {kernels} ({used}), test_eval "
                    f"{test_eval}, {tests} of {len(curve)} evaluations tested; the model: {model[mode]:.1f} s", cpu=cpu,
                    on="cpu")
        run.put(f"check_job_after_over_before@{level}", measured["after"] / measured["before"], "x", 1,
                f"real jobs of {iterations} iterations (CPU time); the job model gives "
                f"{model['after'] / model['before']:.3f}", cpu=measured["after"] / measured["before"], on="cpu")
