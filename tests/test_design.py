"""lth.design: on synthetic summaries with known standard deviations it returns the textbook
sample sizes (hand-computed below), models reinitialisations and dense-only seeds as documented,
and its search finds the cheapest design meeting a half-width and the narrowest within a budget."""

import numpy as np
import pandas as pd
import pytest
from test_claims import DENSE_ACC, ROUND, Z, paper_like, spread

from lth.design import Costs, Difference, Run, main, search, split_study, textbook_n


def pts(sd):
    return sd**2  # the variances a Difference holds, from a standard deviation in points


# --- the textbook sizes, by hand ---------------------------------------------------------------
# Paired, sd 0.2, h 0.1 (95 %): n = ceil((t_{0.975, n-1} * 0.2 / 0.1)^2): from z = 1.960: 16; t_15 =
# 2.131: 19; t_18 = 2.101: 18; t_17 = 2.110: 17.8 -> 18, the fixed point. Check: t_17 * 0.2 / sqrt(18)
# = 2.1098 * 0.04714 = 0.0995 <= 0.1, and n = 17: t_16 * 0.2 / sqrt(17) = 2.1199 * 0.04851 = 0.1028 > 0.1.
# Welch, both sds 0.2, no dense-only seeds: se = 0.2 * sqrt(2 / n), df = 2n - 2: n = 32 gives
# t_62 * 0.05 = 1.9990 * 0.05 = 0.09995; n = 31: t_60 * 0.2 * sqrt(2/31) = 2.0003 * 0.05080 = 0.1016.
# Welch, ticket sd 0.1, dense sd 0.2, 20 dense-only seeds: n = 10: v = 0.01/10 + 0.04/30 = 0.002333,
# df = 0.002333^2 / (0.001^2/9 + 0.001333^2/29) = 31.6, t = 2.037: 2.037 * 0.04830 = 0.0984; n = 9:
# v = 0.001111 + 0.001379, df 27.9, t 2.048: 2.048 * 0.04990 = 0.1022.


def test_textbook_n_iterates_to_the_hand_computed_size():
    assert textbook_n(0.2, 0.1) == 18
    # 99 %: n = 30 gives t_29 = 2.756, (2.756 * 2)^2 = 30.4 > 30; n = 31: t_30 = 2.750, 30.25 <= 31
    assert textbook_n(0.2, 0.1, confidence=0.99) == 31
    for sd in (0.05, 0.17, 0.22, 0.28, 0.5):  # the fixed point is the smallest n whose interval is <= h
        n = textbook_n(sd, 0.1)
        assert n == Difference(0, "", True, "pts", pts(sd), 0.0, 0.0, 1).trials_needed(0.1, 1, 0, 0.95)
    # sd 0.05: the iteration jumps between 2 and 41; n = 4: t_3 * 0.05 / 2 = 3.182 * 0.025 = 0.080, n = 3:
    # t_2 * 0.05 / sqrt(3) = 4.303 * 0.0289 = 0.124
    assert textbook_n(0.05, 0.1) == 4


def test_paired_welch_and_dense_only_seed_sizes_by_hand():
    paired = Difference(4, "gap", True, "pts", pts(0.2), 0.0, 0.0, 2)
    assert paired.trials_needed(0.1, r=1, k=0, confidence=0.95) == 18
    welch = Difference(2, "ticket - dense", False, "pts", pts(0.2), 0.0, pts(0.2), 10)
    assert welch.trials_needed(0.1, r=1, k=0, confidence=0.95) == 32
    seeds = Difference(2, "ticket - dense", False, "pts", pts(0.1), 0.0, pts(0.2), 10)
    assert seeds.trials_needed(0.1, r=1, k=20, confidence=0.95) == 10
    assert float(seeds.half_width(10, 1, 20, 0.95)) == pytest.approx(0.0984, abs=5e-5)
    assert float(seeds.half_width(9, 1, 20, 0.95)) == pytest.approx(0.1022, abs=5e-5)


def test_reinitialisations_divide_only_the_seed_part():
    # sd 0.2 all from the reinit's own seed: 4 reinits give sd 0.1 per trial, n = 7 (t_6 * 0.1 / sqrt(7)
    # = 2.447 * 0.0378 = 0.0925; n = 6: 2.571 * 0.0408 = 0.105)
    d = Difference(4, "gap", True, "pts", 0.0, pts(0.2), 0.0, 2)
    assert d.trials_needed(0.1, r=4, k=0, confidence=0.95) == 7
    fixed = Difference(4, "gap", True, "pts", pts(0.2), 0.0, 0.0, 2)  # all between trials: no help
    assert fixed.trials_needed(0.1, r=4, k=0, confidence=0.95) == 18


# --- from a summary ------------------------------------------------------------------------------


def synthetic():
    """paper_like's 5 trials with known spreads: the dense runs sd 0.2, the ticket at 13.5 % sd 0.2,
    the reinit at 21.1 % sd 0.2 (the ticket there constant), everything else none."""
    s = paper_like()
    dense = (s.experiment == "ticket") & (s["round"] == 0)
    s.loc[dense, "early_stop_test_accuracy"] = (DENSE_ACC * 100 + 0.2 * Z[s.loc[dense, "trial"].to_numpy()]) / 100
    s = spread(s, "ticket", ROUND[13.5], 0.5, sd=0.2)
    return spread(s, "reinit", ROUND[21.1], -0.5, sd=0.2)


