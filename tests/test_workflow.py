"""The Snakemake workflow end to end: the DAG of the default config, what a config edit reruns, a tiny
run on small data (tables, plots, reproducibility), bad input stopped before any job starts, a
killed run resumed, two runs at once refused by the lock, and the real MNIST with a small budget.

The tiny runs are the expensive part (a Python + torch start per job on a 2-core machine), so one
completed run (``tiny_run``) serves every test that only reads it or dry-runs against it."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from lth import checkpoint
from lth.aggregate import SUMMARY_COLUMNS
from lth.models import init_model
from lth.pruning import target_remaining

from conftest import (
    ROOT,
    SHARED_MNIST,
    TINY_CONFIG,
    dry_run_jobs,
    job_path,
    make_small_mnist,
    round_path,
    run_snakemake,
    snakemake_cmd,
    trial_path,
)

pytestmark = pytest.mark.workflow

PLOTS = ["accuracy.png", "early_stop.png", "curves.png", "train_accuracy.png"]
LENET_SIZES = {"fc1.weight": 235200, "fc2.weight": 30000, "fc3.weight": 1000}
TRAINING = {"train_dense", "train_sparse"}


def percent(round_: int) -> float:
    kept = (target_remaining(235200, 0.2, round_) + target_remaining(30000, 0.2, round_)
            + target_remaining(1000, 0.1, round_))
    return 100 * kept / 266200


def dry_run(workdir: Path, config: dict) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """One dry run: (rule, first output) of every job it lists, and its job counts per rule."""
    text = run_snakemake(workdir, "-n", config=config).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    output: ([^,\n]+)", text, re.M)
    table = text[text.index("Job stats"):].splitlines()[3:]
    counts = {}
    for line in table:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return jobs, counts


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> dict:
    """conftest's TINY_CONFIG without the controls (tests/test_controls.py runs those): 2 trials x
    2 rounds of tickets on small data, 15 jobs."""
    data = make_small_mnist(tmp_path_factory.mktemp("tiny_data") / "mnist")
    return {**TINY_CONFIG, "controls": [], "data_source": str(data)}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_config) -> Path:
    """A completed run of the tiny config."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    run_snakemake(workdir, "--cores", "2", config=tiny_config)
    return workdir


# --- the DAG of the default config ----------------------------------------------------------


def test_default_config_has_5_trials_x_6_ticket_training_jobs(tmp_path):
    jobs, counts = dry_run(tmp_path, {"controls": []})
    training = [out for rule, out in jobs if rule in TRAINING]
    assert len(training) == 30
    runs = set()
    for out in training:  # results/runs/<dense>/trial_t/dense/ or <dense>/<prune>/trial_t/round_r/ticket/
        dense = re.match(r"results/runs/dense_[0-9a-f]{8}/trial_(\d+)/dense/model.pt$", out)
        pruned = re.match(r"results/runs/dense_[0-9a-f]{8}/prune_[0-9a-f]{8}/trial_(\d+)/round_(\d+)/(\w+)/model.pt$", out)
        assert dense or pruned, out
        runs.add((dense.group(1), "ticket", "0") if dense else (pruned.group(1), pruned.group(3), pruned.group(2)))
    assert runs == {(str(t), "ticket", str(r)) for t in range(5) for r in range(6)}
    assert {k: counts[k] for k in ("download_mnist", "init", "train_dense", "prune", "train_sparse")} == {
        "download_mnist": 1, "init": 5, "train_dense": 5, "prune": 25, "train_sparse": 25}
    assert counts["aggregate"] == 1 and counts["plot"] == 1


def test_default_config_with_its_reinit_control(tmp_path):
    counts = dry_run_jobs(tmp_path)  # config.yaml as it is: controls [reinit]
    assert counts["train_dense"] == 5
    assert counts["train_sparse"] == 25 + 25  # tickets + one reinitialisation each
    assert counts["init"] == 5
    assert counts["init_reinit"] == 25  # the control's own theta0 per (trial, round)
    assert counts["prune"] == 25
    assert "random_mask" not in counts


def test_all_controls_and_several_reinits(tmp_path):
    counts = dry_run_jobs(tmp_path, config={"trials": 2, "rounds": 3, "controls": ["reinit", "random_pruning"],
                                            "reinit_per_ticket": 2})
    assert counts["train_sparse"] == 2 * 3 * (1 + 2 + 1)
    assert counts["random_mask"] == 2 * 3
    assert counts["init"] == 2 and counts["init_reinit"] == 2 * 3 * 2
    assert counts["train_dense"] == 2 and counts["prune"] == 6


