"""Dense-only seeds (config key ``dense_seeds``): extra dense runs, numbered after the pruning
trials, that start no pruning chain. The grid plans them and nothing else for them, they are the
same jobs as the dense runs of a configuration with more trials, the tables flag them
``dense_only``, and the claims use them only in the dense baseline."""

import json

import pandas as pd
import pytest

from lth.aggregate import build_summary, flag_dense_only
from lth.claims import evaluate_claims
from lth.config import check_config, load_schema
from lth.errors import LTHError
from lth.lineage import DENSE_JOB_DIR, dense_trials, grid_dirs, lineage
from lth.summarize import pruning_trials

from conftest import ROOT, TINY_CONFIG, dry_run_jobs, full_config, make_small_mnist

SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def test_the_key_defaults_to_none_and_refuses_negative_counts():
    assert full_config({})["dense_seeds"] == 0
    with pytest.raises(LTHError, match="config key 'dense_seeds': -1 is not allowed; expected integer >= 0"):
        check_config({"dense_seeds": -1}, SCHEMA)


def test_the_grid_adds_dense_runs_only_and_numbers_them_after_the_pruning_trials():
    config = full_config({"trials": 2, "rounds": 2, "dense_seeds": 3, "reinit_per_ticket": 2})
    dirs = grid_dirs(config)
    lin = lineage(config)
    dense = [d for d in dirs if d.endswith("/dense")]
    assert dense == [DENSE_JOB_DIR.format(dense=lin.dense, trial=t) for t in range(5)]
    pruned = [d for d in dirs if "/round_" in d]
    assert len(pruned) == 2 * 2 * 3  # trials x rounds x (ticket + 2 reinits): none for the seeds
    assert {d.split("/trial_")[1].split("/")[0] for d in pruned} == {"0", "1"}
    assert len(dirs) == len(grid_dirs({**config, "dense_seeds": 0})) + 3
    assert list(dense_trials(config)) == [0, 1, 2, 3, 4]


def test_a_dense_only_seed_is_the_dense_run_of_a_configuration_with_more_trials():
    """The seed of trial 2 under trials=2 is trial 2's dense run under trials=3: raising trials
    later reuses it (no key holds trials or dense_seeds)."""
    seeds = full_config({"trials": 2, "rounds": 2, "dense_seeds": 1})
    more = full_config({"trials": 3, "rounds": 2})
    assert lineage(seeds) == lineage(more)
    assert set(d for d in grid_dirs(seeds) if d.endswith("/dense")) == set(
        d for d in grid_dirs(more) if d.endswith("/dense"))


def _result(path, trial, round_, experiment="ticket"):
    path.parent.mkdir(parents=True, exist_ok=True)
    row = dict(experiment=experiment, replicate=0, trial=trial, round=round_, percent_remaining=100.0 if round_ == 0
               else 80.0, early_stop_iteration=100, early_stop_val_loss=0.1, early_stop_val_accuracy=0.9,
               early_stop_test_accuracy=0.9 + 0.001 * trial, final_iteration=200, final_val_loss=0.2,
               final_test_accuracy=0.9, final_train_accuracy=1.0, iterations_run=200)
    path.write_text(json.dumps(row))
    return path


def test_the_summary_flags_the_dense_only_seeds(tmp_path):
    runs = tmp_path / "results/runs/dense_x"
    paths = [_result(runs / f"trial_{t}/dense/result.json", t, 0) for t in range(4)]
    paths += [_result(runs / f"prune_y/trial_{t}/round_1/ticket/result.json", t, 1) for t in range(2)]
    summary = build_summary(paths, pruning_trials=2)
    assert summary["dense_only"].tolist() == [False, False, False, False, True, True]  # sorted by trial, round
    assert summary.loc[summary["dense_only"], "trial"].tolist() == [2, 3]
    # the summaries made before the key existed keep their columns
    assert "dense_only" not in build_summary(paths, pruning_trials=4).columns
    assert "dense_only" not in build_summary(paths).columns
    # lth.summarize counts the pruning trials from the jobs a run directory has
    assert pruning_trials(paths) == 2 and pruning_trials(paths[:4]) is None


def test_dense_only_rows_enter_the_claims_only_as_dense_baseline():
    from test_claims import DENSE_ACC, paper_like

    s = paper_like(trials=5)
    seeds = pd.DataFrame([dict(experiment="ticket", replicate=0, trial=5 + i, round=0, percent_remaining=100.0,
                               early_stop_iteration=10000.0, early_stop_test_accuracy=DENSE_ACC + d / 100)
                          for i, d in enumerate([0.2, -0.2])])
    flagged = flag_dense_only(pd.concat([s, seeds], ignore_index=True), pruning_trials=5)
    v = {x.claim_id: x for x in evaluate_claims(flagged, resample=False)}
    assert "5 trials vs 7 dense runs" in v[2].measured  # the baseline: 5 + 2 dense runs
    assert "5 trials, paired" in v[4].measured  # the trials: 5, not 7
    unflagged = {x.claim_id: x for x in evaluate_claims(pd.concat([s, seeds], ignore_index=True), resample=False)}
    assert "5 trials of 7" in unflagged[2].measured  # unflagged, they would count as trials in progress


@pytest.mark.workflow
def test_a_dry_run_plans_the_dense_only_seeds(tmp_path):
    data = make_small_mnist(tmp_path / "data")
    work = tmp_path / "work"
    work.mkdir()
    config = {**TINY_CONFIG, "data_source": str(data), "dense_seeds": 3}
    planned = dry_run_jobs(work, config=config)
    trials, rounds = TINY_CONFIG["trials"], TINY_CONFIG["rounds"]
    assert planned["train_dense"] == trials + 3 and planned["init"] == trials + 3
    assert planned["train_sparse"] == trials * rounds * 2  # ticket + reinit, the pruning trials only
    assert planned["prune"] == trials * rounds