def by_label(run):
    return {(d.claim, d.label): d for d in run.differences()}


def test_the_runs_standard_deviations_give_the_textbook_sizes():
    run = Run(synthetic(), None, seed_share=1.0)
    assert (run.n0, run.r0, run.k0, run.rounds) == (5, 1, 0, 18)
    d = by_label(run)
    gap = d[(4, "ticket - reinit at 21.1%")]  # sd 0.2, all of it the reinit's own seed
    assert (gap.between, gap.seed) == pytest.approx((0.0, 0.04))
    assert gap.trials_needed(0.1, 1, 0, 0.95) == 18 and gap.trials_needed(0.1, 4, 0, 0.95) == 7
    at135 = d[(2, "ticket - dense at 13.5%")]
    assert (at135.between, at135.dense) == pytest.approx((0.04, 0.04))
    assert at135.trials_needed(0.1, 1, 0, 0.95) == 32
    assert d[(3, "ticket at 13.5% - at 3.6%")].trials_needed(0.1, 1, 0, 0.95) == 18  # paired, sd 0.2
    # with no share from the reinit's seed, more reinits do not help
    fixed = by_label(Run(synthetic(), None, seed_share=0.0))[(4, "ticket - reinit at 21.1%")]
    assert fixed.trials_needed(0.1, 4, 0, 0.95) == 18


def test_replicates_measure_the_seed_part():
    s = paper_like(replicates=2)
    sel = (s.experiment == "reinit") & (s["round"] == ROUND[21.1])
    # the two reinits of each trial at +-0.1 around the trial's mean, the means all equal
    s.loc[sel, "early_stop_test_accuracy"] += np.where(s.loc[sel, "replicate"] == 0, -0.001, 0.001)
    d = by_label(Run(s, None, seed_share=0.5))[(5, "reinit - dense at 21.1%")]
    assert d.seed == pytest.approx(0.02)  # var of (-0.1, +0.1): 0.02, measured, not the share
    assert d.between == pytest.approx(0.0, abs=1e-12)  # the trial means do not vary: 0.02 / 2 - 0.01


def test_search_finds_the_cheapest_design_and_the_narrowest_within_a_budget():
    run = Run(synthetic(), None, seed_share=1.0)
    diffs = run.differences()
    costs = Costs(dense=10.0, ticket=100.0, reinit=100.0, oneshot_ticket=100.0)
    cheapest, best = search(diffs, run, costs, lambda d: 0.95, 0.1, budget=50_000.0, max_trials=40, max_reinits=4,
                            max_dense_seeds=60)
    targeted = [d for d in diffs if d.targeted]
    n, r, k = np.meshgrid(np.arange(2, 41), np.arange(1, 5), np.arange(61), indexing="ij")
    widest = np.max([d.half_width(n, r, k, 0.95) for d in targeted], axis=0)  # over the grid, by brute force
    cost = costs.seconds(run, n, r, k)
    at = (cheapest.n - 2, cheapest.r - 1, cheapest.k)
    assert widest[at] <= 0.1 and cheapest.widest == pytest.approx(widest[at])
    assert cheapest.seconds == cost[at]
    assert not (widest[cost < cheapest.seconds] <= 0.1).any()  # nothing cheaper meets it
    assert cheapest.k > 0  # dense runs at a tenth of a ticket's cost: seeds pay
    assert best.seconds <= 50_000
    assert best.widest == pytest.approx(widest[cost <= 50_000].min())
    assert costs.jobs(run, 5, 1, 0) == 5 * (1 + 18 * 2) and costs.seconds(run, 1, 2, 3) == 10 + 18 * 300 + 30


def test_a_study_summary_gives_both_variants():
    s = paper_like()
    study = pd.concat([s.assign(variant="iterative", pruning="iterative"),
                       s.assign(variant="oneshot", pruning="oneshot")], ignore_index=True)
    iterative, oneshot = split_study(study)
    assert list(iterative.columns) == list(s.columns) and len(oneshot) == len(s)
    run = Run(iterative, oneshot, 1.0)
    assert run.jobs == 5 + 2 * (len(s) - 5)  # the dense runs once
    assert {d.claim for d in run.differences()} == {1, 2, 3, 4, 5, 6}


def test_the_command_prints_the_sizes(tmp_path, capsys):
    synthetic().to_csv(tmp_path / "summary.csv", index=False)
    small = ["--max-trials", "40", "--max-dense-seeds", "40", "--max-reinits", "3"]
    main([str(tmp_path), "--half-width", "0.10", "--budget-s", "100000", "--every", *small])
    out = capsys.readouterr().out
    assert "| 4 | ticket - reinit at 21.1% | paired | 0.20 pts | 95.00 % |" in out
    row = next(line for line in out.splitlines() if line.startswith("| 4 | ticket - reinit at 21.1%"))
    assert row.endswith("| 18 |")
    row = next(line for line in out.splitlines() if line.startswith("| 2 | ticket - dense at 13.5%"))
    assert row.endswith("| 32 |")
    assert "Cheapest design with every half-width <= 0.10: **" in out and "Within the budget of 100,000 s" in out
    main([str(tmp_path), "--corrected", "--every", *small])
    out = capsys.readouterr().out
    assert "| 2 | ticket - dense at 13.5% | Welch | 0.20 pts | 99.50 % |" in out


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no summary.csv"):
        main([str(tmp_path)])
