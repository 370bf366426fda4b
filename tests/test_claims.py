"""The claims' rules (lth.claims) on hand-made summaries whose intervals are known: every rule at
its edges (an interval just inside, just outside and straddling each threshold gives PASS, FAIL
and INCONCLUSIVE), the Bonferroni correction of the claims over several levels, replicates
averaged within a trial, the dense-only seeds in the dense baseline only, and the intervals
against scipy.stats' own."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lth.claims import (
    CLAIMS,
    FAIL,
    INCONCLUSIVE,
    NOT_RUN,
    PASS,
    Region,
    Trials,
    claims_markdown,
    claims_table,
    evaluate_claims,
    mean_interval,
    possible_onsets,
    stability,
    welch_interval,
)
from lth.pruning import target_remaining

LAYERS = [(235200, 0.2), (30000, 0.2), (1000, 0.1)]  # LeNet-300-100 at 20/20/10
ROUND = {64.1: 2, 51.3: 3, 26.3: 6, 21.1: 7, 13.5: 9, 10.8: 10, 7.0: 12, 5.6: 13, 4.5: 14, 3.6: 15, 2.9: 16}
DENSE_ACC, DENSE_IT, TICKET_IT, REINIT_IT = 0.98, 10000.0, 6000.0, 25000.0
EPS = 1e-6  # points: how far an interval's end is placed from a threshold
Z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) / np.std([-2.0, -1.0, 0.0, 1.0, 2.0], ddof=1)  # mean 0, sd 1
SD = 0.1  # points: the spread given to the one difference a test moves


def pct(r):
    return 100 * sum(target_remaining(n, p, r) for n, p in LAYERS) / sum(n for n, _ in LAYERS)


def paper_like(rounds=18, trials=5, reinit=True, reinit_drop_round=7, ticket_drop_round=16, replicates=1):
    """A summary shaped like the paper's Figure 4 with no spread between trials (every interval a
    point): tickets +0.5 points above the dense net above 3.6 %, +0.1 at 3.6 %, then falling;
    reinits +0.1 above dense until they drop at 21.1 %; tickets stop at 0.6 of the dense net's
    iterations, reinits at 2.5 times. Every claim 1-5 passes."""
    rows = []
    for t in range(trials):
        for r in range(rounds + 1):
            if r == 0:
                acc, it = 0.0, DENSE_IT
            elif r < ticket_drop_round - 1:
                acc, it = 0.5, TICKET_IT
            elif r == ticket_drop_round - 1:
                acc, it = 0.1, TICKET_IT
            else:
                acc, it = -1.0 * (r - ticket_drop_round + 1), TICKET_IT
            rows.append(dict(experiment="ticket", replicate=0, trial=t, round=r, percent_remaining=pct(r),
                             early_stop_iteration=it, early_stop_test_accuracy=DENSE_ACC + acc / 100))
            if reinit and r > 0:
                racc = 0.1 if r < reinit_drop_round else -0.5 * (r - reinit_drop_round + 1)
                for k in range(replicates):
                    rows.append(dict(experiment="reinit", replicate=k, trial=t, round=r, percent_remaining=pct(r),
                                     early_stop_iteration=REINIT_IT, early_stop_test_accuracy=DENSE_ACC + racc / 100))
    return pd.DataFrame(rows)


def oneshot(rounds=16):
    return paper_like(rounds=rounds, reinit=False)


def verdicts(summary, pruning="iterative", resample=False):
    return {v.claim_id: v for v in evaluate_claims(summary, pruning, resample=resample)}


def q(confidence, df=4):
    """The t quantile of a two-sided interval (scipy.stats.t), for placing intervals."""
    return stats.t.ppf(0.5 + confidence / 2, df)


def spread(s, experiment, r, mean, sd=SD, column="early_stop_test_accuracy", base=None):
    """Set ``experiment`` at round ``r`` to base + mean + sd * Z[trial] (accuracy in points; base:
    the dense net's value), so that its interval against the constant dense net, or paired with a
    constant, is mean +- t(n - 1) * sd / sqrt(n)."""
    scale = 100.0 if column == "early_stop_test_accuracy" else 1.0
    base = (DENSE_ACC * 100 if scale == 100.0 else DENSE_IT) if base is None else base
    sel = (s.experiment == experiment) & (s["round"] == r)
    s.loc[sel, column] = (base + mean + sd * Z[s.loc[sel, "trial"].to_numpy()]) / scale
    return s


def low_at(bound, confidence, sd=SD):
    """The mean whose interval's lower end is at ``bound``."""
    return bound + q(confidence) * sd / np.sqrt(5)


def high_at(bound, confidence, sd=SD):
    return bound - q(confidence) * sd / np.sqrt(5)


# --- the intervals are scipy.stats' ------------------------------------------------------------


def test_intervals_are_scipys_t_intervals():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3))
    x[5:, 2] = np.nan  # a column with two missing trials
    b = rng.normal(0.3, 2.0, size=11)
    for conf in (0.95, 0.995):
        est, lo, hi, n = mean_interval(x, conf)
        we, wlo, whi, wn = welch_interval(x, b, conf)
        for j in range(3):
            col = x[:, j][~np.isnan(x[:, j])]
            ci = stats.ttest_1samp(col, 0.0).confidence_interval(conf)
            assert (lo[j], hi[j], n[j]) == pytest.approx((ci.low, ci.high, col.size), rel=1e-12)
            ci = stats.ttest_ind(col, b, equal_var=False).confidence_interval(conf)
            assert (wlo[j], whi[j]) == pytest.approx((ci.low, ci.high), rel=1e-12)
            assert we[j] == pytest.approx(col.mean() - b.mean())


