"""Smoke tests of the speed benchmark (benchmarks/benchmark.py) and of the grid-efficiency reader.

They check that the scripts run and what they write, never a timing: timings belong to the
benchmark itself, on a known machine.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_CONFIG, make_small_mnist, run_snakemake

BENCH = ROOT / "benchmarks" / "benchmark.py"
GRID = ROOT / "benchmarks" / "grid_efficiency.py"
CUDA_JOBS = ROOT / "benchmarks" / "cuda_jobs.py"

NUMERIC = [
    "ours_dense_steps_per_s",
    "ours_sparse20_steps_per_s",
    "usual_steps_per_s",
    "usual_inmemory_steps_per_s",
    "bound_steps_per_s",
    "ratio_ours_dense_over_usual",
    "ratio_ours_dense_over_bound",
    "ratio_ours_sparse20_over_usual",
    "ratio_ours_sparse20_over_bound",
    "eval_val_ms",
    "eval_test_ms",
    "eval_all_over_100_steps",
    "eval_best_over_100_steps",
    "python_start_s",
    "import_torch_s",
    "job_fixed_cost_s",
    "import_torch_peak_rss_mb",
    "job_peak_rss_mb",
    "sparse_job_fixed_cost_s",
    # item 7: the kernels per paper level, peak RSS per mode, a job per level before and after,
    # the projected paper profile
    "dense_step_ms@100",
    "sparse_step_ms@7.0",
    "sparse_over_dense_step@1.9",
    "sparse_over_dense_eval@21.1",
    "dense_val_ms@51.3",
    "sparse_test_ms@3.6",
    "sparse_job_peak_rss_mb@1.9",
    "dense_job_peak_rss_mb@100",
    "tests_per_job@7.0",
    "job_before_s@100",
    "job_after_s@1.9",
    "job_after_over_before@7.0",
    "sparse_faster_below_percent",
    "paper_profile_before_s",
    "paper_profile_after_s",
    "paper_profile_after_over_before",
    "paper_profile_auto_over_dense",
]
LEVELS = ["100", "51.3", "21.1", "7.0", "3.6", "1.9"]


def test_benchmark_quick_writes_the_csv(tmp_path):
    out = tmp_path / "bench.csv"
    # An empty --mnist folder: the benchmark writes random IDX files of MNIST's size.
    (tmp_path / "no_mnist").mkdir()
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(out), "--mnist", str(tmp_path / "no_mnist")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    with open(out, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["metric", "value", "value_cpu", "unit", "reps", "detail", "device"]
        rows = {r["metric"]: r for r in reader}
    # The default device is the CPU, and every figure says so.
    assert {r["device"] for r in rows.values()} == {"cpu"}
    assert not any(name.startswith("gpu_") for name in rows)
    for name in NUMERIC:
        assert float(rows[name]["value"]) > 0, name
    for name in ("ours_dense_steps_per_s", "ratio_ours_dense_over_bound", "eval_all_over_100_steps"):
        assert float(rows[name]["value_cpu"]) > 0, name
    # The timed loop is train()'s loop, and a training job imports nothing heavy.
    assert rows["ours_loop_equals_train"]["value"] == "True"
    assert rows["job_heavy_imports"]["value"] == "none"
    assert rows["meta_quick"]["value"] == "True"
    assert "random IDX" in rows["meta_data"]["value"]
    # Every paper level has its step, evaluations and job before and after, and the per-level
    # table is printed with a row per level.
    for lv in LEVELS:
        for name in ("dense_step_ms", "sparse_step_ms", "dense_val_ms", "sparse_test_ms", "job_before_s", "job_after_s"):
            assert float(rows[f"{name}@{lv}"]["value_cpu"]) > 0, (name, lv)
        assert f"| {lv} % |" in proc.stdout, lv
    # The test evaluations of test_eval minima are counted on the committed curves: between the
    # cadence's 50 (+ the first, a new minimum) and all 500.
    assert all(50 < float(rows[f"tests_per_job@{lv}"]["value"]) < 500 for lv in LEVELS)
    assert "Paper profile (185 jobs, projected)" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: --device cuda would run")
def test_benchmark_device_cuda_without_a_gpu_fails_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--device", "cuda", "--out", str(tmp_path / "bench.csv")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("benchmark.py: error: --device cuda") and "no CUDA device" in last, proc.stderr
    assert not (tmp_path / "bench.csv").exists()


def test_grid_efficiency_reads_benchmarks_and_log(tmp_path):
    run = tmp_path / "run"
    for i, secs in enumerate((100.0, 300.0)):
        p = run / "benchmarks" / "train" / f"trial_{i}" / "round_0.tsv"
        p.parent.mkdir(parents=True)
        p.write_text(f"s\th:m:s\tmax_rss\n{secs}\t0:01:40\t900.0\n")
    log = tmp_path / "run.log"
    log.write_text(
        "[Fri Nov 27 10:00:00 2026]\nlocalrule init:\n    jobid: 3\n"
        "[Fri Nov 27 10:00:10 2026]\nFinished jobid: 3 (Rule: init)\n"
        "[Fri Nov 27 10:00:10 2026]\nrule train_dense:\n    jobid: 1\n"
        "[Fri Nov 27 10:00:10 2026]\nrule train_dense:\n    jobid: 2\n"
        "[Fri Nov 27 10:01:50 2026]\nFinished jobid: 1 (Rule: train_dense)\n"
        "[Fri Nov 27 10:05:10 2026]\nFinished jobid: 2 (Rule: train_dense)\n"
    )
    timings = tmp_path / "timings.txt"
    timings.write_text("default rc=0 wall_s=250 start=0 end=250\npaper rc=0 wall_s=9999\n")
    out = tmp_path / "grid.csv"
    proc = subprocess.run(
        [sys.executable, str(GRID), str(run), "--cores", "2", "--timings", str(timings), "--log", str(log),
         "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as fh:
        rows = {r["metric"]: float(r["value"]) for r in csv.DictReader(fh)}
    assert rows["wall_s"] == 250
    assert rows["benchmark_sum_s"] == 400
    assert rows["wall_over_benchmark_sum_per_core"] == 250 / 200
    assert rows["log_jobs"] == 3
    assert rows["log_sum_s"] == 10 + 100 + 300
    assert rows["log_sum_s_train_dense"] == 400


def test_grid_efficiency_sums_the_pieces_of_a_resumed_run_from_snakemakes_logs(tmp_path):
    run = tmp_path / "run"
    for name, secs, cpu in (("dense", 100.0, 90.0), ("ticket", 300.0, 280.0), ("reinit_0", 50.0, 40.0),
                            ("reinit_1", 70.0, 60.0)):
        p = run / "benchmarks" / "runs" / "trial_0" / f"{name}.tsv"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{secs}\t0:01:40\t{secs + 700}\t{cpu}\n")
    logs = run / ".snakemake" / "log"
    logs.mkdir(parents=True)
    # two pieces (killed at 10:05:10, resumed at 12:00:00), an --unlock with no timestamp
    (logs / "2026-11-27T100000.123456.snakemake.log").write_text(
        "Building DAG of jobs...\n[Fri Nov 27 10:00:10 2026]\nrule train_dense:\n    jobid: 1\n"
        "[Fri Nov 27 10:05:10 2026]\nFinished jobid: 1 (Rule: train_dense)\n")
    (logs / "2026-11-27T115900.000001.snakemake.log").write_text("Unlocked working directory.\n")
    (logs / "2026-11-27T120000.500000.snakemake.log").write_text(
        "[Fri Nov 27 12:00:01 2026]\nrule train_sparse:\n    jobid: 2\n[Fri Nov 27 12:02:00 2026]\n")
    out = tmp_path / "grid.csv"
    proc = subprocess.run([sys.executable, str(GRID), str(run), "--cores", "2", "--pieces", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as fh:
        rows = {r["metric"]: (float(r["value"]), r["detail"]) for r in csv.DictReader(fh)}
    assert rows["wall_s"] == (310 + 120, "2 pieces from .snakemake/log")
    assert proc.stdout.count("piece ") == 3
    assert rows["benchmark_sum_s"][0] == 520
    assert rows["benchmark_cpu_sum_s"][0] == 470
    assert rows["benchmark_max_rss_mb"][0] == 1000
    assert rows["benchmark_median_s"][0] == 85  # between 70 and 100
    assert rows["benchmark_sum_s_reinit"] == (120, "2 jobs, mean 60 s")
    assert rows["benchmark_sum_s_ticket"][0] == 300



@pytest.mark.workflow
def test_cuda_jobs_on_the_cpu_reproduces_a_runs_records(tmp_path):
    """cuda_jobs.py retrains finished jobs from their own init and mask; on the device that made
    the run (here the CPU) every compared number must equal the run's result.json."""
    data = make_small_mnist(tmp_path / "data")
    run = tmp_path / "run"
    run.mkdir()
    run_snakemake(run, "--cores", "2", config=dict(TINY_CONFIG, trials=1, rounds=1, controls=["reinit"],
                                                     data_source=str(data)))
    out = tmp_path / "jobs.csv"
    proc = subprocess.run(
        [sys.executable, str(CUDA_JOBS), "--run-dir", str(run), "--mnist", str(data), "--no-verify", "--device", "cpu",
         "--trial", "0", "--job", "ticket/round_0", "--job", "ticket/round_1", "--job", "reinit_0/round_1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["job"] for r in rows] == ["ticket/round_0", "ticket/round_1", "reinit_0/round_1"]
    for r in rows:
        for key in ("early_stop_iteration", "early_stop_test_accuracy", "final_test_accuracy", "percent_remaining"):
            assert r[f"recorded_{key}"] == r[f"rerun_{key}"], (r["job"], key)
        assert r["recorded_device"] == "cpu" and float(r["recorded_wall_s"]) > 0
    assert float(rows[1]["rerun_percent_remaining"]) < 100.0
    assert "| ticket/round_1 |" in proc.stdout
