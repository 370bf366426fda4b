"""The workflow used the Snakemake way (issue 28): as a module of another workflow, from a local
folder and from a git source, and deployed with `snakedeploy deploy-workflow`.

Everything runs from a copy of this repository that the tests make once (the files a deployed
module needs, as they are in the working tree, committed and tagged in a git repository of its
own), so that the standalone run and the module runs compare the same code. The git source is
`github("lth-owner/lth-mnist", ...)`, offline: the copy sits in a folder named
github.com/lth-owner/lth-mnist (snakedeploy takes a file:// URL that names github for a GitHub
repository and clones it from there), and Snakemake's git cache (under $XDG_CACHE_HOME) already
holds a clone of it, so Snakemake never fetches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY_CONFIG, _yaml_value, make_small_mnist, run_snakemake

pytestmark = pytest.mark.workflow

OWNER_REPO = "lth-owner/lth-mnist"
TAG = "v0.1.0"
# What a deployed module needs of the repository (not results/, docs/ or tests/).
MODULE_FILES = ["Snakefile", "config.yaml", "config", "workflow", "src", "envs", "profiles", "pyproject.toml",
                "README.md"]
# One trial, one round, no controls: 9 jobs.
TINY = {**TINY_CONFIG, "trials": 1, "rounds": 1, "controls": []}
# Only in the copy: a comment changes lth.experiment.code_version (the bytes of training.py, in
# every result.json) and not the code hashes, so result.json tells which copy a job imported.
MARK = "\n# only in the module's copy (tests/test_module.py)\n"


def _git(*args: str, cwd: Path) -> str:
    cmd = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false",
           "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The copy (a git repository, tagged), the small data, and an environment whose Snakemake git
    cache holds the copy as github.com/lth-owner/lth-mnist."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    tmp = tmp_path_factory.mktemp("module")
    repo = tmp / "hosts" / "github.com" / OWNER_REPO
    repo.mkdir(parents=True)
    for name in MODULE_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        else:
            shutil.copy2(src, repo / name)
    with open(repo / "src" / "lth" / "training.py", "a") as fh:
        fh.write(MARK)
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "the workflow", cwd=repo)
    _git("tag", TAG, cwd=repo)
    cache = tmp / "cache"
    clones = cache / "snakemake" / "snakemake" / "source-cache" / "snakemake-git-cache" / "github.com" / "lth-owner"
    clones.mkdir(parents=True)
    _git("clone", "-q", "--bare", str(repo), str(clones / "lth-mnist"), cwd=tmp)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "GIT_TERMINAL_PROMPT": "0"}
    config = {**TINY, "data_source": str(make_small_mnist(tmp / "mnist"))}
    return {"repo": repo, "env": env, "config": config, "commit": _git("rev-parse", "HEAD", cwd=repo).strip()}


@pytest.fixture(scope="module")
def standalone(source, tmp_path_factory):
    """The tiny grid run standalone from the copy: what the module runs must match it."""
    work = tmp_path_factory.mktemp("standalone")
    run_snakemake(work, "--cores", "2", config=source["config"], repo=source["repo"])
    return work


def _dense(work: Path) -> Path:
    """The dense job's folder, relative to ``work``."""
    (result,) = work.glob("results/runs/*/trial_0/dense/result.json")
    return result.parent.relative_to(work)


def _snakemake(folder: Path, *args: str, env: dict | None = None, check: bool = True) -> str:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=folder, capture_output=True, text=True,
                          timeout=900, env=env)
    out = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{out[-6000:]}")
    return out