def test_intervals_of_one_value_are_unbounded_and_of_no_spread_points():
    est, lo, hi, n = mean_interval(np.array([[1.0, 2.0], [np.nan, 2.0]]), 0.95)
    assert lo[0] == -np.inf and hi[0] == np.inf and n[0] == 1
    assert lo[1] == hi[1] == 2.0


@pytest.mark.parametrize("kind, bound, low, high, state", [
    ("above", 0.3, 0.3 + EPS, 1, "inside"), ("above", 0.3, -1, 0.3 - EPS, "outside"),
    ("above", 0.3, 0.3 - EPS, 0.3 + EPS, "straddles"), ("above", 0.3, -1, 0.3, "outside"),
    ("below", 0.0, -1, -EPS, "inside"), ("below", 0.0, 0.0, 1, "outside"), ("below", 0.0, -EPS, EPS, "straddles"),
    ("within", 0.3, -0.3 + EPS, 0.3 - EPS, "inside"), ("within", 0.3, 0.3 + EPS, 1, "outside"),
    ("within", 0.3, -1, -0.3 - EPS, "outside"), ("within", 0.3, 0.2, 0.3 + EPS, "straddles"),
    ("within", 0.3, -0.3 - EPS, 0.0, "straddles"),
])
def test_region_states(kind, bound, low, high, state):
    assert Region(kind, bound).state(low, high) == state


# --- the paper-like summary -----------------------------------------------------------------------


def test_percent_levels_match_the_paper():
    assert [round(pct(r), 1) for r in (3, 7, 9, 12, 15, 16, 18)] == [51.3, 21.1, 13.5, 7.0, 3.6, 2.9, 1.9]


def test_paper_like_summary_passes_claims_1_to_5():
    v = verdicts(paper_like())
    assert [v[i].verdict for i in range(1, 6)] == [PASS] * 5, [v[i].measured for i in range(1, 6)]
    assert v[6].verdict == NOT_RUN and "oneshot" in v[6].measured
    assert "40.0% [40.0, 40.0] earlier" in v[1].measured  # 1 - 6000 / 10000, no spread


def test_short_run_is_not_run():
    v = verdicts(paper_like(rounds=5))  # lowest level 32.9 %
    assert all(v[i].verdict == NOT_RUN for i in range(1, 7))
    assert "21.1%" in v[1].measured


