"""A known Snakemake gap (snakemake issue #4166): when the data download reruns in the same
invocation as a training-parameter edit, the training jobs (whose data input is ancient()) are
not rerun. The aggregate step must then refuse the stale results, and a second run fix them."""

import json
import shutil

import pytest

from conftest import TINY_CONFIG, make_small_mnist, run_snakemake

pytestmark = pytest.mark.workflow


def test_stale_results_are_refused_then_fixed_by_a_second_run(tmp_path):
    data = make_small_mnist(tmp_path / "data")
    shutil.copytree(data, tmp_path / "data2")
    base = dict(TINY_CONFIG, trials=1, rounds=0, controls=[], data_source=str(data))
    run_snakemake(tmp_path, "--cores", "2", config=base)
    edited = dict(base, data_source=str(tmp_path / "data2"), iterations=80)
    first = run_snakemake(tmp_path, "--cores", "2", config=edited, check=False)
    assert first.returncode != 0
    assert "trained with iterations=60 (config: 80): it is stale" in first.stdout + first.stderr
    run_snakemake(tmp_path, "--cores", "2", config=edited)
    result = json.loads((tmp_path / "results/trial_0/ticket/round_0/result.json").read_text())
    assert result["train_config"]["iterations"] == 80 and result["iterations_run"] == 80
