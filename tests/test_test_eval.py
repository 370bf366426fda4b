"""test_eval: minima, the default: the test split only where its accuracy is read (new minima of
the validation loss, the last evaluation, a coarse cadence for the curves figure).

What it promises: summary.csv is byte-identical to test_eval: all (small data and, where it is
present, the real MNIST); curves.csv has the test accuracy at those evaluations and NaN elsewhere;
the curves figure plots only iterations that every trial has; test_every is part of a lineage key
under minima only, so every committed configuration keeps its keys. (The rule itself, evaluation
by evaluation, is in test_early_stop.py.)"""

from __future__ import annotations

import io
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from lth.lineage import lineage
from lth.plots import curve_means

from conftest import ROOT, SHARED_MNIST, TINY_CONFIG, full_config, job_path, make_small_mnist, run_snakemake

# --- the curves figure: points that every trial has ---------------------------------------------


def curves_frame(rows):
    """curves.csv rows from (experiment, replicate, trial, round, iteration, test_accuracy)."""
    cols = ["experiment", "replicate", "trial", "round", "iteration", "test_accuracy"]
    return pd.DataFrame(rows, columns=cols).assign(val_loss=1.0)


def test_curve_means_keep_only_iterations_that_every_job_of_a_line_has():
    nan = math.nan
    rows = []
    for t, accs in enumerate([[0.90, 0.95, 0.97, 0.98], [0.80, nan, 0.96, 0.97], [0.70, 0.85, 0.95]]):
        # trial 1 has no test at 200 (no new minimum there), trial 2 stopped early (no row at 400)
        rows += [("ticket", 0, t, 1, 100 * (i + 1), a) for i, a in enumerate(accs)]
    for t in range(2):  # reinit: 2 trials x 2 replicates, one replicate without a test at 100
        for j in range(2):
            rows += [("reinit", j, t, 1, 100, nan if (t, j) == (1, 1) else 0.5), ("reinit", j, t, 1, 200, 0.6 + t)]
    means = curve_means(curves_frame(rows))
    ticket = means[means["experiment"] == "ticket"]
    assert ticket["iteration"].tolist() == [100, 300]  # 200: trial 1 lacks it; 400: trial 2 lacks it
    assert ticket["test_accuracy"].tolist() == pytest.approx([0.8, 0.96])  # means over all three trials
    assert (ticket["n"] == 3).all()
    reinit = means[means["experiment"] == "reinit"]
    assert reinit["iteration"].tolist() == [200] and reinit["test_accuracy"].tolist() == pytest.approx([1.1])
    assert (reinit["n"] == 4).all()  # every replicate of every trial


@pytest.mark.bitwise
def test_curve_means_under_test_eval_all_are_the_plain_means():
    """The committed study (test_eval: all): every point, the same means as before."""
    curves = pd.read_csv(ROOT / "results/studies/oneshot_vs_iterative/iterative/curves.csv")
    means = curve_means(curves)
    plain = curves.groupby(["experiment", "round", "iteration"])["test_accuracy"].mean().reset_index()
    assert len(means) == len(plain)
    assert np.array_equal(means["test_accuracy"].to_numpy(), plain["test_accuracy"].to_numpy())
    assert (means["n"] == 5).all()


# --- lineage keys ------------------------------------------------------------------------------

# The keys the committed results were made under (results/studies/oneshot_vs_iterative/README.md,
# results/*/config.yaml), and those of the committed configurations that reproduce them.
COMMITTED_KEYS = {
    "config/paper.yaml": ("dense_33af69fe", "prune_817cf8cf"),
    "config/quick.yaml": ("dense_bd34065f", "prune_e20e6d9e"),
    "config/studies/oneshot_vs_iterative.yaml": ("dense_33af69fe", "prune_817cf8cf"),
    "config/studies/prune_rates_modest.yaml": ("dense_4f6240ba", "prune_d714afe3"),
    "results/paper/config.yaml": ("dense_33af69fe", "prune_817cf8cf"),
    "results/default/config.yaml": ("dense_33af69fe", "prune_817cf8cf"),
    "results/studies/oneshot_vs_iterative/config.yaml": ("dense_33af69fe", "prune_817cf8cf"),
}


@pytest.mark.parametrize("path", COMMITTED_KEYS)
def test_committed_configurations_keep_their_lineage_keys(path):
    lin = lineage(full_config({"device": "cpu", "data_source": None}, configfile=ROOT / path))
    assert (lin.dense, lin.prune) == COMMITTED_KEYS[path]


def test_the_oneshot_variant_keeps_its_key():
    from lth.config import load_schema
    from lth.studies import study_variants

    config = full_config({"device": "cpu"}, configfile=ROOT / "config/studies/oneshot_vs_iterative.yaml")
    variants = study_variants(config, load_schema(ROOT / "workflow/schemas/config.schema.yaml"))
    assert lineage(variants["oneshot"]).prune == "prune_397f018e"