def test_missing_control_is_not_run():
    v = verdicts(paper_like(reinit=False))
    assert v[4].verdict == NOT_RUN and v[5].verdict == NOT_RUN and "controls" in v[4].measured
    assert v[1].verdict == PASS


def test_claims_need_their_levels():
    v = verdicts(paper_like(rounds=14))  # lowest 4.5%
    assert v[3].verdict == NOT_RUN and "3.6%" in v[3].measured
    assert [v[i].verdict for i in (1, 2, 4)] == [PASS] * 3
    v = verdicts(paper_like(rounds=15))  # lowest 3.6%
    assert v[3].verdict == PASS and v[5].verdict == NOT_RUN and "2.9%" in v[5].measured
    v = verdicts(paper_like(rounds=11))  # lowest 8.7%
    assert v[2].verdict == NOT_RUN and "7.0%" in v[2].measured and v[1].verdict == PASS


# --- claim 1: ticket - dense early-stop iteration at 21.1 % below 0 (95 %) -------------------------

IT = "early_stop_iteration"


@pytest.mark.parametrize("mean, expected", [(high_at(-EPS, 0.95, 100), PASS), (low_at(EPS, 0.95, 100), FAIL),
                                            (0.0, INCONCLUSIVE), (low_at(0.0, 0.95, 100), FAIL)])
def test_claim_1_edges(mean, expected):
    s = spread(paper_like(), "ticket", ROUND[21.1], mean, sd=100, column=IT)
    assert verdicts(s)[1].verdict == expected


def test_claim_1_shows_the_reduction_beside_the_papers_38_percent():
    s = spread(paper_like(), "ticket", ROUND[21.1], -3800, sd=300, column=IT)
    v = verdicts(s)[1]
    assert "38.0% [" in v.measured and "the paper: about 38%" in v.measured and v.unit == "iterations"


# --- claim 2: every level of 51.3-7.0 % above 0, 13.5 % above +0.3 (Bonferroni over 10 levels) -----

C2 = 1 - 0.05 / 10


@pytest.mark.parametrize("r", [r for r in range(ROUND[51.3], ROUND[7.0] + 1) if r != ROUND[13.5]])
@pytest.mark.parametrize("place, expected", [("in", PASS), ("out", FAIL), ("across", INCONCLUSIVE)])
def test_claim_2_every_level_from_51_3_to_7_0_above_dense(r, place, expected):
    mean = {"in": low_at(EPS, C2), "out": high_at(-EPS, C2), "across": 0.0}[place]
    assert verdicts(spread(paper_like(), "ticket", r, mean))[2].verdict == expected


@pytest.mark.parametrize("place, expected", [("in", PASS), ("out", FAIL), ("across", INCONCLUSIVE)])
def test_claim_2_more_than_0_3_points_at_13_5(place, expected):
    mean = {"in": low_at(0.3 + EPS, C2), "out": high_at(0.3 - EPS, C2), "across": 0.3}[place]
    v = verdicts(spread(paper_like(), "ticket", ROUND[13.5], mean))[2]
    assert v.verdict == expected
    assert "13.5%" in v.statistic and v.confidence == pytest.approx(C2)


@pytest.mark.parametrize("r", [ROUND[51.3] - 1, ROUND[7.0] + 1])  # 64.1% and 5.6%: outside the range
def test_claim_2_levels_outside_51_3_to_7_0_do_not_count(r):
    assert verdicts(spread(paper_like(), "ticket", r, -1.0))[2].verdict == PASS


def test_claim_2_is_corrected_for_its_ten_levels():
    """An interval above 0 at 95 % but not at 99.5 % is not enough."""
    s = spread(paper_like(), "ticket", ROUND[26.3], low_at(EPS, 0.95))
    v = verdicts(s)[2]
    assert v.verdict == INCONCLUSIVE and "each at 99.50 %, Bonferroni over m = 10" in v.measured


# --- claim 3: within +-0.3 of dense at 3.6 % (equivalence) and below 13.5 % (paired), m = 2 --------

C3 = 1 - 0.05 / 2


