"""A known Snakemake gap (snakemake issue #4166): when the data download reruns in the same
invocation as a training-parameter edit, the training jobs (whose data input is ancient()) are
not rerun on a params change. Since every job's path is keyed by its settings (lth.lineage), an
edited setting names new files, which are made in the same run; and should results ever
disagree with the config, the aggregate step refuses them (lth.aggregate.check_fresh)."""

import json
import shutil

import pytest

from conftest import TINY_CONFIG, job_path, make_small_mnist, run_snakemake

pytestmark = pytest.mark.workflow


def test_an_edit_made_with_a_new_download_is_trained_in_the_same_run(tmp_path):
    data = make_small_mnist(tmp_path / "data")
    shutil.copytree(data, tmp_path / "data2")
    base = dict(TINY_CONFIG, trials=1, rounds=0, controls=[], data_source=str(data))
    run_snakemake(tmp_path, "--cores", "2", config=base)
    edited = dict(base, data_source=str(tmp_path / "data2"), iterations=80)
    run_snakemake(tmp_path, "--cores", "2", config=edited)
    result = json.loads(job_path(tmp_path, edited, 0, "ticket", 0, "result.json").read_text())
    assert result["train_config"]["iterations"] == 80 and result["iterations_run"] == 80
    old = json.loads(job_path(tmp_path, base, 0, "ticket", 0, "result.json").read_text())
    assert old["train_config"]["iterations"] == 60  # the first configuration's files are kept
    summary = (tmp_path / "results/summary.csv").read_text().splitlines()
    assert summary[1].split(",")[-1] == "80"  # iterations_run of the one job


def test_the_aggregate_step_refuses_results_trained_with_other_settings(tmp_path):
    from lth.aggregate import check_fresh
    from lth.errors import LTHError

    path = tmp_path / "result.json"
    path.write_text(json.dumps({"train_config": {"iterations": 60, "lr": 0.1}}))
    assert check_fresh([path], {"iterations": 60, "lr": 0.1}) == 0
    with pytest.raises(LTHError, match=r"trained with iterations=60 \(config: 80\): it is stale"):
        check_fresh([path], {"iterations": 80, "lr": 0.1})