def _consumer(folder: Path, module_snakefile: Path, config: dict, extra: str = "") -> Path:
    """An empty folder made a workflow of its own that uses this one as the module `lth`, with
    outputs under lth/, and a rule of its own that reads the module's summary."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"lth": config}))
    (folder / "Snakefile").write_text(f'''configfile: "config.yaml"


module lth:
    snakefile:
        "{module_snakefile}"
    config:
        config["lth"]
    prefix:
        "lth"


use rule * from lth as lth_*
{extra}

rule count_jobs:
    input:
        rules.lth_aggregate.output.summary,
    output:
        "training_jobs.txt",
    log:
        "logs/count_jobs.log",
    shell:
        "tail -n +2 {{input}} | wc -l > {{output}} 2> {{log}}"


rule all:
    default_target: True
    input:
        rules.lth_all.input,
        rules.count_jobs.output,
''')
    return folder


@pytest.mark.bitwise
def test_a_consumer_workflow_runs_the_module_like_a_standalone_run(source, standalone, tmp_path):
    repo = source["repo"]
    consumer = _consumer(tmp_path / "consumer", repo / "Snakefile", source["config"])
    # the workflow's rerun triggers, as snakedeploy copies them (docs/install.md)
    shutil.copytree(repo / "profiles", consumer / "profiles")
    planned = _snakemake(consumer, "-n")
    assert "rule lth_train_dense:" in planned and "rule count_jobs:" in planned
    # the local rules (the download, the small ones) are local under their new names too
    assert "localrules directive specifies rules that are not present" not in planned
    assert f"output: lth/{_dense(standalone)}/model.pt" in planned

    _snakemake(consumer, "--cores", "2")
    assert (consumer / "training_jobs.txt").read_text().strip() == "2"  # the dense run and the ticket
    assert (consumer / "lth" / "logs" / "download_mnist.log").is_file()
    assert not (consumer / "results").exists() and not (consumer / "resources").exists()
    # the same bytes as the standalone run's: the same code (the module's own package: its
    # code_version is the copy's, not that of the lth installed here), params and defaults
    dense = _dense(standalone)
    for rel in [dense / "result.json", dense / "curve.csv", Path("results/summary.csv"), Path("results/curves.csv")]:
        assert (consumer / "lth" / rel).read_bytes() == (standalone / rel).read_bytes(), rel
    assert json.loads((standalone / dense / "result.json").read_text())["code_version"] != _installed_code_version()

    assert "Nothing to be done" in _snakemake(consumer, "-n")
    # the module somewhere else, with new file dates (a fresh clone): still nothing to rerun
    moved = tmp_path / "elsewhere" / "lth"
    shutil.copytree(repo, moved, symlinks=True, copy_function=shutil.copy)
    _consumer(consumer, moved / "Snakefile", source["config"])
    assert "Nothing to be done" in _snakemake(consumer, "-n")


def test_the_issues_snippet_finds_a_standalone_run_up_to_date(source, standalone, tmp_path):
    """The consumer of issue 28 as written (no prefix), run in the folder of a standalone run: the
    same paths, params and code hashes, so nothing to do."""
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"lth": source["config"]}))
    (folder / "Snakefile").write_text(f'''configfile: "config.yaml"


module lth:
    snakefile:
        "{source["repo"] / "Snakefile"}"
    config:
        config["lth"]


use rule * from lth as lth_*
''')
    shutil.copytree(source["repo"] / "profiles", folder / "profiles")
    out = _snakemake(folder, "-n", "--directory", str(standalone), "--configfile", str(folder / "config.yaml"))
    assert "Nothing to be done" in out, out[-3000:]


def _installed_code_version() -> str:
    from lth.experiment import code_version

    return code_version()


def test_a_rule_modified_in_the_consumer_takes_effect(source, tmp_path):
    modified = '''

use rule train_dense from lth as lth_train_dense with:
    resources:
        mem_mb=1234,
    log:
        "logs/dense_{dense}_{trial}.log",
'''
    consumer = _consumer(tmp_path / "consumer", source["repo"] / "Snakefile", source["config"], modified)
    planned = _snakemake(consumer, "-n")
    jobs = {block.split(":", 1)[0]: block for block in planned.split("\nrule ")[1:]}
    assert "mem_mb=1234" in jobs["lth_train_dense"] and "mem_mb=1234" not in jobs["lth_train_sparse"]
    # a path given in `with:` is the consumer's own: not under the module's prefix
    assert "log: logs/dense_dense_" in jobs["lth_train_dense"]


def test_the_consumers_config_is_checked_by_the_workflows_schema(source, tmp_path):
    consumer = _consumer(tmp_path / "consumer", source["repo"] / "Snakefile", {**source["config"], "rounds": -1})
    out = _snakemake(consumer, "-n", check=False)
    assert "config error: config key 'rounds': -1 is not allowed" in out


def test_a_second_copy_of_the_package_in_one_run_is_refused(source, tmp_path):
    """A consumer that imported another copy of lth first (here the working tree's) gets one line,
    not a module that runs other code than the code its hashes are of."""
    consumer = _consumer(tmp_path / "consumer", source["repo"] / "Snakefile", source["config"])
    snakefile = consumer / "Snakefile"
    snakefile.write_text(f'import sys\n\nsys.path.insert(0, "{ROOT / "src"}")\nimport lth\n\n' + snakefile.read_text())
    out = _snakemake(consumer, "-n", check=False)
    assert f"the lth package is already imported from {ROOT / 'src' / 'lth'}, not from this workflow's" in out


@pytest.mark.bitwise
def test_snakedeploy_deploys_a_folder_that_runs(source, request, tmp_path):
    pytest.importorskip("snakedeploy")
    repo, env, dest = source["repo"], source["env"], tmp_path / "deployed"
    subprocess.run([sys.executable, "-c", "from snakedeploy.client import main; main()", "deploy-workflow",
                    repo.as_uri(), str(dest), "--tag", TAG], check=True, capture_output=True, env=env, timeout=300)
    snakefile = (dest / "workflow" / "Snakefile").read_text()
    assert f'github("{OWNER_REPO}", path="workflow/Snakefile", tag="{TAG}")' in snakefile
    assert (dest / "config" / "config.yaml").read_text() == (repo / "config.yaml").read_text()
    assert (dest / "profiles" / "default" / "config.yaml").is_file()

    overrides = ["--config", *[f"{k}={_yaml_value(v)}" for k, v in source["config"].items()]]
    planned = _snakemake(dest, "-n", *overrides, env=env)
    assert "rule train_sparse:" in planned and "rule all:" in planned  # the default target: the whole grid
    # the dense job for real: its jobs import the package the git source holds at the tag
    standalone = request.getfixturevalue("standalone")  # only now: a failed deployment stops sooner
    dense = _dense(standalone)
    _snakemake(dest, "--cores", "2", str(dense / "result.json"), *overrides, env=env)
    for name in ("result.json", "curve.csv"):
        assert (dest / dense / name).read_bytes() == (standalone / dense / name).read_bytes()
    exported = dest / ".snakemake" / "lth-module" / source["commit"] / "lth" / "training.py"
    assert exported.read_bytes() == (repo / "src" / "lth" / "training.py").read_bytes()
