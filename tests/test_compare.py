"""lth.compare: two runs of one protocol side by side."""

import pandas as pd
import pytest

from lth.aggregate import SUMMARY_COLUMNS
from lth.compare import compare_dirs, compare_summaries, level_means, main
from lth.errors import LTHError

LEVELS = {0: 100.0, 1: 80.0, 2: 64.0}


def summary(acc=None, pct=None) -> pd.DataFrame:
    """Tickets at rounds 0-2 and reinit (2 replicates) at rounds 1-2, 2 trials; ``acc`` maps
    (experiment, replicate, trial, round) to an early-stop test accuracy (default 0.9)."""
    rows = []
    for trial in (0, 1):
        for r in LEVELS:
            jobs = [("ticket", 0)] + ([("reinit", 0), ("reinit", 1)] if r else [])
            for experiment, replicate in jobs:
                key = (experiment, replicate, trial, r)
                row = dict.fromkeys(SUMMARY_COLUMNS, 0.5)
                row.update(experiment=experiment, replicate=replicate, trial=trial, round=r,
                           percent_remaining=(pct or LEVELS)[r], early_stop_iteration=1000 * (r + 1) + trial,
                           early_stop_test_accuracy=(acc or {}).get(key, 0.9))
                rows.append(row)
    return pd.DataFrame(rows)[SUMMARY_COLUMNS]


def row(table, experiment, round_):
    return table[(table.experiment == experiment) & (table["round"] == round_)].iloc[0]


def test_the_same_run_is_identical_everywhere():
    table = compare_summaries(summary(), summary())
    assert len(table) == 5  # ticket 0-2, reinit 1-2
    assert (table.identical == table.jobs).all() and table.jobs.sum() == 2 * 3 + 2 * 2 * 2
    assert (table.accuracy_diff_points == 0).all()


def test_one_job_off_in_the_last_bit_is_counted_there_only():
    b = summary()
    b.loc[(b.experiment == "reinit") & (b.replicate == 1) & (b.trial == 0) & (b["round"] == 2), "final_val_loss"] += 1e-12
    table = compare_summaries(summary(), b)
    assert (row(table, "reinit", 2).identical, row(table, "reinit", 2).jobs) == (3, 4)
    assert all(row(table, e, r).identical == row(table, e, r).jobs for e, r in [("ticket", 2), ("reinit", 1)])
    assert row(table, "reinit", 2).accuracy_diff_points == 0


def test_differences_are_b_minus_a_in_points_over_trials():
    b = summary({("ticket", 0, 0, 1): 0.91})  # one of two trials 1 point higher: the mean 0.5 points
    assert row(compare_summaries(summary(), b), "ticket", 1).accuracy_diff_points == pytest.approx(0.5)
    assert row(compare_summaries(b, summary()), "ticket", 1).accuracy_diff_points == pytest.approx(-0.5)
    assert row(compare_summaries(summary(), b), "ticket", 1).identical == 1


def test_a_controls_replicates_are_averaged_within_their_trial_first():
    s = summary({("reinit", 0, 0, 1): 0.90, ("reinit", 1, 0, 1): 0.80, ("reinit", 0, 1, 1): 0.95})
    # a run in progress: trial 1's second replicate has not finished
    s = s[~((s.experiment == "reinit") & (s.replicate == 1) & (s.trial == 1) & (s["round"] == 1))]
    means = level_means(s)
    reinit = means[(means.experiment == "reinit") & (means["round"] == 1)].iloc[0]
    assert reinit.accuracy == pytest.approx((0.85 + 0.95) / 2)  # not the mean of the 3 jobs (0.883)
    assert reinit.trials == 2


def test_runs_of_another_protocol_are_refused():
    with pytest.raises(LTHError, match="round 2 of ticket keeps 64.00% of the weights in one run and 51.20%"):
        compare_summaries(summary(), summary(pct={0: 100.0, 1: 80.0, 2: 51.2}))


def test_cli_writes_the_table_and_the_claims(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, verdict in ((a, "PASS"), (b, "FAIL")):
        d.mkdir()
        summary().to_csv(d / "summary.csv", index=False)
        pd.DataFrame([{"claim_id": 1, "claim": "c", "measured": f"m{verdict}", "verdict": verdict}]).to_csv(
            d / "claims.csv", index=False)
    main([str(a), str(b), "--names", "paper", "evidence", "--out", str(tmp_path / "cmp.md")])
    text = (tmp_path / "cmp.md").read_text()
    assert "| 1 | PASS: mPASS | FAIL: mFAIL |" in text
    assert "Jobs in both: 14; bit-identical (every early-stop and final metric equal): 14" in text
    assert "| ticket | 1 | 80.0% | 90.00 | 90.00 | +0.00 |" in text
    assert compare_dirs(a, b).startswith("# a and b")


def test_a_folder_without_summary_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="has no summary.csv"):
        main([str(tmp_path), str(tmp_path)])
