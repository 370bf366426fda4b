"""The paper's claims about LeNet-300-100 on MNIST, judged with their uncertainty.

Each claim is a statement about differences between experiments at named weight levels (percent
remaining). For each difference the rule takes one value per trial (a control's replicates, e.g.
the reinitialisations of one ticket, averaged within their trial first), its estimate and a
confidence interval from scipy.stats, and compares the interval with the region the paper's
words define:

- PASS when every interval the claim tests lies inside its region, FAIL when one lies outside
  (has no point in it), INCONCLUSIVE otherwise (an interval straddles a boundary);
- differences against the dense net are unpaired: the ticket (or control) per pruning trial
  against every dense run, the dense-only seeds (config ``dense_seeds``) included, by Welch's
  t-interval; differences within a trial (ticket - reinit, ticket at one level - at another) are
  paired: a t-interval of the per-trial differences;
- a claim's intervals hold together with 95 % confidence: a claim that tests m intervals takes
  each at 1 - 0.05/m (Bonferroni), so that its PASS ("every level is ...") and its FAIL ("some
  level is not ...") are both 95 % statements;
- where the paper states a bound ("more than 0.3 points"), that bound is the threshold; where it
  reports a magnitude (38 % earlier, 2.51x, half a point), the verdict tests the direction and
  the measured column shows the magnitude's interval beside the paper's number.

How often a verdict holds under resampling: ``scipy.stats.bootstrap`` resamples the pruning
trials (each with all its jobs) and, separately, the dense-only seeds, with replacement; its
statistic is the verdict's code (PASS 1, INCONCLUSIVE 0, FAIL -1) of the resampled trials, and
``verdict_stability`` is the share of resamples whose verdict is the one of all trials.

A level is matched to the round whose ticket has that percent remaining within 5 % (relative); a
config that does not reach a needed level, or lacks the control a claim compares with, gives
NOT-RUN. The rules and their margins are in docs/method.md ("The claims and their verdicts").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy import special, stats

PASS, FAIL, INCONCLUSIVE, NOT_RUN = "PASS", "FAIL", "INCONCLUSIVE", "NOT-RUN"
CODE = {PASS: 1, INCONCLUSIVE: 0, FAIL: -1}

ACC, IT = "early_stop_test_accuracy", "early_stop_iteration"
# The confidence with which a claim's intervals hold together (Bonferroni over its m intervals).
CONFIDENCE = 0.95
# Claim 2: the paper's "improving by more than 0.3 percentage points when Pm = 13.5 %" (points).
GAIN_AT_13_5 = 0.3
# Claim 3: "the level of the original network" is within +-MARGIN points of the dense net. The
# paper's own scale: it calls a gain of more than 0.3 points an improvement (claim 2), so a
# difference that small is not "at the level" of the dense net, and one inside it is.
MARGIN = 0.3
# Claim 5: an onset counts as "about" the paper's level within this many pruning rounds. Fixed
# before any result was seen; not to be widened after.
ROUND_WINDOW = 3
# Resampling of the trials for verdict_stability (scipy.stats.bootstrap) and the bootstrap
# interval of claim 1's relative reduction: a fixed seed, so the same summary gives the same files.
RESAMPLES = 1000
RATIO_RESAMPLES = 9999
SEED = 26
LEVEL_MATCH = 0.05  # relative: a level is the round within 5 % of it


class Missing(Exception):
    """The summary lacks what a claim needs: NOT-RUN, with the reason."""


# --- intervals ---------------------------------------------------------------------------------


def _quantile(confidence: float, df):
    """The t quantile of a two-sided interval: scipy.stats.t.ppf(0.5 + confidence / 2, df), by
    the special function beneath it (stdtrit; the same values, without the distribution object's
    overhead, which the resampling would pay thousands of times)."""
    return special.stdtrit(df, 0.5 + confidence / 2)


def _moments(x: np.ndarray):
    """Per column of a 2-D array with NaN where a value is missing: n, mean and the sample
    variance (ddof 1; NaN below 2 values). np.nanmean/np.nanvar, without their overhead."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=0)
    filled = np.where(ok, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / n
        var = (np.where(ok, x - mean, 0.0) ** 2).sum(axis=0) / (n - 1)
    return n, mean, np.where(n > 1, var, np.nan)


def _columns(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[:, None] if x.ndim == 1 else x


def mean_interval(x, confidence: float):
    """Per column of ``x`` (trials x columns, NaN where a trial has no value): the mean, the
    two-sided t-interval at ``confidence`` (scipy.stats.t, n - 1 degrees of freedom) and n.
    n < 2 gives an unbounded interval, no spread a point."""
    n, est, var = _moments(_columns(x))
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(var / n)
        half = _quantile(confidence, n - 1) * se
    half = np.where(se == 0, 0.0, half)
    half = np.where(n < 2, np.inf, half)
    return est, est - half, est + half, n


def welch_interval(a, b, confidence: float):
    """Per column of ``a`` (trials x columns, NaN where missing) against the 1-D sample ``b``:
    mean(a) - mean(b), Welch's two-sided t-interval at ``confidence`` (scipy.stats.t with the
    Welch-Satterthwaite degrees of freedom; what scipy.stats.ttest_ind(equal_var=False) gives),
    and n of a. Fewer than 2 values on either side give an unbounded interval."""
    na, mean_a, var_a = _moments(_columns(a))
    b = np.asarray(b, dtype=float)
    nb, mean_b, var_b = _moments(b[~np.isnan(b)][:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        va, vb = var_a / na, var_b / nb
        se2 = va + vb
        df = se2**2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        half = _quantile(confidence, df) * np.sqrt(se2)
    est = mean_a - mean_b
    half = np.where(se2 == 0, 0.0, half)
    half = np.where((na < 2) | (nb < 2), np.inf, half)
    return est, est - half, est + half, na


def bonferroni(m: int) -> float:
    """The confidence of each of m intervals that hold together with CONFIDENCE."""
    return 1 - (1 - CONFIDENCE) / m


# --- regions and checks ------------------------------------------------------------------------

INSIDE, OUTSIDE, STRADDLES = "inside", "outside", "straddles"


@dataclass(frozen=True)
class Region:
    """Where the paper's words put a difference: above a bound, below it, or within +-bound."""

    kind: str  # above | below | within
    bound: float

    def state(self, low: float, high: float) -> str:
        b = self.bound
        if self.kind == "above":
            return INSIDE if low > b else OUTSIDE if high <= b else STRADDLES
        if self.kind == "below":
            return INSIDE if high < b else OUTSIDE if low >= b else STRADDLES
        if -b < low and high < b:
            return INSIDE
        return OUTSIDE if high <= -b or low >= b else STRADDLES

    def margin(self, low: float, high: float) -> float:
        """How far inside the region the interval is (negative: not inside)."""
        b = self.bound
        if self.kind == "above":
            return low - b
        if self.kind == "below":
            return b - high
        return min(low + b, b - high)

    def text(self, unit: str, digits: int) -> str:
        if self.kind == "within":
            return f"within ±{self.bound:.{digits}f} {unit}"
        bound = "0" if self.bound == 0 else f"{self.bound:.{digits}f}" if unit == "x" else f"{self.bound:+.{digits}f}"
        return f"{'>' if self.kind == 'above' else '<'} {bound}" + ("" if unit == "x" else f" {unit}")


@dataclass
class Interval:
    """One difference a claim tests: its estimate and interval, and the region it must lie in."""

    label: str
    estimate: float
    low: float
    high: float
    confidence: float
    unit: str
    n: str  # what the interval rests on, e.g. "5 trials vs 10 dense runs"
    region: Region
    digits: int = 2

    @property
    def state(self) -> str:
        return self.region.state(self.low, self.high)

    @property
    def margin(self) -> float:
        return self.region.margin(self.low, self.high)

    def fmt(self, value: float) -> str:
        if not np.isfinite(value):
            return "-inf" if value < 0 else "inf"
        return f"{value:+.{self.digits}f}" if self.unit in ("pts", "iterations") else f"{value:.{self.digits}f}"

    def text(self) -> str:
        u = "x" if self.unit == "x" else f" {self.unit}"
        return f"{self.fmt(self.estimate)}{u} [{self.fmt(self.low)}, {self.fmt(self.high)}]"

    def row(self, claim_id: int) -> dict:
        return {"claim": claim_id, "statistic": self.label, "estimate": self.text(),
                "confidence": f"{100 * self.confidence:.2f} %", "rests on": self.n,
                "region": self.region.text(self.unit, self.digits), "state": self.state}


@dataclass
class Onset:
    """Claim 5: the rounds at which an accuracy can "drop off" given the per-level intervals, and
    the window around the paper's level they must fall in."""

    label: str
    estimate: int  # the onset the means give
    possible: list[int]  # every onset some truth inside the intervals has
    window: tuple[int, int]
    levels: dict[int, float]

    @property
    def state(self) -> str:
        lo, hi = self.window
        inside = [lo <= o <= hi for o in self.possible]
        return INSIDE if all(inside) else OUTSIDE if not any(inside) else STRADDLES

    margin = float("inf")

    def where(self, r: int) -> str:
        return f"{self.levels[r]:.1f}% (round {r})" if r in self.levels else f"none down to {min(self.levels.values()):.1f}%"

    def text(self) -> str:
        lo, hi = min(self.possible), max(self.possible)
        span = f"round {lo}" if lo == hi else f"rounds {lo}-{hi}"
        return f"{self.where(self.estimate)}, possible {span}"


@dataclass
class Outcome:
    """What a claim's rule makes of the trials: its checks (intervals or onsets), their
    verdict, the readable measured text, and every interval behind it."""

    checks: list
    measured: str
    intervals: list = field(default_factory=list)

    @property
    def verdict(self) -> str:
        states = [c.state for c in self.checks]
        if all(s == INSIDE for s in states):
            return PASS
        return FAIL if OUTSIDE in states else INCONCLUSIVE

    def deciding(self):
        """The check a verdict turns on: of the checks outside their region (FAIL), else of those
        straddling its boundary (INCONCLUSIVE), else of all (PASS), the one least inside it."""
        for state in (OUTSIDE, STRADDLES, INSIDE):
            worst = [c for c in self.checks if c.state == state]
            if worst:
                return min(worst, key=lambda c: c.margin)


# --- the trials of a summary -------------------------------------------------------------------


class Trials:
    """Per-trial values of a summary (accuracy in points), a control's replicates averaged within
    their trial; the dense runs of the pruning trials and of the dense-only seeds apart."""

    def __init__(self, summary: pd.DataFrame | None = None) -> None:
        if summary is None:
            return
        s = summary
        only = s["dense_only"].fillna(False).astype(bool) if "dense_only" in s.columns else pd.Series(False, s.index)
        if (only & ((s["round"] != 0) | (s["experiment"] != "ticket"))).any():
            raise ValueError("summary rows flagged dense_only must be dense runs (ticket, round 0)")
        pruned, seeds = s[~only], s[only]
        self.levels = pruned[pruned.experiment == "ticket"].groupby("round")["percent_remaining"].mean().to_dict()
        self.trials = sorted(pruned["trial"].unique())
        self.rounds = sorted(set(pruned["round"]))
        per_trial = pruned.groupby(["experiment", "round", "trial"])[[ACC, IT]].mean()
        self.values = {}
        for experiment in per_trial.index.get_level_values(0).unique():
            sub = per_trial.loc[experiment]
            for column, scale in ((ACC, 100.0), (IT, 1.0)):
                table = sub[column].unstack("round").reindex(index=self.trials, columns=self.rounds)
                self.values[(experiment, column)] = table.to_numpy(dtype=float) * scale
        self.seeds = {column: seeds.sort_values("trial")[column].to_numpy(dtype=float) * scale
                      for column, scale in ((ACC, 100.0), (IT, 1.0))}
        self.n_seeds = len(seeds)

    def take(self, trials: np.ndarray, seeds: np.ndarray | None) -> Trials:
        """The trials and dense-only seeds at these positions (a resample)."""
        t = Trials()
        t.levels, t.rounds, t.trials = self.levels, self.rounds, [self.trials[i] for i in trials]
        t.values = {k: v[trials] for k, v in self.values.items()}
        t.seeds = self.seeds if seeds is None else {k: v[seeds] for k, v in self.seeds.items()}
        t.n_seeds = self.n_seeds if seeds is None else len(seeds)
        return t

    def round_at(self, level: float) -> int:
        for r, pct in self.levels.items():
            if abs(pct - level) / level < LEVEL_MATCH:
                return r
        reached = min(self.levels.values()) if self.levels else 100.0
        raise Missing(f"the config does not reach {level}% of weights remaining (lowest: {reached:.1f}%)")

    def pruned_rounds(self) -> list[int]:
        return [r for r in self.rounds if r > 0]

    def at(self, experiment: str, rounds: list[int], column: str = ACC) -> np.ndarray:
        """trials x rounds of ``experiment`` (NaN where a trial has not run a round yet)."""
        table = self.values.get((experiment, column))
        empty = [True] * len(rounds)
        if table is not None:
            sub = table[:, [self.rounds.index(r) for r in rounds]]
            empty = np.isnan(sub).all(axis=0)
            if not empty.any():
                return sub
        missing = rounds[int(np.argmax(empty))]
        raise Missing(f"no {experiment} runs at {self.levels[missing]:.1f}% (is the control in `controls`?)")

    def dense(self, column: str = ACC) -> np.ndarray:
        """Every dense run: the pruning trials' and the dense-only seeds'."""
        table = self.values.get(("ticket", column))
        own = table[:, self.rounds.index(0)] if table is not None and 0 in self.rounds else np.array([])
        values = np.concatenate([own[~np.isnan(own)], self.seeds[column]])
        if values.size == 0:
            raise Missing("no dense run (round 0)")
        return values

    def rests_on(self, n: int, dense: bool = True) -> str:
        trials = f"{n} trials" + ("" if n >= len(self.trials) else f" of {len(self.trials)}")
        return f"{trials} vs {self.dense().size} dense runs" if dense else f"{trials}, paired"


def vs_dense(t: Trials, experiment: str, rounds: list[int], confidence: float, region: Region,
             name: str | None = None, column: str = ACC) -> list[Interval]:
    """``experiment`` - dense at each round: Welch intervals over the pruning trials against every
    dense run."""
    est, lo, hi, n = welch_interval(t.at(experiment, rounds, column), t.dense(column), confidence)
    unit, digits = ("pts", 2) if column == ACC else ("iterations", 0)
    rests_on = {k: t.rests_on(int(k)) for k in set(n.tolist())}
    return [Interval(f"{name or experiment} - dense at {t.levels[r]:.1f}%", est[i], lo[i], hi[i], confidence,
                     unit, rests_on[n[i]], region, digits) for i, r in enumerate(rounds)]


def paired(t: Trials, label: str, per_trial: np.ndarray, confidence: float, region: Region, unit: str,
           digits: int = 2) -> Interval:
    est, lo, hi, n = mean_interval(per_trial, confidence)
    return Interval(label, est[0], lo[0], hi[0], confidence, unit, t.rests_on(int(n[0]), dense=False), region, digits)


def _level(iv: Interval) -> str:
    return iv.label.rsplit(" at ", 1)[-1]


def _family(intervals: list[Interval]) -> str:
    m = len(intervals)
    return "95 %" if m == 1 else f"simultaneous 95 %: each at {100 * bonferroni(m):.2f} %, Bonferroni over m = {m}"


# --- the claims ----------------------------------------------------------------------------------


def _claim1(t: Trials, detail: bool) -> Outcome:
    r = t.round_at(21.1)
    (iv,) = vs_dense(t, "ticket", [r], CONFIDENCE, Region("below", 0.0), column=IT)
    measured = f"ticket - dense early-stop iteration at 21.1%: {iv.text()} ({_family([iv])}, Welch; {iv.n})"
    if detail:
        ticket, dense = t.at("ticket", [r], IT)[:, 0], t.dense(IT)
        ticket = ticket[~np.isnan(ticket)]
        low, high = _reduction_interval(ticket, dense)
        est = 1 - ticket.mean() / dense.mean()
        measured += (f"; {100 * est:.1f}% [{100 * low:.1f}, {100 * high:.1f}] earlier (1 - ticket/dense mean, "
                     "95 % bootstrap BCa; the paper: about 38%)")
    return Outcome([iv], measured, [iv])


def _reduction_interval(ticket: np.ndarray, dense: np.ndarray) -> tuple[float, float]:
    """95 % bootstrap (BCa) interval of 1 - mean(ticket) / mean(dense), the two samples
    resampled independently; a point where there is no spread to resample."""
    point = 1 - ticket.mean() / dense.mean()
    if ticket.size < 2 or dense.size < 2 or (np.ptp(ticket) == 0 and np.ptp(dense) == 0):
        return point, point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((ticket, dense), lambda a, b, axis: 1 - a.mean(axis) / b.mean(axis), vectorized=True,
                              n_resamples=RATIO_RESAMPLES, confidence_level=CONFIDENCE, method="BCa",
                              rng=np.random.default_rng(SEED))
    low, high = res.confidence_interval
    return (point, point) if np.isnan(low) or np.isnan(high) else (float(low), float(high))


def _claim2(t: Trials, detail: bool) -> Outcome:
    lo, hi, r135 = t.round_at(51.3), t.round_at(7.0), t.round_at(13.5)
    rounds = [r for r in t.pruned_rounds() if lo <= r <= hi]
    conf = bonferroni(len(rounds))
    above = vs_dense(t, "ticket", rounds, conf, Region("above", 0.0))
    at135 = above[rounds.index(r135)]
    gain = Interval(at135.label, at135.estimate, at135.low, at135.high, conf, "pts", at135.n,
                    Region("above", GAIN_AT_13_5))
    lowest = min(above, key=lambda iv: iv.low)
    measured = (f"ticket - dense at 13.5%: {gain.text()}; the lowest interval over 51.3-7.0%: at {_level(lowest)} "
                f"{lowest.text()} ({_family(above)}; Welch, {at135.n})")
    return Outcome([*above, gain], measured, [*above, gain])


def _claim3(t: Trials, detail: bool) -> Outcome:
    """'After this point [13.5 %], accuracy decreases, returning to the level of the original
    network when Pm = 3.6 %': within +-MARGIN of dense at 3.6 % (an equivalence test: the
    interval inside the margin), and lower at 3.6 % than at 13.5 % (paired within a trial)."""
    r36, r135 = t.round_at(3.6), t.round_at(13.5)
    conf = bonferroni(2)
    (near,) = vs_dense(t, "ticket", [r36], conf, Region("within", MARGIN))
    pair = t.at("ticket", [r135, r36])
    came_down = paired(t, "ticket at 13.5% - at 3.6%", pair[:, 0] - pair[:, 1], conf, Region("above", 0.0), "pts")
    measured = (f"ticket - dense at 3.6%: {near.text()} (equivalence margin ±{MARGIN:.1f} pts; Welch, {near.n}); "
                f"ticket at 13.5% - at 3.6%: {came_down.text()} ({came_down.n}); {_family([near, came_down])}")
    return Outcome([near, came_down], measured, [near, came_down])


def _claim4(t: Trials, detail: bool) -> Outcome:
    r = t.round_at(21.1)
    conf = bonferroni(2)
    it = t.at("ticket", [r], IT)[:, 0], t.at("reinit", [r], IT)[:, 0]
    acc = t.at("ticket", [r])[:, 0], t.at("reinit", [r])[:, 0]
    both = ~np.isnan(it[0]) & ~np.isnan(it[1])
    if not both.any():
        raise Missing("no trial has both its ticket and its reinit control at 21.1% yet")
    ratio = paired(t, "reinit / ticket early-stop iteration at 21.1%", np.where(both, it[1] / it[0], np.nan), conf,
                   Region("above", 1.0), "x")
    gap = paired(t, "ticket - reinit at 21.1%", np.where(both, acc[0] - acc[1], np.nan), conf, Region("above", 0.0),
                 "pts")
    measured = (f"reinit/ticket early-stop iteration: {ratio.text()} (the paper: 2.51x); ticket - reinit accuracy: "
                f"{gap.text()} (the paper: 0.5 pts); {gap.n}, {_family([ratio, gap])}")
    return Outcome([ratio, gap], measured, [ratio, gap])


def possible_onsets(states: dict[int, str]) -> list[int]:
    """The onsets consistent with per-level states (round -> INSIDE: below the dense net,
    OUTSIDE: not below it, STRADDLES: either). The onset of a curve is the first round from which
    every later round is below the dense net (the dense net itself, round 0, is not below it); the
    round after the last one run where the last one is not below."""
    rounds = sorted(states)
    # can_stay[i]: every round from rounds[i] on can be below (a suffix, so one pass from the end)
    can_stay = [True] * (len(rounds) + 1)
    for i in range(len(rounds) - 1, -1, -1):
        can_stay[i] = can_stay[i + 1] and states[rounds[i]] != OUTSIDE
    return [o for i, o in enumerate([*rounds, rounds[-1] + 1])
            if can_stay[i] and (i == 0 or states[rounds[i - 1]] != INSIDE)]


def _claim5(t: Trials, detail: bool) -> Outcome:
    """'The reinitialized ... test accuracy drops off from the original accuracy when Pm = 21.1 %,
    compared to 2.9 % for the winning ticket': the onset (the first level from which the mean is
    below the dense net at every later level run) within ROUND_WINDOW rounds of the paper's."""
    paper = {"reinit": t.round_at(21.1), "ticket": t.round_at(2.9)}  # rounds 7 and 16 at 20/20/10
    rounds = t.pruned_rounds()
    conf = bonferroni(2 * len(rounds))
    checks, intervals = [], []
    for experiment in ("reinit", "ticket"):
        ivs = vs_dense(t, experiment, rounds, conf, Region("below", 0.0))
        intervals += ivs
        states = {r: iv.state for r, iv in zip(rounds, ivs)}
        means = {r: INSIDE if iv.estimate < 0 else OUTSIDE for r, iv in zip(rounds, ivs)}
        (estimate,) = possible_onsets(means)
        p = paper[experiment]
        checks.append(Onset(f"{experiment} onset", estimate, possible_onsets(states),
                            (p - ROUND_WINDOW, p + ROUND_WINDOW), t.levels))
    onsets = [f"{c.label}: {c.text()} (the paper: round {(c.window[0] + c.window[1]) // 2}, window "
              f"{c.window[0]}-{c.window[1]})" for c in checks]
    measured = "; ".join(onsets) + f"; from reinit and ticket - dense at every level (Welch, {_family(intervals)})"
    return Outcome(checks, measured, intervals)


def _claim6(t: Trials, detail: bool) -> Outcome:
    t.round_at(5.6)  # the lowest 20/20/10 level above 5.2 % must be reached
    rounds = [r for r in t.pruned_rounds() if 5.2 <= t.levels[r] <= 95.0]
    above = vs_dense(t, "ticket", rounds, bonferroni(len(rounds)), Region("above", 0.0), name="one-shot ticket")
    lowest = min(above, key=lambda iv: iv.low)
    measured = (f"the lowest one-shot ticket - dense interval over 95-5.2%: at {_level(lowest)} "
                f"{lowest.text()} ({_family(above)}; Welch, {lowest.n})")
    return Outcome(above, measured, above)


@dataclass(frozen=True)
class Claim:
    claim_id: int
    claim: str
    paper: str
    source: str
    rule: str
    pruning: str
    fn: Callable[[Trials, bool], Outcome]


CLAIMS = [
    Claim(1, "Winning tickets at 21.1% of weights reach minimum validation loss earlier than the dense net",
          "about 38% earlier", "text, Section 2 (Figure 4a left)",
          "PASS if the 95 % Welch interval of ticket - dense early-stop iteration at 21.1% is below 0; the relative "
          "reduction's bootstrap interval is shown beside the paper's 38%", "iterative", _claim1),
    Claim(2, "Early-stop test accuracy is higher than the dense net's between 51.3% and 7.0% of weights, "
          "and more than 0.3 points higher at 13.5%", "higher over 51.3-7.0%; > +0.3 pts at 13.5%",
          "text, Section 2 (Figure 4a right)",
          "PASS if the ticket - dense interval at every level of 51.3-7.0% is above 0 and at 13.5% above +0.3 pts "
          "(Welch, Bonferroni over the levels)", "iterative", _claim2),
    Claim(3, "At 3.6% of weights the ticket's accuracy is back at the level of the dense net's",
          "after 13.5% accuracy decreases, returning to the level of the original network at 3.6%",
          "text, Section 2 (Figures 3, 4a)",
          f"PASS if the ticket - dense interval at 3.6% lies within ±{MARGIN:.1f} pts (equivalence: both one-sided "
          "tests, TOST) and the paired ticket 13.5% - 3.6% interval is above 0 (Bonferroni over the 2)",
          "iterative", _claim3),
    Claim(4, "Randomly reinitialised nets at 21.1% learn slower and are less accurate than the ticket",
          "2.51x later minimum validation loss, 0.5 pts less accurate", "text, Section 2 (Figure 4a)",
          "PASS if the paired interval of the per-trial reinit/ticket early-stop iteration ratio is above 1 and that "
          "of ticket - reinit accuracy above 0 (Bonferroni over the 2); the paper's 2.51x and 0.5 shown beside",
          "iterative", _claim4),
    Claim(5, "Reinitialised nets lose accuracy from about 21.1% of weights on, winning tickets only from about 2.9%",
          "reinit drops off from 21.1%, tickets from 2.9%", "text, Section 2 (Figure 4a right)",
          "onset = the first level from which the accuracy stays below the dense net's down to the last level run; "
          "from the reinit and ticket - dense intervals at every level (Welch, Bonferroni over all of them), the "
          f"onsets they allow; PASS if every allowed onset is within {ROUND_WINDOW} rounds of the paper's level, "
          "FAIL if none is (a curve not below at the last level counts as the round after it)", "iterative", _claim5),
    Claim(6, "One-shot tickets beat the dense net's test accuracy between about 95% and 5.2% of weights",
          "higher over 95-5.2% (one-shot)", "text, Section 2 'One-shot pruning' (Figure 4c)",
          "PASS if the one-shot ticket - dense interval at every level of 95-5.2% is above 0 (Welch, Bonferroni "
          "over the levels)", "oneshot", _claim6),
]


# --- verdicts ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    claim_id: int
    claim: str
    paper: str
    source: str
    rule: str
    verdict: str
    measured: str
    statistic: str = ""
    unit: str = ""
    estimate: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    confidence: float = float("nan")
    stability: float = float("nan")
    intervals: list = field(default_factory=list)  # every interval (claims.md), not a column

    def row(self) -> dict:
        return {
            "claim_id": self.claim_id,
            "claim": self.claim,
            "paper": self.paper,
            "source": self.source,
            "statistic": self.statistic,
            "unit": self.unit,
            "estimate": _round(self.estimate),
            "ci_low": _round(self.ci_low),
            "ci_high": _round(self.ci_high),
            "confidence": _round(self.confidence),
            "verdict": self.verdict,
            "verdict_stability": _round(self.stability, 3),
            "measured": self.measured,
            "rule": self.rule,
        }


def _round(x: float, digits: int = 4) -> float:
    return float(round(x, digits)) if np.isfinite(x) else x


def stability(claim: Claim, t: Trials, verdict: str) -> float:
    """The share of resamples of the trials (scipy.stats.bootstrap: the pruning trials, each with
    all its jobs, and the dense-only seeds, each set resampled with replacement) whose verdict is
    ``verdict``; NaN with fewer than 2 trials. A resample that lacks a level counts as not."""
    if len(t.trials) < 2:
        return float("nan")
    resample_seeds = t.n_seeds >= 2  # bootstrap needs two or more values per sample

    def code(trials, seeds=None):
        sub = t.take(trials.astype(int), None if seeds is None else seeds.astype(int))
        try:
            return float(CODE[claim.fn(sub, False).verdict])
        except Missing:
            return float("nan")

    data = (np.arange(len(t.trials)),) + ((np.arange(t.n_seeds),) if resample_seeds else ())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(data, code, vectorized=False, n_resamples=RESAMPLES, method="percentile",
                              rng=np.random.default_rng(SEED))
    return float(np.mean(res.bootstrap_distribution == CODE[verdict]))


def evaluate_claims(summary: pd.DataFrame, pruning: str = "iterative", resample: bool = True) -> list[Verdict]:
    """The six claims on ``summary`` (one row per training job, as summary.csv): each verdict
    with its deciding interval and, with ``resample``, how often it holds under resampling."""
    t = Trials(summary)
    out = []
    for c in CLAIMS:
        base = dict(claim_id=c.claim_id, claim=c.claim, paper=c.paper, source=c.source, rule=c.rule)
        try:
            if pruning != c.pruning:
                raise Missing("claims 1-5 need `pruning: iterative`" if c.pruning == "iterative"
                              else "needs `pruning: oneshot`")
            outcome = c.fn(t, True)
        except Missing as why:
            out.append(Verdict(**base, verdict=NOT_RUN, measured=f"not measured: {why}"))
            continue
        d = outcome.deciding()
        if isinstance(d, Onset):
            fields = dict(statistic=f"{d.label} (round; interval: the onsets the intervals allow)", unit="round",
                          estimate=d.estimate, ci_low=min(d.possible), ci_high=max(d.possible),
                          confidence=outcome.intervals[0].confidence)
        else:
            fields = dict(statistic=d.label + (f" ({d.region.text(d.unit, d.digits)})"), unit=d.unit,
                          estimate=d.estimate, ci_low=d.low, ci_high=d.high, confidence=d.confidence)
        v = Verdict(**base, verdict=outcome.verdict, measured=outcome.measured, intervals=outcome.intervals, **fields)
        if resample:
            v.stability = stability(c, t, v.verdict)
        out.append(v)
    return out


def claims_table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([v.row() for v in verdicts])


def mean_min_max(values: pd.Series, scale: float = 1.0, unit: str = "", digits: int = 2) -> str:
    v = values.astype(float) * scale
    return f"{v.mean():.{digits}f}{unit} [{v.min():.{digits}f}, {v.max():.{digits}f}]"


SCORED_AFTER_THE_FACT = (
    "**Scored after the fact.** This run was made before these rules (src/lth/claims.py, issue 26) were "
    "fixed: its verdicts were re-scored from the summary.csv beside this file with `python3 -m lth.summarize "
    "--rescore`; they are not a pre-registered test of the paper's claims."
)


def rules_note(git: dict) -> str:
    """The line of a workflow run's claims.md that names the rules it was scored by: the commit of
    the code that ran (lth.provenance.git_state; provenance.json records the same)."""
    if not git:
        return "Scored by the rules of src/lth/claims.py of the code that ran (not a git checkout: no commit to name)."
    dirty = ", with uncommitted changes" if git.get("dirty") else ""
    return (f"Scored by the rules of src/lth/claims.py at commit {git['commit'][:12]}{dirty} (provenance.json); "
            "a run started after the rules were committed tests them as fixed before it.")


def claims_markdown(verdicts: list[Verdict], config: dict | None = None, note: str | None = None) -> str:
    lines = [
        "# Claims of Frankle & Carbin (2019) about LeNet-300-100 on MNIST, judged with their uncertainty",
        "",
    ]
    if note:
        lines += [note, ""]
    lines += [
        "Each claim tests differences between experiments, each with one value per trial (a control's",
        "replicates averaged within their trial first): against the dense net a Welch t-interval over the",
        "pruning trials and every dense run (dense-only seeds included), within a trial a paired t-interval.",
        "A claim's intervals hold together with 95 % confidence (m intervals, each at 1 - 0.05/m:",
        "Bonferroni). PASS: every interval inside the region the paper's words define; FAIL: one outside it;",
        "INCONCLUSIVE: otherwise; NOT-RUN: the config does not reach the weight level or lacks the control.",
        "Stable: the share of 1000 resamples of the trials (scipy.stats.bootstrap) that give the same",
        "verdict. The rules and their margins: docs/method.md, \"The claims and their verdicts\".",
        "",
    ]
    if config:
        keys = ("trials", "dense_seeds", "rounds", "iterations", "pruning", "controls", "reinit_per_ticket",
                "prune_scope", "rewind_iteration")
        lines += ["Config: " + ", ".join(f"`{k}={config[k]}`" for k in keys if k in config), ""]
    lines += ["| # | claim | paper (source) | measured: estimate [interval] | rule | verdict | stable |",
              "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        stable = "" if not np.isfinite(v.stability) else f"{100 * v.stability:.0f} %"
        cells = [str(v.claim_id), v.claim, f"{v.paper} ({v.source})", v.measured, v.rule, f"**{v.verdict}**", stable]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    counts = {k: sum(v.verdict == k for v in verdicts) for k in (PASS, FAIL, INCONCLUSIVE, NOT_RUN)}
    lines += ["", ", ".join(f"{n} {k}" for k, n in counts.items()) + ".", ""]
    rows = [iv.row(v.claim_id) for v in verdicts for iv in v.intervals]
    if rows:
        lines += ["## Every interval behind the verdicts", "",
                  "State: inside or outside the region, or straddling its boundary.", "",
                  "| claim | difference | estimate [interval] | confidence | rests on | region | state |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows:
            lines.append("| " + " | ".join(str(r[k]) for k in ("claim", "statistic", "estimate", "confidence",
                                                                  "rests on", "region", "state")) + " |")
        lines.append("")
    return "\n".join(lines)
