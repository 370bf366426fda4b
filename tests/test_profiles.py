"""The notebook profiles (issue 8): config/notebook_oneshot.yaml and config/notebook_iterative.yaml.

- their values are the notebook's setup (each one commented with where it comes from);
- a dry run of each full profile plans the expected grid;
- each profile runs end to end on small IDX data with its iterations cut down, and its outputs
  hold what they should (summary rows, masks at the expected sparsity with the output layer
  pruned too, figures).
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import torch
import yaml

from lth.checkpoint import load_masks, load_weights
from lth.models import get_spec
from lth.pruning import target_remaining

from conftest import ROOT, dry_run_jobs, full_config, job_path, make_small_mnist, round_path, run_snakemake, trial_path

ONESHOT = ROOT / "config" / "notebook_oneshot.yaml"
ITERATIVE = ROOT / "config" / "notebook_iterative.yaml"
QUICK = ROOT / "config" / "quick.yaml"  # the README's first contact (issue 14)
PLOTS = ["accuracy.png", "early_stop.png", "curves.png", "train_accuracy.png"]

# Cut-down overrides: a few steps on the small data; everything else is the profile's.
CUT = {"iterations": 40, "eval_every": 20, "val_size": 100, "verify_data": False, "device": "cpu"}


def _load(path):
    with open(path) as fh:
        return yaml.safe_load(fh)


def _layer_sizes() -> dict[str, int]:
    spec = get_spec("lenet5")
    model = spec.build()
    params = dict(model.named_parameters())
    return {n: params[n].numel() for n in spec.prunable(model)}


# --- the profiles' values ------------------------------------------------------------------


@pytest.mark.parametrize("path", [ONESHOT, ITERATIVE, QUICK], ids=["oneshot", "iterative", "quick"])
def test_every_value_has_a_comment(path):
    for line in path.read_text().splitlines():
        if re.match(r"^[a-z_]+:", line):
            assert "#" in line, f"{path.name}: value without a comment saying where it comes from: {line!r}"


@pytest.mark.parametrize("path", [ONESHOT, ITERATIVE], ids=["oneshot", "iterative"])
def test_shared_notebook_values(path):
    cfg = _load(path)
    assert cfg["model"] == "lenet5"
    assert cfg["lr"] == 0.001
    assert cfg["val_size"] == 6000  # 10% of 60K
    steps_per_epoch = (60000 - cfg["val_size"]) // cfg["batch_size"]
    assert cfg["eval_every"] == steps_per_epoch  # one evaluation per epoch
    assert cfg["prune_rate"] == 0.2 and cfg["output_prune_rate"] == 0.2  # every layer, output too
    assert cfg["prune_scope"] == "layerwise"
    assert cfg["rewind_iteration"] == 0  # reset to the initial values
    assert cfg["controls"] == []
    assert cfg["test_eval"] == "all"  # the curves need the test accuracy at every evaluation


def test_oneshot_values():
    cfg = _load(ONESHOT)
    steps_per_epoch = (60000 - cfg["val_size"]) // cfg["batch_size"]
    assert cfg["iterations"] == 20 * steps_per_epoch  # 20 epochs
    assert cfg["pruning"] == "oneshot" and cfg["rounds"] == 1
    assert cfg["trials"] == 1
    assert cfg["patience"] is None  # a fixed 20 epochs


def test_iterative_values():
    cfg = _load(ITERATIVE)
    steps_per_epoch = (60000 - cfg["val_size"]) // cfg["batch_size"]
    assert cfg["iterations"] == 50 * steps_per_epoch  # at most 50 epochs
    assert cfg["pruning"] == "iterative"
    assert cfg["rounds"] == 5 and cfg["trials"] == 5
    assert isinstance(cfg["patience"], int) and cfg["patience"] >= 1  # early stopping


# --- the workflow ----------------------------------------------------------------------------


@pytest.mark.workflow
def test_full_profiles_plan_the_notebook_grids(tmp_path):
    for name in ("oneshot", "iterative"):
        (tmp_path / name).mkdir()
    oneshot = dry_run_jobs(tmp_path / "oneshot", configfile=ONESHOT)
    assert oneshot["train_dense"] == 1 and oneshot["train_sparse"] == 1 and oneshot["prune"] == 1
    assert "init" in oneshot and oneshot["init"] == 1  # no reinit control: only theta0
    iterative = dry_run_jobs(tmp_path / "iterative", configfile=ITERATIVE)
    assert iterative["train_dense"] == 5  # 5 trials
    assert iterative["train_sparse"] == 25 and iterative["prune"] == 25  # 5 rounds x 5 trials, tickets only
    assert "random_mask" not in iterative


def _check_plots(workdir):
    for name in PLOTS:
        path = workdir / "results" / "plots" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
        assert path.stat().st_size > 5000, f"{name} looks empty"


@pytest.mark.workflow
def test_oneshot_profile_end_to_end(tmp_path):
    data = make_small_mnist(tmp_path / "data")
    work = tmp_path / "run"
    work.mkdir()
    run_snakemake(work, "--cores", "1", configfile=ONESHOT, config={**CUT, "data_source": data})
    cfg = full_config({**CUT, "data_source": str(data)}, configfile=ONESHOT)

    summary = pd.read_csv(work / "results" / "summary.csv")
    assert sorted(zip(summary["experiment"], summary["trial"], summary["round"])) == [("ticket", 0, 0), ("ticket", 0, 1)]
    pct = summary.set_index("round")["percent_remaining"]
    assert pct[0] == pytest.approx(100.0)
    assert pct[1] == pytest.approx(80.0, abs=0.01)
    assert (summary["iterations_run"] == CUT["iterations"]).all()  # patience null: every iteration ran

    # The one-shot mask: 20% of every layer pruned, the output layer included.
    masks = load_masks(round_path(work, cfg, 0, 1, "mask.pt"), "lenet5")
    sizes = _layer_sizes()
    assert set(masks) == set(sizes)
    for name, mask in masks.items():
        assert int(mask.sum()) == target_remaining(sizes[name], 0.2, 1), name
    assert int(masks["fc3.weight"].sum()) == 672  # 840 * 0.8: the output layer pruned at 20%
    total = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert total == pytest.approx(0.80, abs=1e-4)

    # Survivors reset to theta0 and retrained under the mask: pruned weights are exactly zero.
    trained = load_weights(job_path(work, cfg, 0, "ticket", 1, "model.pt"), "lenet5")
    for name, mask in masks.items():
        assert torch.all(trained[name][~mask] == 0), name
    # rewind_iteration 0: the ticket starts from theta0, and no rewind point is made.
    assert trial_path(work, cfg, 0, "init.pt").is_file() and not list(work.glob("results/**/rewind_*.pt"))

    # Accuracy curves before (round 0) and after (round 1) pruning, test accuracy at every evaluation.
    curves = pd.read_csv(work / "results" / "curves.csv")
    for r in (0, 1):
        c = curves[curves["round"] == r]
        assert list(c["iteration"]) == [20, 40]
        assert c["test_accuracy"].notna().all()
    _check_plots(work)


@pytest.mark.workflow
def test_iterative_profile_end_to_end(tmp_path):
    data = make_small_mnist(tmp_path / "data")
    work = tmp_path / "run"
    work.mkdir()
    # One trial keeps the test short; the profile's 5 rounds run as configured.
    # 100 iterations: 5 evaluations, so the profile's patience (3) can stop a job (check_config refuses less).
    cut = {**CUT, "trials": 1, "iterations": 100}
    run_snakemake(work, "--cores", "1", configfile=ITERATIVE, config={**cut, "data_source": data})
    cfg = full_config({**cut, "data_source": str(data)}, configfile=ITERATIVE)

    summary = pd.read_csv(work / "results" / "summary.csv")
    assert set(summary["experiment"]) == {"ticket"}  # controls: []
    assert sorted(summary["round"]) == [0, 1, 2, 3, 4, 5]
    assert (summary["trial"] == 0).all()
    assert (summary["iterations_run"] <= cut["iterations"]).all()

    sizes = _layer_sizes()
    total = sum(sizes.values())
    previous = None
    for r in range(1, 6):
        masks = load_masks(round_path(work, cfg, 0, r, "mask.pt"), "lenet5")
        for name, mask in masks.items():  # 20% of the remaining weights per round, every layer
            assert int(mask.sum()) == target_remaining(sizes[name], 0.2, r), (r, name)
        if previous is not None:  # iterative: a pruned weight never comes back
            for name in masks:
                assert not torch.any(masks[name] & ~previous[name]), (r, name)
        expected = 100.0 * sum(target_remaining(n, 0.2, r) for n in sizes.values()) / total
        got = float(summary.loc[summary["round"] == r, "percent_remaining"].iloc[0])
        assert got == pytest.approx(expected, abs=1e-6)
        assert math.isclose(got, 100 * 0.8**r, abs_tol=0.05)  # 80, 64, 51.2, 41.0, 32.8
        previous = masks
    _check_plots(work)


# --- the first-contact profile (config/quick.yaml) -------------------------------------------


def _quick_training_jobs(cfg) -> int:
    per_round = 1 + cfg["reinit_per_ticket"] * ("reinit" in cfg["controls"]) + ("random_pruning" in cfg["controls"])
    return cfg["trials"] * (1 + cfg["rounds"] * per_round)


def test_quick_profile_fits_its_budget():
    """About 3 minutes on 2 cores: a 50K-iteration job takes 90-94 s on a quiet core and a job's
    fixed cost is 2-6 s, so all its training together stays below one paper job's iterations."""
    cfg = {**yaml.safe_load((ROOT / "config.yaml").read_text()), **_load(QUICK)}
    assert cfg["trials"] >= 2  # a [min, max] range over trials in every table and figure
    assert cfg["rounds"] >= 2  # a pruned ticket trained from a pruned ticket (iterative pruning)
    assert set(cfg["controls"]) == {"reinit", "random_pruning"}
    assert cfg["rewind_iteration"] == 0 and cfg["pruning"] == "iterative"  # the paper's method
    jobs = _quick_training_jobs(cfg)
    assert jobs <= 16, jobs
    assert jobs * cfg["iterations"] <= 50_000, jobs * cfg["iterations"]
    assert cfg["iterations"] // cfg["eval_every"] >= 10  # enough evaluations for an early stop