# --- the tiny run: tables, plots, files ---------------------------------------------------------


def test_tiny_run_summary(tiny_run):
    summary = pd.read_csv(tiny_run / "results" / "summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert {"trial", "round", "percent_remaining", "early_stop_iteration", "early_stop_val_loss",
            "early_stop_test_accuracy", "final_test_accuracy"} <= set(summary.columns)  # issue 2's minimum
    keys = set(zip(summary["experiment"], summary["replicate"], summary["trial"], summary["round"]))
    assert keys == {("ticket", 0, t, r) for t in (0, 1) for r in (0, 1, 2)} and len(summary) == 6
    for r in (0, 1, 2):
        assert summary.loc[summary["round"] == r, "percent_remaining"].tolist() == pytest.approx(
            [percent(r)] * int((summary["round"] == r).sum()))
    for col in ("early_stop_val_accuracy", "early_stop_test_accuracy", "final_test_accuracy", "final_train_accuracy"):
        assert summary[col].between(0, 1).all(), col
    assert summary["early_stop_test_accuracy"].nunique() > 1  # small data that is not trivially separable
    assert summary["early_stop_test_accuracy"].max() < 1.0
    assert set(summary["early_stop_iteration"]) <= {20, 40, 60}
    assert (summary["iterations_run"] == 60).all() and (summary["final_iteration"] == 60).all()
    dense = summary[summary["round"] == 0]
    assert (dense["early_stop_test_accuracy"] > 0.3).all()  # it learned something


def test_tiny_run_curves_match_the_summary(tiny_run):
    summary = pd.read_csv(tiny_run / "results" / "summary.csv")
    curves = pd.read_csv(tiny_run / "results" / "curves.csv")
    assert list(curves.columns) == ["experiment", "replicate", "trial", "round", "iteration", "train_loss",
                                    "val_loss", "val_accuracy", "test_accuracy"]
    assert len(curves) == 6 * 3  # three evaluations (20, 40, 60) per training job
    for row in summary.itertuples():
        c = curves[(curves.experiment == row.experiment) & (curves.replicate == row.replicate)
                   & (curves.trial == row.trial) & (curves["round"] == row.round)]
        assert c["iteration"].tolist() == [20, 40, 60]
        best = c.loc[c["val_loss"].idxmin()]
        assert best["iteration"] == row.early_stop_iteration
        assert best["test_accuracy"] == row.early_stop_test_accuracy
        assert c["test_accuracy"].iloc[-1] == row.final_test_accuracy


def test_tiny_run_plots_are_valid_pngs(tiny_run):
    import matplotlib.image

    for name in PLOTS:
        path = tiny_run / "results" / "plots" / name
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", name
        width, height = struct.unpack(">II", data[16:24])
        assert width > 200 and height > 200, name
        image = matplotlib.image.imread(path)
        assert image.std() > 0.01, f"{name} is blank"


def test_tiny_run_trained_tickets_keep_pruned_weights_at_zero(tiny_run, tiny_config):
    for t in (0, 1):
        for r, experiment in ((1, "ticket"), (2, "ticket")):
            masks = checkpoint.load_masks(round_path(tiny_run, tiny_config, t, r, "mask.pt"), "lenet_300_100")
            state = checkpoint.load_weights(job_path(tiny_run, tiny_config, t, experiment, r, "model.pt"),
                                            "lenet_300_100")
            for name, mask in masks.items():
                assert int(mask.sum()) == target_remaining(LENET_SIZES[name], 0.1 if name == "fc3.weight" else 0.2, r)
                assert bool((state[name][~mask] == 0).all()), (t, r, experiment, name)


@pytest.mark.bitwise
def test_tiny_run_rewinds_to_the_trials_theta0(tiny_run, tiny_config):
    """rewind_iteration 0: the tickets start from theta0 itself (no rewind point is made)."""
    for t in (0, 1):
        theta0 = checkpoint.load_weights(trial_path(tiny_run, tiny_config, t, "init.pt"), "lenet_300_100")
        trained = checkpoint.load_weights(job_path(tiny_run, tiny_config, t, "ticket", 0, "model.pt"), "lenet_300_100")
        assert all(torch.equal(theta0[k], v) for k, v in init_model("lenet_300_100", t).state_dict().items())
        assert not torch.equal(trained["fc1.weight"], theta0["fc1.weight"])
    assert not list(tiny_run.glob("results/**/rewind_*.pt"))


