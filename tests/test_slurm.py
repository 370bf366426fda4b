"""The workflow on a real one-node SLURM cluster, through the SLURM profile users get.

tests/cluster/start.sh starts munged, slurmctld and slurmd on this machine (root, Debian's
slurm-wlm and munge); tests/cluster/stop.sh stops them when the module is done. Snakemake runs
from a separate venv that holds snakemake-executor-plugin-slurm (tests/cluster/venv.sh): the plugin
must not be installed where the other tests run (every `snakemake` start would stall ~10 s).

One tiny grid (1 trial, 1 round, the reinit control) runs through `--profile profiles/slurm` plus
the overrides this one-node test cluster needs, then again after `rounds: 1 -> 2`; the same config
runs locally for comparison. Without root, the SLURM packages or the plugin, the module skips and
says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lth.lineage import lineage

from conftest import ROOT, TINY_CONFIG, dry_run_jobs, full_config, job_path, make_small_mnist, snakemake_cmd

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

CLUSTER = ROOT / "tests" / "cluster"
STATE = Path(os.environ.get("LTH_SLURM_DIR", "/tmp/lth-slurm"))
PROFILE = ROOT / "profiles" / "slurm"

# What a one-node test cluster needs on top of profiles/slurm: its partition instead of the
# placeholders (no account: it has no accounting, hence no sacct either: squeue reports the
# status, and finished jobs stay visible to it for an hour, MinJobAge), and no waiting for a
# shared filesystem or a busy controller (quick status checks, latency-wait of a local disk).
TEST_CLUSTER_OVERRIDES = [
    "--default-resources", "slurm_partition=test",
    "--slurm-no-account",
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    "--latency-wait", "5",
]

CONFIG = dict(TINY_CONFIG, trials=1, rounds=1, controls=["reinit"])
LOCAL_RULES = {"download_mnist", "dense_settings", "prune_settings", "aggregate", "plot", "all"}


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("the SLURM test needs root to start munged, slurmctld and slurmd")
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue")
               if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        pytest.skip(f"SLURM packages missing ({', '.join(missing)}): apt-get install slurm-wlm munge")


@pytest.fixture(scope="module")
def slurm_python() -> str:
    """The python of the venv that has the SLURM executor plugin."""
    _skip_unless_possible()
    proc = subprocess.run(["bash", str(CLUSTER / "venv.sh")], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"cannot install the SLURM executor plugin: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def cluster(slurm_python) -> dict:
    """A running one-node cluster; the environment its clients need. Stopped after the module."""
    try:
        proc = subprocess.run(["bash", str(CLUSTER / "start.sh"), str(STATE)], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode == 2:
            pytest.skip(proc.stderr.strip())
        assert proc.returncode == 0, f"tests/cluster/start.sh failed:\n{proc.stdout}\n{proc.stderr}"
        conf = proc.stdout.strip().splitlines()[-1].split("=", 1)[1]
        yield {**os.environ, "SLURM_CONF": conf}
    finally:
        subprocess.run(["bash", str(CLUSTER / "stop.sh"), str(STATE)], timeout=120)


def _squeue(env: dict) -> dict[str, dict]:
    """Every job the controller remembers: id -> name (Snakemake's run id), state, comment."""
    out = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%j|%T|%k"], env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    jobs = {}
    for line in out.splitlines():
        job_id, name, state, comment = line.strip().split("|", 3)
        jobs[job_id] = {"name": name, "state": state, "comment": comment}
    return jobs


def _run_uuid(output: str) -> str:
    line = next(x for x in output.splitlines() if x.startswith("SLURM run ID: "))
    return line.split(": ", 1)[1].strip()


def _slurm_run(python: str, env: dict, workdir: Path, config: dict) -> dict[str, dict]:
    """Run the grid through profiles/slurm; return the SLURM jobs of this invocation."""
    cmd = snakemake_cmd(workdir, "--profile", str(PROFILE), *TEST_CLUSTER_OVERRIDES, config=config)
    cmd[0] = python
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake --profile profiles/slurm failed:\n{output[-6000:]}"
    uuid = _run_uuid(output)
    return {i: j for i, j in _squeue(env).items() if j["name"] == uuid}


def _rule(comment: str) -> str:
    """The rule of a SLURM job from the comment the plugin gives it: rule_<rule>_wildcards_<values>."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def _per_rule(jobs: dict[str, dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs.values():
        counts[_rule(job["comment"])] = counts.get(_rule(job["comment"]), 0) + 1
    return counts


def _training(config: dict, rounds: range) -> set[str]:
    """SLURM comments of the training jobs of these rounds: the wildcards in the order of their
    output path's pattern (lth.lineage): dense, trial; or dense, prune, trial, round, experiment."""
    lin = lineage(full_config(config))
    reinits = [f"reinit_{k}" for k in range(config.get("reinit_per_ticket", 1))] if "reinit" in config["controls"] else []
    out = set()
    for t in range(config["trials"]):
        if 0 in rounds:
            out.add(f"rule_train_dense_wildcards_{lin.dense}_{t}")
        out |= {f"rule_train_sparse_wildcards_{lin.dense}_{lin.prune}_{t}_{r}_{e}"
                for r in rounds if r > 0 for e in ["ticket", *reinits]}
    return out


def _planned(tmp_path_factory, config: dict) -> dict[str, int]:
    """Jobs per rule that Snakemake plans for ``config`` from scratch, without the local rules."""
    counts = dry_run_jobs(tmp_path_factory.mktemp("plan"), config=config)
    return {rule: n for rule, n in counts.items() if rule not in LOCAL_RULES}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, slurm_python, cluster) -> dict:
    data = make_small_mnist(tmp_path_factory.mktemp("slurm_data"))
    first = dict(CONFIG, data_source=str(data))
    edited = dict(first, rounds=2)

    slurm_dir = tmp_path_factory.mktemp("slurm_run")
    jobs1 = _slurm_run(slurm_python, cluster, slurm_dir, first)
    round1 = {p: p.stat().st_mtime_ns for p in (slurm_dir / "results").glob("runs/*/*/trial_*/round_1/**/*")
              if p.is_file()}
    jobs2 = _slurm_run(slurm_python, cluster, slurm_dir, edited)

    planned1, planned2 = _planned(tmp_path_factory, first), _planned(tmp_path_factory, edited)
    stale = {rule: planned2[rule] - planned1.get(rule, 0) for rule in planned2 if planned2[rule] > planned1.get(rule, 0)}

    local_dir = tmp_path_factory.mktemp("local_run")
    cmd = snakemake_cmd(local_dir, "--cores", "2", config=edited)
    proc = subprocess.run(cmd, cwd=local_dir, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"local run failed:\n{proc.stderr[-4000:]}"
    return {"first": first, "edited": edited, "jobs1": jobs1, "jobs2": jobs2, "round1_mtimes": round1,
            "planned1": planned1, "stale": stale,
            "slurm_dir": slurm_dir, "local_dir": local_dir}


def test_every_training_job_ran_as_a_slurm_job(runs):
    jobs = runs["jobs1"]
    comments = {j["comment"] for j in jobs.values()}
    assert len(comments) == len(jobs), "a job was submitted twice"
    assert {j["state"] for j in jobs.values()} == {"COMPLETED"}, jobs
    # the dense run and round 1's ticket and reinit, each one SLURM job
    training = {c for c in comments if _rule(c) in ("train_dense", "train_sparse")}
    assert training == _training(runs["first"], range(0, 2))
    assert len(training) == 3
    # and so was every other job Snakemake planned, except the local rules
    assert _per_rule(jobs) == runs["planned1"]
    assert not LOCAL_RULES & set(_per_rule(jobs))
    for r, experiments in ((0, ["ticket"]), (1, ["ticket", "reinit_0"])):
        for e in experiments:
            assert job_path(runs["slurm_dir"], runs["first"], 0, e, r, "result.json").is_file()


def test_a_config_edit_submits_only_the_stale_jobs(runs):
    jobs = runs["jobs2"]
    assert {j["state"] for j in jobs.values()} == {"COMPLETED"}, jobs
    # rounds 1 -> 2: the jobs the bigger grid has and the smaller one had not, nothing else
    assert _per_rule(jobs) == runs["stale"]
    assert {j["comment"] for j in jobs.values() if _rule(j["comment"]).startswith("train_")} == _training(
        runs["edited"], range(2, 3)
    )
    assert runs["round1_mtimes"], "the first run wrote no round-1 outputs"
    for path, mtime in runs["round1_mtimes"].items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was rewritten"


def test_summary_is_byte_identical_to_a_local_run(runs):
    slurm = (runs["slurm_dir"] / "results" / "summary.csv").read_bytes()
    local = (runs["local_dir"] / "results" / "summary.csv").read_bytes()
    assert slurm.count(b"\n") == 1 + 1 + 2 * 2  # header, dense, ticket + reinit for rounds 1 and 2
    assert slurm == local


def test_profile_plans_the_default_and_paper_grids(slurm_python, cluster, tmp_path):
    """`snakemake --profile profiles/slurm -n` as a user runs it, placeholders and all."""
    for configfile, sparse in ((None, 5 * 5 * 2), (ROOT / "config" / "paper.yaml", 5 * 18 * 2)):
        extra = ["--configfile", str(configfile)] if configfile else []
        cmd = [slurm_python, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(ROOT / "config.yaml"), *extra, "--profile", str(PROFILE), "-n", "--quiet", "rules"]
        proc = subprocess.run(cmd, cwd=tmp_path, env=cluster, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        stats = dict(line.split() for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit())
        assert int(stats["train_sparse"]) == sparse and int(stats["train_dense"]) == 5, out[-2000:]
