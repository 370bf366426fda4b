"""The paper's claims about LeNet-300-100 on MNIST, checked against a summary table.

Each claim names the weight levels (percent remaining) it needs. A level is matched to the round
whose ticket has that percent remaining within 5 % (relative); a config that does not reach a
needed level, or lacks the control a claim compares with, gives NOT-RUN. Otherwise the verdict is
PASS or FAIL under the tolerance stated in the table. "Measured" quotes the mean over trials and,
in brackets, the minimum and maximum over trials.

The paper's numbers are quoted from its text (Section 2, "Winning Tickets in Fully-Connected
Networks", and the captions of Figures 3 and 4); where a claim's threshold is our choice (what
"near" or "loses accuracy" means), the tolerance column says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT-RUN"

# Accuracy differences smaller than this are "at the level of" the dense net (0.3 points: about
# the trial-to-trial spread, max - min, of the dense net's early-stop accuracy in the paper's
# Figure 4a; 0.29 points over the 5 dense trials of results/paper). Claim 3 uses it both ways: the
# ticket at 3.6 % is within it of the dense net, and more than it below the ticket's own peak.
LOSS_TOLERANCE = 0.003
# The paper's "improving by more than 0.3 percentage points when Pm = 13.5 %" (claim 2).
GAIN_AT_13_5 = 0.003
# Claim 5: an onset counts as "about" the paper's level within this many pruning rounds. Fixed
# before any result was seen; not to be widened after.
ROUND_WINDOW = 3
# Claim 5's onsets are also reported, not judged, under these readings of "loses accuracy"
# (stays more than x below the dense mean), for comparison with the verdict's literal reading (0).
ONSET_READINGS = (0.0, 0.002, 0.003, 0.004)


@dataclass
class Verdict:
    claim_id: int
    claim: str
    paper: str
    source: str
    measured: str
    tolerance: str
    verdict: str
    notes: str = ""  # markdown printed under the claims table (not a column of claims.csv)

    def row(self) -> dict:
        return {
            "claim_id": self.claim_id,
            "claim": self.claim,
            "paper": self.paper,
            "source": self.source,
            "measured": self.measured,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
        }


class Missing(Exception):
    """The summary lacks what a claim needs: NOT-RUN, with the reason."""


def mean_min_max(values: pd.Series, scale: float = 1.0, unit: str = "", digits: int = 2) -> str:
    v = values.astype(float) * scale
    return f"{v.mean():.{digits}f}{unit} [{v.min():.{digits}f}, {v.max():.{digits}f}]"


class Grid:
    """Per-trial values of one experiment at one weight level, matched by percent remaining."""

    def __init__(self, summary: pd.DataFrame) -> None:
        self.s = summary
        ticket = summary[summary["experiment"] == "ticket"]
        self.levels = ticket.groupby("round")["percent_remaining"].mean().to_dict()

    def round_at(self, level: float) -> int:
        for r, pct in self.levels.items():
            if abs(pct - level) / level < 0.05:
                return r
        reached = min(self.levels.values()) if self.levels else 100.0
        raise Missing(f"the config does not reach {level}% of weights remaining (lowest: {reached:.1f}%)")

    def values(self, experiment: str, level: float, column: str) -> pd.Series:
        return self.at_round(experiment, self.round_at(level), column)

    def at_round(self, experiment: str, r: int, column: str) -> pd.Series:
        sub = self.s[(self.s["experiment"] == experiment) & (self.s["round"] == r)]
        if sub.empty:
            raise Missing(f"no {experiment} runs at {self.levels[r]:.1f}% (is the control in `controls`?)")
        # Average reinitialisation replicates within a trial; one value per trial.
        return sub.groupby("trial")[column].mean()

    def dense(self, column: str) -> pd.Series:
        sub = self.s[(self.s["experiment"] == "ticket") & (self.s["round"] == 0)]
        if sub.empty:
            raise Missing("no dense run (round 0)")
        return sub.groupby("trial")[column].mean()

    def ordered_levels(self) -> list[tuple[int, float]]:
        return sorted(self.levels.items())


def _coverage(g: Grid, values: pd.Series) -> str:
    """' (n of N trials)' when a claim rests on fewer trials than the dense run has (a run in
    progress); empty otherwise."""
    n_all = g.dense("early_stop_iteration").size
    return "" if values.size >= n_all else f" ({values.size} of {n_all} trials)"


def _claim1(g: Grid) -> tuple[str, str]:
    dense = g.dense("early_stop_iteration")
    ticket = g.values("ticket", 21.1, "early_stop_iteration")
    reduction = 1.0 - ticket / dense.loc[ticket.index]
    verdict = PASS if ticket.mean() < dense.mean() else FAIL
    return (
        f"early stop {ticket.mean():.0f} vs dense {dense.mean():.0f} iterations: "
        f"{mean_min_max(reduction, 100, '%', 1)} earlier{_coverage(g, ticket)}",
        verdict,
    )


def _claim2(g: Grid) -> tuple[str, str]:
    dense = g.dense("early_stop_test_accuracy")
    lo, hi = g.round_at(51.3), g.round_at(7.0)
    diffs = []
    for r in range(lo, hi + 1):
        t = g.at_round("ticket", r, "early_stop_test_accuracy")
        diffs.append((g.levels[r], t.mean() - dense.mean()))
    every_level_above = all(d > 0 for _, d in diffs)
    at135 = g.values("ticket", 13.5, "early_stop_test_accuracy") - dense.mean()
    gain_at_135 = at135.mean() > GAIN_AT_13_5
    worst = min(diffs, key=lambda x: x[1])
    return (
        f"ticket - dense at 13.5%: {mean_min_max(at135, 100, ' pts')}; smallest mean gain over 51.3-7.0%: "
        f"{worst[1] * 100:+.2f} pts at {worst[0]:.1f}%{_coverage(g, at135)}",
        PASS if every_level_above and gain_at_135 else FAIL,
    )


def _claim3(g: Grid) -> tuple[str, str]:
    """'Accuracy decreases, returning to the level of the original network when Pm = 3.6%': near
    the dense net, and come back down from the ticket's peak (which is not near it)."""
    dense = g.dense("early_stop_test_accuracy")
    r36 = g.round_at(3.6)
    t = g.at_round("ticket", r36, "early_stop_test_accuracy")
    diff = t - dense.mean()
    above = [(g.levels[r], g.at_round("ticket", r, "early_stop_test_accuracy").mean()) for r, _ in g.ordered_levels()
             if 0 < r < r36]
    peak_pct, peak = max(above, key=lambda x: x[1])
    drop = peak - t.mean()
    near_dense = abs(diff.mean()) <= LOSS_TOLERANCE
    came_down = drop > LOSS_TOLERANCE
    return (
        f"ticket - dense at 3.6%: {mean_min_max(diff, 100, ' pts')}; the ticket's peak "
        f"{(peak - dense.mean()) * 100:+.2f} pts at {peak_pct:.1f}% is {drop * 100:.2f} pts above its 3.6% level"
        f"{_coverage(g, diff)}",
        PASS if near_dense and came_down else FAIL,
    )