@pytest.mark.parametrize("mean, expected", [
    (high_at(0.3 - EPS, C3), PASS), (low_at(-0.3 + EPS, C3), PASS),  # just inside either margin
    (low_at(0.3 + EPS, C3), FAIL), (high_at(-0.3 - EPS, C3), FAIL),  # just outside either
    (0.3, INCONCLUSIVE), (-0.3, INCONCLUSIVE),  # across either
])
def test_claim_3_equivalence_margin_edges(mean, expected):
    s = spread(paper_like(), "ticket", ROUND[13.5], 1.0, sd=0.0)  # 13.5% far above: the decrease holds
    s = spread(s, "ticket", ROUND[3.6], mean)
    v = verdicts(s)[3]
    assert v.verdict == expected, v.measured
    assert "within ±0.30 pts" in v.statistic


@pytest.mark.parametrize("mean, expected", [(low_at(EPS, C3), PASS), (high_at(-EPS, C3), FAIL),
                                            (0.0, INCONCLUSIVE)])
def test_claim_3_accuracy_decreases_from_13_5_edges(mean, expected):
    """The paired difference ticket(13.5 %) - ticket(3.6 %), with 3.6 % at +0.1 (near dense)."""
    s = spread(paper_like(), "ticket", ROUND[13.5], 0.1 + mean)
    v = verdicts(s)[3]
    assert v.verdict == expected, v.measured


def test_claim_3_is_corrected_for_its_two_intervals():
    s = spread(paper_like(), "ticket", ROUND[3.6], high_at(0.3 - EPS, 0.95))
    assert verdicts(s)[3].verdict == INCONCLUSIVE


# --- claim 4: reinit/ticket iteration ratio above 1, ticket - reinit above 0 (paired, m = 2) -------

C4 = C3


@pytest.mark.parametrize("mean, expected", [(low_at(1 + 1e-6, C4, 0.5), PASS), (high_at(1 - 1e-6, C4, 0.5), FAIL),
                                            (1.0, INCONCLUSIVE)])
def test_claim_4_slower_edges(mean, expected):
    """Per-trial ratio = mean + 0.5 * Z (the reinit's iteration over the ticket's 6000)."""
    s = spread(paper_like(), "reinit", ROUND[21.1], TICKET_IT * (mean - 1), sd=TICKET_IT * 0.5, column=IT,
               base=TICKET_IT)
    v = verdicts(s)[4]
    assert v.verdict == expected, v.measured
    assert "the paper: 2.51x" in v.measured


@pytest.mark.parametrize("gap, expected", [(low_at(EPS, C4), PASS), (high_at(-EPS, C4), FAIL), (0.0, INCONCLUSIVE)])
def test_claim_4_less_accurate_edges(gap, expected):
    """The ticket at 21.1 % is +0.5: the reinit at +0.5 - (gap + sd Z) gives a paired gap of gap + sd Z."""
    s = spread(paper_like(), "reinit", ROUND[21.1], 0.5 - gap, sd=-SD)
    v = verdicts(s)[4]
    assert v.verdict == expected, v.measured
    assert "the paper: 0.5 pts" in v.measured


def test_claim_4_is_corrected_for_its_two_intervals():
    s = spread(paper_like(), "reinit", ROUND[21.1], 0.5 - low_at(EPS, 0.95), sd=-SD)
    assert verdicts(s)[4].verdict == INCONCLUSIVE


def test_claim_4_pairs_trials_of_a_run_in_progress():
    """A run in progress: the reinit control at 21.1 % has finished for some trials only."""
    s = paper_like()
    at21 = (s["round"] == 7) & (s.experiment == "reinit")
    v = verdicts(s[~(at21 & (s.trial == 1))])
    assert v[4].verdict == PASS and "4 trials of 5, paired" in v[4].measured and "4.17x" in v[4].measured
    v = verdicts(s[~at21])
    assert v[4].verdict == NOT_RUN and "21.1%" in v[4].measured
    assert "trials of" not in verdicts(s)[4].measured


# --- claim 5: the onsets the intervals allow, within 3 rounds of 21.1 % and 2.9 % ------------------