@pytest.mark.workflow
def test_quick_profile_plans_the_whole_dag(tmp_path):
    """Every rule the default grid with both controls runs, the reinit control included."""
    for name in ("quick", "full"):
        (tmp_path / name).mkdir()
    quick = dry_run_jobs(tmp_path / "quick", configfile=QUICK)
    full = dry_run_jobs(tmp_path / "full", config={"controls": ["reinit", "random_pruning"]})
    assert set(quick) == set(full), f"quick.yaml lacks {set(full) - set(quick)}"
    assert {"download_mnist", "init", "train_dense", "prune", "train_sparse", "init_reinit", "random_mask",
            "aggregate", "plot"} <= set(quick)
    cfg = _load(QUICK)
    trials, rounds = cfg["trials"], cfg["rounds"]
    assert quick["train_dense"] == trials
    assert quick["init_reinit"] == trials * rounds  # the reinit control: a fresh init per (trial, round)
    assert quick["random_mask"] == trials * rounds
    assert quick["train_sparse"] == trials * rounds * 3  # ticket, reinit_0, random_pruning
    assert quick["train_dense"] + quick["train_sparse"] == _quick_training_jobs({**cfg, "reinit_per_ticket": 1})
    assert quick["aggregate"] == 1 and quick["plot"] == 1