def _claim4(g: Grid) -> tuple[str, str]:
    t_it = g.values("ticket", 21.1, "early_stop_iteration")
    r_it = g.values("reinit", 21.1, "early_stop_iteration")
    t_acc = g.values("ticket", 21.1, "early_stop_test_accuracy")
    r_acc = g.values("reinit", 21.1, "early_stop_test_accuracy")
    # Compare within a trial, on the trials that have both (a run in progress may not).
    trials = t_it.index.intersection(r_it.index)
    if trials.empty:
        raise Missing("no trial has both its ticket and its reinit control at 21.1% yet")
    ratio = r_it.loc[trials] / t_it.loc[trials]
    gap = t_acc.loc[trials] - r_acc.loc[trials]
    slower = ratio.mean() > 1.0
    less_accurate = gap.mean() > 0
    return (
        f"reinit/ticket early-stop iteration: {mean_min_max(ratio, 1, 'x')}; ticket - reinit accuracy: "
        f"{mean_min_max(gap, 100, ' pts')}{_coverage(g, ratio)}",
        PASS if slower and less_accurate else FAIL,
    )


def _level_means(g: Grid, experiment: str) -> dict[int, float]:
    """Mean early-stop test accuracy per pruning round (replicates averaged within a trial)."""
    return {r: g.at_round(experiment, r, "early_stop_test_accuracy").mean() for r, _ in g.ordered_levels() if r > 0}