@pytest.mark.parametrize("states, onsets", [
    ({1: "outside", 2: "inside", 3: "inside"}, [2]),
    ({1: "outside", 2: "outside", 3: "outside"}, [4]),  # never below: the round after the last
    ({1: "inside", 2: "inside"}, [1]),
    ({1: "outside", 2: "straddles", 3: "inside"}, [2, 3]),
    ({1: "straddles", 2: "straddles", 3: "outside"}, [4]),  # a level not below ends every earlier onset
    ({1: "straddles", 2: "outside", 3: "straddles"}, [3, 4]),
    ({1: "inside", 2: "straddles", 3: "inside"}, [1, 3]),  # 2 cannot be the onset: 1 is below
])
def test_possible_onsets(states, onsets):
    assert possible_onsets(states) == onsets


def with_onsets(reinit_from, ticket_from, rounds=18):
    """Point intervals: +0.1 above dense before the onset round, -0.5 below from it on."""
    s = paper_like(rounds=rounds)
    for experiment, start in (("reinit", reinit_from), ("ticket", ticket_from)):
        sel = (s.experiment == experiment) & (s["round"] > 0)
        below = s.loc[sel, "round"] >= start
        s.loc[sel, "early_stop_test_accuracy"] = DENSE_ACC + np.where(below, -0.5, 0.1) / 100
    return s


@pytest.mark.parametrize("r, expected", [(3, FAIL), (4, PASS), (7, PASS), (10, PASS), (11, FAIL)])
def test_claim_5_reinit_window(r, expected):
    v = verdicts(with_onsets(r, 16))[5]
    assert v.verdict == expected, v.measured


@pytest.mark.parametrize("r, rounds, expected", [(12, 18, FAIL), (13, 18, PASS), (16, 18, PASS), (18, 18, PASS),
                                                 (19, 18, PASS), (19, 20, PASS), (20, 20, FAIL)])
def test_claim_5_ticket_window(r, rounds, expected):
    """r = rounds + 1: never below within the levels run, counted as the round after the last."""
    v = verdicts(with_onsets(7, r, rounds=rounds))[5]
    assert v.verdict == expected, v.measured


C5 = 1 - 0.05 / 36  # 18 reinit and 18 ticket levels


@pytest.mark.parametrize("experiment, drop, expected", [
    ("reinit", 5, PASS),  # round 4 either: the onset is 4 or 5, both in 4-10
    ("reinit", 4, INCONCLUSIVE),  # 3 or 4: one in the window, one not
    ("reinit", 11, INCONCLUSIVE),  # 10 or 11
    ("reinit", 12, FAIL),  # 11 or 12: neither
    ("ticket", 13, INCONCLUSIVE),  # 12 or 13 (window 13-19)
    ("ticket", 14, PASS),
])
def test_claim_5_a_straddling_level_allows_two_onsets(experiment, drop, expected):
    """``experiment`` drops from round ``drop`` (point intervals); the round before it straddles
    the dense net, so that both it and ``drop`` are onsets the intervals allow."""
    s = with_onsets(drop if experiment == "reinit" else 7, drop if experiment == "ticket" else 16)
    s = spread(s, experiment, drop - 1, 0.0)
    v = verdicts(s)[5]
    assert v.verdict == expected, v.measured
    assert f"possible rounds {drop - 1}-{drop}" in v.measured


@pytest.mark.parametrize("place, expected", [("in", FAIL), ("out", PASS), ("across", INCONCLUSIVE)])
def test_claim_5_below_dense_edges(place, expected):
    """The reinit drops from round 4; round 3 just below dense (onset 3: FAIL), just not below
    (onset 4: PASS) or across it (3 or 4)."""
    mean = {"in": high_at(-EPS, C5), "out": low_at(EPS, C5), "across": 0.0}[place]
    s = spread(with_onsets(4, 16), "reinit", 3, mean)
    assert verdicts(s)[5].verdict == expected


def test_claim_5_is_corrected_for_all_its_levels():
    s = with_onsets(4, 16)
    s = spread(s, "reinit", 3, high_at(-EPS, 0.95))  # below at 95 %, not at 1 - 0.05/36
    v = verdicts(s)[5]
    assert v.verdict == INCONCLUSIVE and "Bonferroni over m = 36" in v.measured