def test_test_every_is_part_of_the_dense_key_under_minima_only():
    for mode in ("all", "best"):
        base = lineage(full_config({"device": "cpu", "test_eval": mode}))
        assert lineage(full_config({"device": "cpu", "test_eval": mode, "test_every": 500})) == base
        assert "test_every" not in base.dense_settings
    minima = lineage(full_config({"device": "cpu", "test_eval": "minima"}))
    assert minima.dense_settings["test_every"] == 1000
    assert lineage(full_config({"device": "cpu", "test_eval": "minima", "test_every": 500})).dense != minima.dense
    assert full_config()["test_eval"] == "minima"  # the default (schema and config.yaml)


# --- summary.csv: the same bytes in both modes -------------------------------------------------


def run_both_modes(tmp_path, settings: dict) -> dict[str, dict[str, bytes]]:
    """summary.csv and curves.csv of the same grid under test_eval all and minima (one folder,
    two lineages: test_eval is part of the dense key)."""
    out = {}
    for mode in ("all", "minima"):
        run_snakemake(tmp_path, "--cores", "2", config={**settings, "test_eval": mode}, timeout=1200)
        out[mode] = {n: (tmp_path / "results" / n).read_bytes() for n in ("summary.csv", "curves.csv")}
        shutil.copytree(tmp_path / "results" / "plots", tmp_path / f"plots_{mode}")
    return out


def check_minima_curves(curves: pd.DataFrame, full: pd.DataFrame, test_every: int, eval_every: int) -> int:
    """Every job's curve under minima: all rows and losses as under all; the test accuracy, the
    same value, exactly at the new minima, the last evaluation and the cadence; NaN elsewhere.
    Returns how many jobs' last evaluation is tested for being the last only."""
    assert curves.drop(columns="test_accuracy").equals(full.drop(columns="test_accuracy"))
    skipped = last_only = 0
    for _, c in curves.groupby(["experiment", "replicate", "trial", "round"]):
        val, it = c["val_loss"].to_numpy(), c["iteration"].to_numpy()
        new_min = np.r_[True, val[1:] < np.minimum.accumulate(val)[:-1]]
        tested = new_min | (it % test_every < eval_every)
        last_only += not tested[-1]
        tested[-1] = True
        measured = c["test_accuracy"].notna().to_numpy()
        assert (measured == tested).all()
        skipped += (~tested).sum()
    assert skipped > 0  # the run has evaluations whose test the new mode leaves out
    both = curves["test_accuracy"].notna()
    assert (curves.loc[both, "test_accuracy"] == full.loc[both, "test_accuracy"]).all()
    return last_only


@pytest.mark.workflow
@pytest.mark.bitwise
def test_summary_is_byte_identical_under_all_and_minima_on_small_data(tmp_path):
    data = make_small_mnist(tmp_path / "data", n_train=300)  # 200 training images: the minima come before the end
    settings = {**TINY_CONFIG, "data_source": str(data), "trials": 1, "rounds": 1, "iterations": 200,
                "eval_every": 10, "test_every": 60}  # 60, 120, 180: the last evaluation (200) is off the cadence
    out = run_both_modes(tmp_path, settings)
    assert out["minima"]["summary.csv"] == out["all"]["summary.csv"]
    assert out["minima"]["curves.csv"] != out["all"]["curves.csv"]
    last_only = check_minima_curves(pd.read_csv(tmp_path / "results/curves.csv"), pd.read_csv(io.BytesIO(
        out["all"]["curves.csv"])), 60, 10)
    assert last_only > 0  # a job whose last evaluation is neither a minimum nor on the cadence: tested anyway
    result = json.loads(job_path(tmp_path, {**settings, "test_eval": "minima"}, 0, "reinit_0", 1,
                                 "result.json").read_text())
    assert result["train_config"]["test_eval"] == "minima" and result["train_config"]["test_every"] == 60
    assert (tmp_path / "plots_minima" / "curves.png").stat().st_size > 0


@pytest.mark.workflow
@pytest.mark.real_data
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no MNIST at {SHARED_MNIST}")
@pytest.mark.bitwise
def test_summary_is_byte_identical_under_all_and_minima_on_the_real_mnist(tmp_path):
    settings = {"data_source": str(SHARED_MNIST), "trials": 1, "rounds": 1, "iterations": 300, "eval_every": 20,
                "test_every": 120, "device": "cpu"}  # the last evaluation (300) off the cadence
    out = run_both_modes(tmp_path, settings)
    assert out["minima"]["summary.csv"] == out["all"]["summary.csv"]
    check_minima_curves(pd.read_csv(tmp_path / "results/curves.csv"), pd.read_csv(io.BytesIO(
        out["all"]["curves.csv"])), 120, 20)