def onset(means: dict[int, float], dense: float, threshold: float = 0.0, stays: bool = True) -> int | None:
    """The first round (in pruning order) whose mean is below ``dense - threshold`` and, with
    ``stays``, from which every later round's mean is too. None: no such round."""
    rounds = sorted(means)
    below = {r: means[r] < dense - threshold for r in rounds}
    for r in rounds:
        if below[r] and (not stays or all(below[q] for q in rounds if q >= r)):
            return r
    return None


def _claim5(g: Grid) -> tuple[str, str, str]:
    paper_reinit, paper_ticket = g.round_at(21.1), g.round_at(2.9)  # rounds 7 and 16 at 20/20/10
    dense = g.dense("early_stop_test_accuracy").mean()
    means = {e: _level_means(g, e) for e in ("reinit", "ticket")}
    r_round = onset(means["reinit"], dense)
    t_round = onset(means["ticket"], dense)
    last = max(g.levels)
    reinit_ok = r_round is not None and abs(r_round - paper_reinit) <= ROUND_WINDOW
    # A ticket that is not below dense at the last level run is consistent with an onset after
    # it; count it as within the window only if the next round would be.
    t_effective = t_round if t_round is not None else last + 1
    ticket_ok = abs(t_effective - paper_ticket) <= ROUND_WINDOW

    def fmt(r: int | None) -> str:
        return "none within the levels run" if r is None else f"{g.levels[r]:.1f}% (round {r})"

    rows = []
    for stays in (True, False):
        for x in ONSET_READINGS:
            rule = f"{'stays' if stays else 'first'} below dense" + (f" - {x * 100:.1f} pts" if x else "")
            if stays and x == 0:
                rule += " (the verdict's reading)"
            rows.append(f"| {rule} | {fmt(onset(means['reinit'], dense, x, stays))} | "
                        f"{fmt(onset(means['ticket'], dense, x, stays))} |")
    notes = "\n".join([
        "Claim 5, the onsets under other readings of \"loses accuracy\" (the paper: 21.1% for reinit, "
        "2.9% for the ticket; \"stays\": the first level from which the mean is below the dense mean minus "
        "the threshold at every level down to the last one run; \"first\": the first level below it):",
        "",
        "| reading | reinit | ticket |",
        "|---|---|---|",
        *rows,
    ])
    return (
        f"reinit stays below the dense mean from {fmt(r_round)}, ticket from {fmt(t_round)}; "
        f"the paper's levels are rounds {paper_reinit} and {paper_ticket}",
        PASS if reinit_ok and ticket_ok else FAIL,
        notes,
    )


def _claim6(g: Grid, pruning: str) -> tuple[str, str]:
    if pruning != "oneshot":
        raise Missing("needs `pruning: oneshot`")
    dense = g.dense("early_stop_test_accuracy").mean()
    g.round_at(5.6)  # the lowest 20/20/10 level above 5.2 % must be reached
    diffs = [
        (pct, g.values("ticket", pct, "early_stop_test_accuracy").mean() - dense)
        for r, pct in g.ordered_levels()
        if r > 0 and 5.2 <= pct <= 95.0
    ]
    worst = min(diffs, key=lambda x: x[1])
    return (
        f"smallest mean one-shot ticket - dense gain over 95-5.2%: {worst[1] * 100:+.2f} pts at {worst[0]:.1f}%",
        PASS if all(d > 0 for _, d in diffs) else FAIL,
    )