def test_claim_5_tells_the_onsets():
    v = verdicts(with_onsets(7, 16))[5]
    assert "reinit onset: 21.1% (round 7), possible round 7" in v.measured
    assert "ticket onset: 2.9% (round 16), possible round 16" in v.measured
    assert (v.estimate, v.ci_low, v.ci_high, v.unit) == (7, 7, 7, "round")


# --- claim 6: every one-shot level of 95-5.2 % above dense (Bonferroni over 13 levels) --------------

C6 = 1 - 0.05 / 13


@pytest.mark.parametrize("r", range(1, ROUND[5.6] + 1))
@pytest.mark.parametrize("place, expected", [("in", PASS), ("out", FAIL), ("across", INCONCLUSIVE)])
def test_claim_6_every_level_from_95_to_5_2(r, place, expected):
    mean = {"in": low_at(EPS, C6), "out": high_at(-EPS, C6), "across": 0.0}[place]
    assert verdicts(spread(oneshot(), "ticket", r, mean), "oneshot")[6].verdict == expected


@pytest.mark.parametrize("r, percent, expected", [(1, 95.0, FAIL), (1, 95.01, PASS),
                                                  (ROUND[4.5], 5.2, FAIL), (ROUND[4.5], 5.19, PASS)])
def test_claim_6_range_edges(r, percent, expected):
    s = spread(oneshot(), "ticket", r, -1.0, sd=0.0)
    s.loc[s["round"] == r, "percent_remaining"] = percent
    assert verdicts(s, "oneshot")[6].verdict == expected


@pytest.mark.parametrize("rounds, expected", [(12, NOT_RUN), (13, PASS)])  # lowest 7.0% / 5.6%
def test_claim_6_needs_5_6(rounds, expected):
    assert verdicts(oneshot(rounds), "oneshot")[6].verdict == expected


def test_claim_6_is_corrected_for_its_thirteen_levels():
    s = spread(oneshot(), "ticket", 5, low_at(EPS, 0.95))
    v = verdicts(s, "oneshot")[6]
    assert v.verdict == INCONCLUSIVE and "Bonferroni over m = 13" in v.measured
    assert all(v2.verdict == NOT_RUN for k, v2 in verdicts(s, "oneshot").items() if k < 6)


# --- replicates, dense-only seeds, resampling -----------------------------------------------------


def test_reinit_replicates_are_averaged_within_a_trial_before_the_interval():
    """3 reinits per ticket that scatter +-1 point within each trial around the same trial mean:
    averaged first, the per-trial gap has no spread (PASS); pooled as 15 values it would straddle."""
    s = paper_like(replicates=3)
    sel = (s.experiment == "reinit") & (s["round"] == ROUND[21.1])
    ticket = DENSE_ACC * 100 + 0.5
    s.loc[sel, "early_stop_test_accuracy"] = (ticket - 0.2 + s.loc[sel, "replicate"].map({0: -1.0, 1: 0.0, 2: 1.0})) / 100
    v = verdicts(s)[4]
    assert v.verdict == PASS, v.measured
    assert "+0.20 pts [+0.20, +0.20]" in v.measured and "5 trials, paired" in v.measured


def dense_only(s, values):
    """Dense-only seeds (trials after the pruning trials) with these accuracies (points above dense)."""
    first = s["trial"].max() + 1
    rows = [dict(experiment="ticket", replicate=0, trial=first + i, round=0, percent_remaining=100.0,
                 early_stop_iteration=DENSE_IT, early_stop_test_accuracy=DENSE_ACC + v / 100, dense_only=True)
            for i, v in enumerate(values)]
    return pd.concat([s.assign(dense_only=False), pd.DataFrame(rows)], ignore_index=True)


