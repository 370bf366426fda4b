"""After an edit only the stale jobs rerun, judged by the code itself and not by file dates: every
rule passes a hash of its script and of the lth modules the script imports as `code` (lth.sources),
and the workflow profile leaves out Snakemake's `code` trigger (the script's modification time).

Each test runs on copies of the repository made with new modification times, as `git clone` makes
them, so the repository itself is never edited."""

import shutil
from pathlib import Path

import pytest

from conftest import ROOT, TINY_CONFIG, dry_run_jobs, make_small_mnist, run_snakemake

pytestmark = pytest.mark.workflow

PARTS = ("Snakefile", "config.yaml", "workflow", "src", "profiles", "envs")


def clone(dest: Path) -> Path:
    """A copy of the workflow's files with fresh modification times (what a new clone has)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for part in PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, copy_function=shutil.copy, ignore=ignore)
        else:
            shutil.copy(src, dest / part)
    return dest


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    data = make_small_mnist(tmp_path_factory.mktemp("reruns_data") / "mnist")
    return {**TINY_CONFIG, "trials": 1, "rounds": 1, "controls": [], "data_source": str(data)}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, config) -> Path:
    """A finished run made from one clone; the tests continue it from other clones."""
    base = tmp_path_factory.mktemp("reruns")
    repo = clone(base / "clone_a")
    (base / "run").mkdir()
    run_snakemake(base / "run", "--cores", "2", config=config, repo=repo)
    return base / "run"


def test_a_fresh_clone_of_the_same_code_reruns_nothing(first_run, config, tmp_path):
    repo = clone(tmp_path / "elsewhere" / "clone_b")  # newer files, another place
    assert dry_run_jobs(first_run, config=config, repo=repo) == {}


def test_comments_and_docstrings_rerun_nothing(first_run, config, tmp_path):
    repo = clone(tmp_path / "clone")
    append(repo / "src" / "lth" / "training.py", "\n# a comment about the training loop\n")
    append(repo / "workflow" / "scripts" / "train.py", "\n# and one about the script\n")
    assert dry_run_jobs(first_run, config=config, repo=repo) == {}


def test_an_edit_of_the_plotting_module_reruns_the_plot_only(first_run, config, tmp_path):
    repo = clone(tmp_path / "clone")
    append(repo / "src" / "lth" / "plots.py", "\nEDITED = True\n")
    assert dry_run_jobs(first_run, config=config, repo=repo) == {"plot": 1, "all": 1}


def test_an_edit_of_the_training_loop_reruns_training_and_what_follows_it(first_run, config, tmp_path):
    # training.py is imported by the scripts only through lth.experiment
    repo = clone(tmp_path / "clone")
    append(repo / "src" / "lth" / "training.py", "\nEDITED = True\n")
    counts = dry_run_jobs(first_run, config=config, repo=repo)
    assert counts.get("train_dense") == 1 and counts.get("train_sparse") == 1
    assert counts.get("aggregate") == 1 and counts.get("plot") == 1
    assert not {"download_mnist", "dense_settings", "prune_settings"} & counts.keys()


@pytest.mark.bitwise
def test_touch_adopts_an_edit_known_to_leave_the_numbers_alone(first_run, config, tmp_path):
    # What docs/troubleshooting.md advises after a refactoring: --touch records the new hashes.
    run = tmp_path / "run"
    shutil.copytree(first_run, run)  # this test changes the run's records
    repo = clone(tmp_path / "clone")
    append(repo / "src" / "lth" / "training.py", "\nREFACTORED = True\n")
    assert dry_run_jobs(run, config=config, repo=repo).get("train_dense") == 1
    results = sorted(run.glob("results/runs/**/result.json"))
    before = [p.read_bytes() for p in results]
    run_snakemake(run, "--touch", "--cores", "1", config=config, repo=repo)
    assert dry_run_jobs(run, config=config, repo=repo) == {}
    assert results and [p.read_bytes() for p in results] == before


def test_an_edit_of_a_script_reruns_its_rule_and_what_follows_it(first_run, config, tmp_path):
    # Snakemake's own `code` trigger is off (profiles/default): the script's hash must do its work.
    repo = clone(tmp_path / "clone")
    append(repo / "workflow" / "scripts" / "prune.py", "\nEDITED = True\n")
    counts = dry_run_jobs(first_run, config=config, repo=repo)
    assert counts == {"prune": 1, "train_sparse": 1, "aggregate": 1, "plot": 1, "all": 1}