CLAIMS: list[tuple[int, str, str, str, str, Callable]] = [
    (
        1,
        "Winning tickets at 21.1% of weights reach minimum validation loss earlier than the dense net",
        "about 38% earlier",
        "text, Section 2 (Figure 4a left)",
        "PASS if the mean early-stop iteration is below the dense net's",
        _claim1,
    ),
    (
        2,
        "Early-stop test accuracy is higher than the dense net's between 51.3% and 7.0% of weights, "
        "and more than 0.3 points higher at 13.5%",
        "higher over 51.3-7.0%; > +0.3 pts at 13.5%",
        "text, Section 2 (Figure 4a right)",
        "PASS if every mean over 51.3-7.0% is above the dense mean and the mean gain at 13.5% > 0.3 pts",
        _claim2,
    ),
    (
        3,
        "At 3.6% of weights the ticket's accuracy is back near the dense net's",
        "regresses to the original network's performance",
        "text, Section 2 (Figure 3)",
        "PASS if the mean ticket - dense difference at 3.6% is within +-0.3 pts (the dense net's trial-to-trial "
        "spread: our reading of 'the original network's performance') and the ticket's mean at 3.6% is more than 0.3 pts below its highest "
        "mean at a level above 3.6% (it came back down: the peak level itself fails this)",
        _claim3,
    ),
    (
        4,
        "Randomly reinitialised nets at 21.1% learn slower and are less accurate than the ticket",
        "2.51x later minimum validation loss, 0.5 pts less accurate",
        "text, Section 2 (Figure 4a)",
        "PASS if the mean reinit/ticket iteration ratio > 1 and the mean ticket - reinit accuracy > 0",
        _claim4,
    ),
    (
        5,
        "Reinitialised nets lose accuracy from about 21.1% of weights on, winning tickets only from about 2.9%",
        "reinit drops from 21.1%, tickets from 2.9%",
        "text, Section 2 (Figure 4a right)",
        "onset = the first level from which the mean stays below the dense mean down to the last level run (the "
        f"paper's 'drops off from the original accuracy'); PASS if each onset is within {ROUND_WINDOW} pruning rounds "
        "of the paper's level (a ticket still not below at the last level counts as the round after it); "
        "other readings in a table under this one",
        _claim5,
    ),
    (
        6,
        "One-shot tickets beat the dense net's test accuracy between about 95% and 5.2% of weights",
        "higher over 95-5.2% (one-shot)",
        "text, Section 2 'One-shot pruning' (Figure 4c)",
        "PASS if every mean one-shot ticket level in 95-5.2% is above the dense mean",
        None,
    ),
]


def evaluate_claims(summary: pd.DataFrame, pruning: str = "iterative") -> list[Verdict]:
    g = Grid(summary)
    out = []
    for claim_id, claim, paper, source, tolerance, fn in CLAIMS:
        try:
            if fn is not None and pruning != "iterative":  # claims 1-5 are about iterative pruning
                raise Missing("claims 1-5 need `pruning: iterative`")
            measured, verdict, *notes = fn(g) if fn is not None else _claim6(g, pruning)
        except Missing as why:
            measured, verdict, notes = f"not measured: {why}", NOT_RUN, []
        out.append(Verdict(claim_id, claim, paper, source, measured, tolerance, verdict, *notes))
    return out


def claims_table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([v.row() for v in verdicts])


def claims_markdown(verdicts: list[Verdict], config: dict | None = None) -> str:
    lines = [
        "# Claims of Frankle & Carbin (2019) about LeNet-300-100 on MNIST, checked",
        "",
        "Measured values: mean over trials, [min, max] over trials. NOT-RUN: the config does not",
        "reach the weight level or lacks the control the claim needs.",
        "",
    ]
    if config:
        keys = ("trials", "rounds", "iterations", "pruning", "controls", "reinit_per_ticket", "prune_scope", "rewind_iteration")
        lines += ["Config: " + ", ".join(f"`{k}={config[k]}`" for k in keys if k in config), ""]
    lines += ["| # | claim | paper (source) | measured | tolerance | verdict |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        cells = [str(v.claim_id), v.claim, f"{v.paper} ({v.source})", v.measured, v.tolerance, f"**{v.verdict}**"]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    counts = {k: sum(v.verdict == k for v in verdicts) for k in (PASS, FAIL, NOT_RUN)}
    lines += ["", f"{counts[PASS]} PASS, {counts[FAIL]} FAIL, {counts[NOT_RUN]} NOT-RUN.", ""]
    for v in verdicts:
        if v.notes:
            lines += [v.notes, ""]
    return "\n".join(lines)