def test_dense_only_seeds_enter_the_dense_baseline_only():
    s = spread(paper_like(), "ticket", ROUND[13.5], 0.4, sd=0.15)
    seeds = [0.3, -0.2, 0.1]
    with_seeds = dense_only(s, seeds)
    v, w = verdicts(s), verdicts(with_seeds)
    # claim 2's 13.5 % interval: the ticket's 5 trials against all 8 dense runs, as scipy's Welch
    ticket = (s[(s.experiment == "ticket") & (s["round"] == ROUND[13.5])].sort_values("trial")
              ["early_stop_test_accuracy"].to_numpy() * 100)
    dense = np.r_[np.full(5, DENSE_ACC * 100), DENSE_ACC * 100 + np.array(seeds)]
    ci = stats.ttest_ind(ticket, dense, equal_var=False).confidence_interval(C2)
    assert (w[2].ci_low, w[2].ci_high) == pytest.approx((ci.low, ci.high), abs=1e-4)
    assert "5 trials vs 8 dense runs" in w[2].measured and "5 trials vs 5 dense runs" in v[2].measured
    # the paired claims do not see them: the same intervals, the same trials
    assert w[3].intervals[1].text() == v[3].intervals[1].text() and w[4].measured == v[4].measured
    # and they are not trials: nothing says "5 of 8"
    assert all("of 8" not in x.measured for x in w.values())


def test_a_dense_only_row_that_is_not_a_dense_run_is_refused():
    s = paper_like().assign(dense_only=False)
    s.loc[s.index[3], "dense_only"] = True
    with pytest.raises(ValueError, match="dense_only"):
        evaluate_claims(s)


def test_verdict_stability_under_resampling_of_the_trials():
    robust = paper_like()
    assert all(v.stability == 1.0 for v in evaluate_claims(robust) if v.verdict != NOT_RUN)
    # one trial far below at 13.5 %: resamples without it PASS claim 2, those with it do not
    s = paper_like()
    sel = (s.experiment == "ticket") & (s["round"] == ROUND[13.5])
    s.loc[sel & (s.trial == 0), "early_stop_test_accuracy"] = DENSE_ACC - 0.02
    others = sel & (s.trial > 0)
    s.loc[others, "early_stop_test_accuracy"] = DENSE_ACC + 0.005 + 1e-4 * s.loc[others, "trial"]
    s = dense_only(s, [0.05, -0.05])
    claim2, trials = CLAIMS[1], Trials(s)
    assert claim2.fn(trials, False).verdict == INCONCLUSIVE
    first, again = stability(claim2, trials, INCONCLUSIVE), stability(claim2, trials, INCONCLUSIVE)
    assert first == again  # seeded
    # the share of resamples without trial 0, which pass: (4/5)^5 = 0.33 (all five trial 0: FAIL, 0.0003)
    assert stability(claim2, trials, PASS) == pytest.approx(0.8**5, abs=0.05)
    assert first + stability(claim2, trials, PASS) + stability(claim2, trials, FAIL) == pytest.approx(1.0)


def test_claims_table_and_markdown():
    vs = evaluate_claims(paper_like(), resample=False)
    table = claims_table(vs)
    assert list(table.columns) == ["claim_id", "claim", "paper", "source", "statistic", "unit", "estimate", "ci_low",
                                   "ci_high", "confidence", "verdict", "verdict_stability", "measured", "rule"]
    md = claims_markdown(vs, note="NOTE LINE")
    assert md.splitlines()[2] == "NOTE LINE"
    assert "5 PASS, 0 FAIL, 0 INCONCLUSIVE, 1 NOT-RUN." in md
    assert "## Every interval behind the verdicts" in md
    assert "| 2 | ticket - dense at 13.5% | +0.50 pts [+0.50, +0.50] | 99.50 % | 5 trials vs 5 dense runs | > 0 pts " \
           "| inside |" in md


def test_a_workflow_runs_claims_name_the_commit_of_their_rules():
    from lth.claims import rules_note

    note = rules_note({"commit": "0123456789abcdef0123", "dirty": False})
    assert "at commit 0123456789ab (provenance.json)" in note and "uncommitted" not in note
    assert "with uncommitted changes" in rules_note({"commit": "0123456789abcdef0123", "dirty": True})
    assert "no commit to name" in rules_note({})