def test_tiny_run_leaves_no_temporary_files(tiny_run):
    assert not [p for p in tiny_run.rglob("*.part")]


def test_tiny_run_provenance_names_the_repository_commit(tiny_run):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the repository is not a git checkout")
    provenance = json.loads((tiny_run / "results" / "provenance.json").read_text())
    assert provenance["git"]["commit"] == head.stdout.strip()


# --- what a config edit reruns (dry runs against the completed tiny run) -------------------------


def test_a_complete_run_has_nothing_to_do(tiny_run, tiny_config):
    assert dry_run_jobs(tiny_run, config=tiny_config) == {}


def test_more_rounds_reruns_only_the_new_rounds_jobs(tiny_run, tiny_config):
    counts = dry_run_jobs(tiny_run, config={**tiny_config, "rounds": 3})
    # round 3 of 2 trials: a mask and a ticket each; then the tables and figures
    assert counts == {"prune": 2, "train_sparse": 2, "aggregate": 1, "plot": 1, "all": 1}


@pytest.mark.parametrize("edit", [{"lr": 0.002}, {"eval_every": 30}, {"iterations": 80}])
def test_a_training_parameter_plans_a_new_dense_lineage_but_not_the_download(tiny_run, tiny_config, edit):
    counts = dry_run_jobs(tiny_run, config={**tiny_config, **edit})
    assert counts.get("train_dense") == 2 and counts.get("train_sparse") == 4
    assert counts.get("prune") == 4  # the masks depend on the retrained weights
    assert counts.get("init") == 2  # theta0 again (same bytes) under the new lineage's folder
    assert "download_mnist" not in counts


def test_a_pruning_rate_reruns_masks_and_sparse_training_only(tiny_run, tiny_config):
    counts = dry_run_jobs(tiny_run, config={**tiny_config, "prune_rate": 0.3})
    assert counts.get("prune") == 4 and counts.get("train_sparse") == 4
    assert not {"download_mnist", "init", "init_reinit", "train_dense"} & set(counts)


def test_a_new_download_does_not_rerun_the_grid(tiny_run, tiny_config):
    counts = dry_run_jobs(tiny_run, "--forcerun", "download_mnist", config=tiny_config)
    assert counts.get("download_mnist") == 1
    assert not {"init", "init_reinit", "train_dense", "prune", "train_sparse"} & set(counts)


def test_forcerun_train_dense_reruns_every_training_job(tiny_run, tiny_config):
    """The README's command after an edit of the lth library (Snakemake does not track imports)."""
    counts = dry_run_jobs(tiny_run, "--forcerun", "train_dense", config=tiny_config)
    assert counts.get("train_dense") == 2 and counts.get("prune") == 4 and counts.get("train_sparse") == 4
    assert not {"download_mnist", "init"} & set(counts)


# --- bad config: one line, before any job starts --------------------------------------------------


def assert_stopped_before_any_job(workdir: Path, proc) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Job stats" not in text and "Select jobs to execute" not in text
    for folder in ("resources", "results", "logs", "benchmarks"):
        assert not (workdir / folder).exists(), f"{folder}/ was created"
    return text


@pytest.mark.parametrize("entry, key, value, allowed", [
    ("trials=0", "trials", "0", "integer >= 1"),
    ("prune_rate=1.5", "prune_rate", "1.5", "number > 0 and < 1"),
    ("model=resnet18", "model", "'resnet18'", "one of 'lenet_300_100', 'lenet5'"),
    ("controls=[reinit,shuffle]", "controls[1]", "'shuffle'", "one of 'reinit', 'random_pruning'"),
    ("trails=3", None, "'trails'", "allowed keys: data_source"),
    ("data_source=/no/such/mnist", "data_source", "'/no/such/mnist'", "is not a folder"),
])
def test_bad_config_stops_with_one_line_before_any_job(tmp_path, entry, key, value, allowed):
    k, v = entry.split("=", 1)
    proc = run_snakemake(tmp_path, "--cores", "1", config={k: v}, check=False, timeout=120)
    text = assert_stopped_before_any_job(tmp_path, proc)
    lines = [line for line in text.splitlines() if line.startswith("config error: ")]
    assert len(lines) == 1, text
    line = lines[0]
    assert (f"config key {key!r}: {value}" if key else f"unknown config key(s) {value}") in line, line
    assert allowed in line, line


def test_yaml_syntax_error_in_a_configfile(tmp_path):
    bad = tmp_path / "profile.yaml"
    bad.write_text("trials: 2\nrounds: [1, 2\n")
    work = tmp_path / "work"
    work.mkdir()
    proc = run_snakemake(work, "--cores", "1", configfile=bad, check=False, timeout=120)
    text = assert_stopped_before_any_job(work, proc)
    # Snakemake reads --configfile before the Snakefile runs; this line is its own.
    assert "Config file is not valid JSON or YAML" in text


def test_unknown_key_in_a_configfile(tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("trials: 2\nround: 3\n")  # a typo for rounds
    work = tmp_path / "work"
    work.mkdir()
    proc = run_snakemake(work, "--cores", "1", configfile=profile, check=False, timeout=120)
    text = assert_stopped_before_any_job(work, proc)
    assert "config error: unknown config key(s) 'round'; allowed keys:" in text


# --- bad data through the workflow ----------------------------------------------------------------


def test_bad_data_fails_the_download_naming_the_file_and_nothing_is_trained(tmp_path):
    data = make_small_mnist(tmp_path / "data", gz=True)
    broken = data / "t10k-labels-idx1-ubyte.gz"
    broken.write_bytes(broken.read_bytes()[:-15])
    work = tmp_path / "work"
    work.mkdir()
    config = {**TINY_CONFIG, "data_source": str(data)}
    proc = run_snakemake(work, "--cores", "1", "resources/mnist/checksums.json", config=config, check=False,
                         timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"error: cannot read {broken}" in text
    assert "Traceback" not in text  # one line from the job, not a Python stack
    mnist = work / "resources" / "mnist"
    assert not mnist.exists() or [p.name for p in mnist.iterdir()] == []
    assert not list(work.glob("results/**/model.pt")) and not list(work.glob("results/**/result.json"))


# --- rounds: 0 ----------------------------------------------------------------------------------


def test_rounds_zero_runs_the_dense_network_only_and_plots_one_level(tmp_path, tiny_config):
    run_snakemake(tmp_path, "--cores", "2", config={**tiny_config, "trials": 1, "rounds": 0})
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert summary[["experiment", "trial", "round", "percent_remaining"]].values.tolist() == [["ticket", 0, 0, 100.0]]
    for name in PLOTS:
        data = (tmp_path / "results" / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert not list(tmp_path.glob("results/**/mask.pt"))


# --- interruption, the lock, reproducibility ------------------------------------------------------


def _results(workdir: Path) -> list[Path]:
    return sorted(workdir.glob("results/runs/**/result.json"))


def _training_in_progress(workdir: Path) -> bool:
    """A training job has started (its log exists) and not finished (no result.json). A training
    job's log is logs/runs/.../dense.log or .../round_r/<experiment>.log beside its result folder."""
    for log in workdir.glob("logs/runs/**/*.log"):
        if log.stem == "dense" or re.fullmatch(r"ticket|reinit_\d+|random_pruning", log.stem):
            result = workdir / "results" / log.relative_to(workdir / "logs").with_suffix("") / "result.json"
            if not result.exists():
                return True
    return False


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, tiny_config):
    """Start the tiny run, and while training jobs run: try a second snakemake on the same folder,
    then SIGKILL snakemake and its jobs (the whole process group), then recover as the README says.
    Returns what each step saw."""
    workdir = tmp_path_factory.mktemp("interrupted")
    seen = {}
    with open(workdir.parent / "interrupted.log", "w") as out:
        proc = subprocess.Popen(snakemake_cmd(workdir, "--cores", "2", config=tiny_config), cwd=workdir,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def wait_for(condition, what):
                deadline = time.monotonic() + 400
                while not condition():
                    assert proc.poll() is None, f"the run ended before {what}"
                    assert time.monotonic() < deadline, f"timed out waiting for {what}"
                    time.sleep(0.05)

            wait_for(lambda: _training_in_progress(workdir), "a training job started")
            seen["concurrent"] = run_snakemake(workdir, "--cores", "1", config=tiny_config, check=False, timeout=120)
            # Kill in the middle: some training jobs done, one running.
            wait_for(lambda: len(_results(workdir)) >= 2 and _training_in_progress(workdir), "it could be killed")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    seen["results_after_kill"] = _results(workdir)
    seen["summary_after_kill"] = (workdir / "results" / "summary.csv").exists()
    seen["files_after_kill"] = sorted(p for p in workdir.glob("results/**/*") if p.is_file())
    seen["plain_rerun"] = run_snakemake(workdir, "--cores", "2", config=tiny_config, check=False)
    seen["unlock"] = run_snakemake(workdir, "--unlock", config=tiny_config, check=False, timeout=120)
    seen["resume"] = run_snakemake(workdir, "--cores", "2", "--rerun-incomplete", config=tiny_config, check=False)
    seen["workdir"] = workdir
    return seen


def test_a_second_snakemake_on_the_same_folder_is_refused_by_the_lock(interrupted_run):
    proc = interrupted_run["concurrent"]
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "LockException" in text and "Directory cannot be locked" in text
    assert "--unlock" in text


def test_the_kill_interrupted_the_run_and_left_only_complete_files(interrupted_run):
    assert not interrupted_run["summary_after_kill"]
    assert 2 <= len(interrupted_run["results_after_kill"]) < 6
    for path in interrupted_run["files_after_kill"]:
        if path.name.endswith(".part"):
            continue  # a temporary name, never taken for an output
        if path.suffix == ".pt":
            kind = "masks" if path.name == "mask.pt" else "weights"
            (checkpoint.load_masks if kind == "masks" else checkpoint.load_weights)(path, "lenet_300_100")
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".csv":
            assert len(pd.read_csv(path)) > 0


def test_after_sigkill_the_stale_lock_is_reported_with_the_fix(interrupted_run):
    """SIGKILL gives Snakemake no chance to remove its lock: the next run says so and how to fix it."""
    proc = interrupted_run["plain_rerun"]
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Directory cannot be locked" in text and "--unlock" in text
    assert interrupted_run["unlock"].returncode == 0


@pytest.mark.bitwise
def test_rerun_incomplete_resumes_to_the_same_summary_as_an_uninterrupted_run(interrupted_run, tiny_run,
                                                                               tiny_config):
    resume = interrupted_run["resume"]
    assert resume.returncode == 0, resume.stderr[-3000:]
    workdir = interrupted_run["workdir"]
    for name in ("summary.csv", "curves.csv"):
        assert (workdir / "results" / name).read_bytes() == (tiny_run / "results" / name).read_bytes(), name
    assert dry_run_jobs(workdir, config=tiny_config) == {}  # and nothing is left to do


@pytest.mark.bitwise
def test_two_independent_runs_give_identical_files(interrupted_run, tiny_run):
    """The resumed run is a second, independent run of the same config in another folder: every
    checkpoint, mask, curve and result has the same bytes (CPU, one thread per job)."""
    workdir = interrupted_run["workdir"]
    names = sorted(p.relative_to(tiny_run) for p in tiny_run.glob("results/**/*")
                   if p.is_file() and p.suffix in (".pt", ".csv", ".json") and p.name != "provenance.json")
    assert len(names) > 20
    for name in names:
        assert (workdir / name).read_bytes() == (tiny_run / name).read_bytes(), str(name)


# --- the real MNIST, small budget ------------------------------------------------------------------


@pytest.mark.real_data
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no MNIST at {SHARED_MNIST}")
def test_real_mnist_dense_accuracy_above_0_9(tmp_path):
    config = {"data_source": str(SHARED_MNIST), "trials": 2, "rounds": 2, "iterations": 1000, "eval_every": 250,
              "controls": [], "device": "cpu"}
    run_snakemake(tmp_path, "--cores", "2", config=config, timeout=900)
    checksums = json.loads((tmp_path / "resources" / "mnist" / "checksums.json").read_text())
    assert checksums["verified"] is True
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert len(summary) == 2 * 3
    dense = summary[summary["round"] == 0]
    assert len(dense) == 2 and (dense["early_stop_test_accuracy"] > 0.9).all(), dense
    assert (summary["early_stop_test_accuracy"] > 0.85).all()
    assert summary.loc[summary["round"] == 2, "percent_remaining"].iloc[0] == pytest.approx(percent(2))
