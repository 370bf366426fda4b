"""The design an evidence run needs: how many trials, reinitialisations per ticket and dense-only
seeds make every difference the claims test as narrow as a target, and what fits a budget.

    python3 -m lth.design SUMMARY [--oneshot SUMMARY] [--half-width 0.10] [--budget-s S]
        [--dense-s 229] [--ticket-s 229] [--reinit-s 229] [--oneshot-ticket-s 229] [--oneshot-reinits]
        [--reinits R] [--corrected] [--reinit-seed-share 1.0] [--every]

SUMMARY is a finished run's folder (its summary.csv) or the csv itself; a study's summary.csv
(with a ``pruning`` column, e.g. results/studies/oneshot_vs_iterative) gives both the iterative
and the one-shot variant, otherwise ``--oneshot`` names the one-shot run. From the run it takes,
for every difference a claim tests (the same levels and pairings as lth.claims), the standard
deviations of one value per trial, and computes the 95 % half-width of its interval under a
design of n trials, r reinitialisations per ticket and k dense-only seeds:

- against the dense net (Welch): t(df) * sqrt(var_a / n + var_dense / (n + k)), df by
  Welch-Satterthwaite, where a reinit's per-trial variance is var_between + var_seed / r;
- within a trial (paired): t(n - 1) * sqrt(var_diff / n), var_diff's reinit part divided by r.

A run with one reinitialisation per ticket cannot tell how much of a reinit's spread is its own
seed's (which more reinitialisations average away) and how much its trial's mask:
``--reinit-seed-share`` (default 1: each reinit run an independent sample, as the spread of the
same job on two CPUs suggests, issue 26) sets it; with two or more, the run's replicates measure
it. ``--corrected`` sizes each interval at its claim's Bonferroni level (what the verdicts use)
instead of 95 %.

It prints per claim the widest difference (``--every``: all of them) with the trials it needs
alone (the textbook size: the smallest n with t * sd / sqrt(n) <= h, the quantile at the
degrees of freedom of that n), the cheapest design that meets the target for every accuracy
difference, and, with ``--budget-s``, the design that minimises the widest half-width within the
budget. Per-job costs: seconds of CPU per dense job, ticket, reinit and one-shot ticket
(defaults 229 s each: the mean of the 365 jobs of the oneshot_vs_iterative run, docs/speed.md;
measure them on the machine and code of the run, e.g. with Snakemake's benchmark files).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .claims import ACC, IT, Missing, Trials, _quantile, bonferroni
from .errors import LTHError

MEAN_JOB_S = 229.0  # s of CPU per 50K-iteration job, the oneshot_vs_iterative run (83,607 s / 365)


@dataclass
class Difference:
    """One difference a claim tests, as variances of one value per trial (in its unit)."""

    claim: int
    label: str
    paired: bool
    unit: str  # pts (targeted), iterations or x (shown only)
    between: float  # per-trial variance that more reinitialisations do not average away
    seed: float  # variance of one reinitialisation's own part (0 without a reinit)
    dense: float  # variance of one dense run (unpaired differences)
    family: int  # the claim's number of intervals (Bonferroni)

    @property
    def targeted(self) -> bool:
        return self.unit == "pts"

    def half_width(self, n, r, k, confidence: float):
        """Half-width of the two-sided interval at ``confidence`` with n trials, r reinits per
        ticket and k dense-only seeds (numpy-broadcast over arrays of them)."""
        n, r, k = (np.asarray(x, dtype=float) for x in (n, r, k))
        v1 = (self.between + self.seed / r) / n
        if self.paired:
            se2, df = v1, n - 1
        else:
            v2 = self.dense / (n + k)
            se2 = v1 + v2
            with np.errstate(invalid="ignore", divide="ignore"):
                df = se2**2 / (v1**2 / (n - 1) + v2**2 / (n + k - 1))
        with np.errstate(invalid="ignore"):
            return np.where(se2 == 0, 0.0, _quantile(confidence, df) * np.sqrt(se2))

    def trials_needed(self, h: float, r: int, k: int, confidence: float, limit: int = 100_000) -> int | None:
        """The textbook size: the smallest n >= 2 whose half-width is at most h (None: none up to
        limit). The half-width falls as n grows, so: doubling, then bisection."""
        def fits(n: int) -> bool:
            return bool(self.half_width(n, r, k, confidence) <= h)

        high = 2
        while not fits(high):
            if high >= limit:
                return None
            high = min(2 * high, limit)
        low = high // 2 + 1 if high > 2 else 2  # fits(high // 2) is False (or high is 2)
        while low < high:
            mid = (low + high) // 2
            low, high = (low, mid) if fits(mid) else (mid + 1, high)
        return high


def textbook_n(sd: float, h: float, confidence: float = 0.95) -> int:
    """n = ceil((t_{(1+c)/2, n-1} * sd / h)^2), iterated from the normal quantile's n to its fixed
    point. Where the iteration does not settle (a few trials, where t changes fast with n: it can
    jump between 2 and 41), the smallest n whose interval is at most h, which the fixed point is
    wherever there is one."""
    n = max(2, math.ceil((_quantile(confidence, math.inf) * sd / h) ** 2))
    for _ in range(50):
        following = max(2, math.ceil((_quantile(confidence, n - 1) * sd / h) ** 2))
        if following == n:
            return n
        n = following
    return Difference(0, "", True, "pts", sd**2, 0.0, 0.0, 1).trials_needed(h, 1, 0, confidence)


# --- the differences of a run --------------------------------------------------------------------


def _var(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(np.var(x, ddof=1)) if x.size > 1 else float("nan")


def reinits_per_ticket(summary: pd.DataFrame) -> int:
    reinit = summary[summary["experiment"] == "reinit"]
    return int(reinit["replicate"].max()) + 1 if len(reinit) else 1


def replicate_variance(summary: pd.DataFrame) -> dict[int, float]:
    """round -> the variance of one reinitialisation about its trial's mean (points^2), pooled
    over the trials: what more reinitialisations per ticket average away."""
    reinit = summary[summary["experiment"] == "reinit"].assign(acc=lambda d: d[ACC] * 100)
    return {r: float(g.groupby("trial")["acc"].var(ddof=1).mean()) for r, g in reinit.groupby("round")}


class Run:
    """The per-trial values of a finished run (iterative, and one-shot if given)."""

    def __init__(self, iterative: pd.DataFrame | None, oneshot: pd.DataFrame | None, seed_share: float):
        if iterative is None and oneshot is None:
            raise LTHError("no summary to design from")
        self.it = Trials(iterative) if iterative is not None else None
        self.os = Trials(oneshot) if oneshot is not None else None
        first = iterative if iterative is not None else oneshot
        t = self.it or self.os
        self.n0, self.k0 = len(t.trials), t.n_seeds
        self.r0 = reinits_per_ticket(first)
        self.rounds = max(t.rounds) if self.it else 0
        self.os_rounds = max(self.os.rounds) if self.os else 0
        self.seed_share = seed_share
        # the run's own training jobs (the variants share their dense runs)
        keys = ["experiment", "replicate", "trial", "round"]
        parts = [p for p in (iterative, oneshot) if p is not None]
        dense = pd.concat([p[p["round"] == 0][keys] for p in parts]).drop_duplicates()
        self.jobs = len(dense) + sum(int((p["round"] > 0).sum()) for p in parts)
        self.seed_var = {}
        if iterative is not None and self.r0 >= 2:
            self.seed_var = replicate_variance(iterative)
        self.dense_var = _var(t.dense(ACC))
        self.notes: list[str] = []

    def _reinit_split(self, t: Trials, r: int) -> tuple[float, float]:
        """(between, seed) variance of the reinit at round r, per trial of r0 replicates."""
        total = _var(t.at("reinit", [r])[:, 0])
        if self.r0 >= 2:
            seed = self.seed_var[r]
            return max(0.0, total - seed / self.r0), seed
        return (1 - self.seed_share) * total, self.seed_share * total

    def vs_dense(self, claim, t, experiment, rounds, family, name=None):
        out = []
        for r in rounds:
            if experiment == "reinit":
                between, seed = self._reinit_split(t, r)
            else:
                between, seed = _var(t.at(experiment, [r])[:, 0]), 0.0
            out.append(Difference(claim, f"{name or experiment} - dense at {t.levels[r]:.1f}%", False, "pts",
                                  between, seed, self.dense_var, family))
        return out

    def differences(self) -> list[Difference]:
        diffs: list[Difference] = []
        t = self.it
        if t is not None:
            for claim, build in ((1, self._claim1), (2, self._claim2), (3, self._claim3), (4, self._claim4),
                                 (5, self._claim5)):
                try:
                    diffs += build(t)
                except Missing as why:
                    self.notes.append(f"claim {claim}: not designed ({why})")
        if self.os is not None:
            try:
                diffs += self._claim6(self.os)
            except Missing as why:
                self.notes.append(f"claim 6: not designed ({why})")
        return diffs

    def _claim1(self, t):
        r = t.round_at(21.1)
        return [Difference(1, "ticket - dense early-stop iteration at 21.1%", False, "iterations",
                           _var(t.at("ticket", [r], IT)[:, 0]), 0.0, _var(t.dense(IT)), 1)]

    def _claim2(self, t):
        lo, hi = t.round_at(51.3), t.round_at(7.0)
        rounds = [r for r in t.pruned_rounds() if lo <= r <= hi]
        t.round_at(13.5)
        return self.vs_dense(2, t, "ticket", rounds, len(rounds))

    def _claim3(self, t):
        r36, r135 = t.round_at(3.6), t.round_at(13.5)
        pair = t.at("ticket", [r135, r36])
        return [*self.vs_dense(3, t, "ticket", [r36], 2),
                Difference(3, "ticket at 13.5% - at 3.6%", True, "pts", _var(pair[:, 0] - pair[:, 1]), 0.0, 0.0, 2)]

    def _claim4(self, t):
        r = t.round_at(21.1)
        ratio = t.at("reinit", [r], IT)[:, 0] / t.at("ticket", [r], IT)[:, 0]
        gap = t.at("ticket", [r])[:, 0] - t.at("reinit", [r])[:, 0]
        seed = self._reinit_split(t, r)[1]
        # the paired difference's variance with r0 reinits: (the rest) + seed / r0; more reinits
        # divide the seed part only
        between = max(0.0, _var(gap) - seed / self.r0)
        return [Difference(4, "reinit / ticket early-stop iteration at 21.1%", True, "x", _var(ratio), 0.0, 0.0, 2),
                Difference(4, "ticket - reinit at 21.1%", True, "pts", between, seed, 0.0, 2)]

    def _claim5(self, t):
        t.round_at(21.1)
        t.round_at(2.9)
        rounds = t.pruned_rounds()
        return [*self.vs_dense(5, t, "reinit", rounds, 2 * len(rounds)),
                *self.vs_dense(5, t, "ticket", rounds, 2 * len(rounds))]

    def _claim6(self, t):
        t.round_at(5.6)
        rounds = [r for r in t.pruned_rounds() if 5.2 <= t.levels[r] <= 95.0]
        return self.vs_dense(6, t, "ticket", rounds, len(rounds), name="one-shot ticket")


# --- costs and the search ------------------------------------------------------------------------


@dataclass
class Costs:
    dense: float = MEAN_JOB_S
    ticket: float = MEAN_JOB_S
    reinit: float = MEAN_JOB_S
    oneshot_ticket: float = MEAN_JOB_S
    oneshot_reinits: bool = False  # whether the one-shot variant runs the reinit control too

    def jobs(self, run: Run, n, r, k):
        """Training jobs of the design (numpy-broadcast)."""
        per_trial = 1 + run.rounds * (1 + r) + run.os_rounds * (1 + (r if self.oneshot_reinits else 0))
        return n * per_trial + k

    def seconds(self, run: Run, n, r, k):
        os_reinit = run.os_rounds * r * self.reinit if self.oneshot_reinits else 0
        per_trial = (self.dense + run.rounds * (self.ticket + r * self.reinit) + run.os_rounds * self.oneshot_ticket
                     + os_reinit)
        return n * per_trial + k * self.dense


@dataclass
class Design:
    n: int
    r: int
    k: int
    widest: float
    widest_label: str
    seconds: float
    jobs: int


def search(diffs: list[Difference], run: Run, costs: Costs, confidence_of, h: float, budget: float | None,
           max_trials: int = 60, max_reinits: int = 6, max_dense_seeds: int = 200, reinits: int | None = None):
    """(the cheapest design whose widest targeted half-width is <= h, the design with the
    smallest widest half-width within ``budget``): each a Design or None, over the grid of
    n in 2..max_trials, r in 1..max_reinits (only ``reinits`` if given; 1 without a reinit
    control), k in 0..max_dense_seeds."""
    targeted = [d for d in diffs if d.targeted]
    if not targeted:
        return None, None
    has_reinit = any("reinit" in d.label for d in targeted)
    r_values = [reinits] if reinits else range(1, (max_reinits if has_reinit else 1) + 1)
    n, r, k = np.meshgrid(np.arange(2, max_trials + 1), np.asarray(r_values), np.arange(0, max_dense_seeds + 1),
                          indexing="ij")
    widest = np.zeros(n.shape)
    which = np.zeros(n.shape, dtype=int)
    for i, d in enumerate(targeted):
        hw = d.half_width(n, r, k, confidence_of(d))
        which = np.where(hw > widest, i, which)
        widest = np.maximum(widest, hw)
    cost = costs.seconds(run, n, r, k)

    def pick(mask, key1, key2):
        if not mask.any():
            return None
        idx = np.lexsort((key2[mask], key1[mask]))[0]
        at = tuple(a[mask][idx] for a in (n, r, k))
        flat = np.flatnonzero(mask)[idx]
        return Design(int(at[0]), int(at[1]), int(at[2]), float(widest.flat[flat]), targeted[which.flat[flat]].label,
                      float(cost.flat[flat]), int(costs.jobs(run, *at)))

    cheapest = pick(widest <= h, cost, widest)
    best = pick(cost <= budget, widest, cost) if budget is not None else None
    return cheapest, best


# --- the report ----------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if unit == "pts":
        return f"{value:.2f}"
    return f"{value:.0f}" if unit == "iterations" else f"{value:.2f}"


def report(run: Run, costs: Costs, h: float, budget: float | None, corrected: bool = False, every: bool = False,
           source: str = "", **limits) -> str:
    diffs = run.differences()
    if not diffs:
        raise LTHError("the summary reaches no level any claim tests")

    def confidence_of(d: Difference) -> float:
        return bonferroni(d.family) if corrected else 0.95

    level = "each claim's Bonferroni level" if corrected else "95 %"
    lines = [
        f"# Design for a half-width of {h:.2f} points ({level}, every accuracy difference a claim tests)",
        "",
        f"From {source}: {run.n0} trials, {run.r0} reinit(s) per ticket, {run.k0} dense-only seeds, "
        f"{run.rounds} iterative rounds, {run.os_rounds} one-shot rounds; dense runs' sd {math.sqrt(run.dense_var):.3f} "
        "points.",
        "Reinit spread: " + ("measured from the run's replicates" if run.r0 >= 2 else
                             f"share {run.seed_share:.2f} from each reinit's own seed (not separable with one reinit "
                             "per ticket; --reinit-seed-share)") + ".",
        "",
        f"Per claim, {'every difference' if every else 'the widest difference'} (sd of one value per trial; "
        "half-width now: at the run's design; trials needed: the textbook size, the smallest n whose "
        f"half-width is <= {h:.2f} at {run.r0} reinit(s) per ticket and no dense-only seeds; t with n - 1 "
        "degrees of freedom paired, Welch's against the dense runs):",
        "",
        "| claim | difference | kind | sd per trial | confidence | half-width now | trials needed |",
        "|---|---|---|---|---|---|---|",
    ]
    shown = diffs if every else []
    if not every:
        for claim in sorted({d.claim for d in diffs}):
            for targeted in (True, False):
                group = [d for d in diffs if d.claim == claim and d.targeted == targeted]
                if group:
                    shown.append(max(group, key=lambda d: float(d.half_width(run.n0, run.r0, run.k0,
                                                                             confidence_of(d)))))
    for d in shown:
        c = confidence_of(d)
        now = float(d.half_width(run.n0, run.r0, run.k0, c))
        sd = math.sqrt(d.between + d.seed / run.r0)
        need = d.trials_needed(h, run.r0, 0, c) if d.targeted else None
        lines.append(f"| {d.claim} | {d.label} | {'paired' if d.paired else 'Welch'} | {_fmt(sd, d.unit)} {d.unit} "
                     f"| {100 * c:.2f} % | {_fmt(now, d.unit)} {d.unit} | "
                     f"{need if need is not None else ('-' if not d.targeted else '> 100000')} |")
    lines.append("")
    lines += [f"- {note}" for note in run.notes]
    cheapest, best = search(diffs, run, costs, confidence_of, h, budget, **limits)
    per_job = (f"dense {costs.dense:.0f} s, ticket {costs.ticket:.0f} s, reinit {costs.reinit:.0f} s, one-shot ticket "
               f"{costs.oneshot_ticket:.0f} s" + (", one-shot reinits included" if costs.oneshot_reinits else
                                                  ", no one-shot reinits"))
    now_cost = costs.seconds(run, run.n0, run.r0, run.k0)
    lines += [f"Costs per job: {per_job}; the run's design at these costs: {costs.jobs(run, run.n0, run.r0, run.k0)} "
              f"jobs, {now_cost:,.0f} s (the run itself: {run.jobs} training jobs).", ""]

    def describe(d: Design) -> str:
        share = f" ({d.seconds / budget:.2f} of the budget)" if budget else ""
        return (f"**{d.n} trials, {d.r} reinit(s) per ticket, {d.k} dense-only seeds**: {d.jobs} training jobs, "
                f"{d.seconds:,.0f} s of CPU{share}; widest half-width {d.widest:.3f} points ({d.widest_label})")

    lim = limits or {}
    if lim.get("reinits"):
        lines.append(f"Reinits per ticket fixed at {lim['reinits']} (--reinits).")
    if cheapest:
        lines.append(f"Cheapest design with every half-width <= {h:.2f}: {describe(cheapest)}.")
    else:
        lines.append(f"No design with n <= {lim.get('max_trials', 60)}, r <= {lim.get('max_reinits', 6)}, "
                     f"k <= {lim.get('max_dense_seeds', 200)} meets {h:.2f}.")
    if budget is not None:
        if best is None:
            lines.append(f"Within the budget of {budget:,.0f} s: no design (2 trials cost more).")
        else:
            fits = "meets the target" if best.widest <= h else "does not meet the target"
            lines.append(f"Within the budget of {budget:,.0f} s, the smallest widest half-width: {describe(best)}: "
                         f"{fits}.")
    return "\n".join(lines) + "\n"


def _read(path: str) -> pd.DataFrame:
    p = Path(path)
    p = p / "summary.csv" if p.is_dir() else p
    if not p.is_file():
        raise LTHError(f"{path}: no summary.csv")
    return pd.read_csv(p)


def split_study(summary: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(iterative, one-shot) rows of a study's summary (its ``pruning`` column); a plain summary
    is the iterative run."""
    if "pruning" not in summary.columns:
        return summary, None
    drop = [c for c in ("variant", "pruning") if c in summary.columns]
    parts = {p: summary[summary["pruning"] == p].drop(columns=drop).reset_index(drop=True) for p in ("iterative",
                                                                                                   "oneshot")}
    return tuple(part if len(part) else None for part in (parts["iterative"], parts["oneshot"]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summary", help="a run's folder (summary.csv) or a study's")
    parser.add_argument("--oneshot", default=None, help="the one-shot run's folder (unless SUMMARY is a study's)")
    parser.add_argument("--half-width", type=float, default=0.10, help="target half-width in points (0.10)")
    parser.add_argument("--budget-s", type=float, default=None, help="seconds of CPU the run may take")
    for name, what in (("dense", "dense job"), ("ticket", "ticket"), ("reinit", "reinit"),
                       ("oneshot-ticket", "one-shot ticket")):
        parser.add_argument(f"--{name}-s", type=float, default=MEAN_JOB_S, help=f"s per {what} ({MEAN_JOB_S:.0f})")
    parser.add_argument("--oneshot-reinits", action="store_true", help="the one-shot variant runs reinits too")
    parser.add_argument("--corrected", action="store_true", help="size at each claim's Bonferroni level, not 95 %%")
    parser.add_argument("--reinit-seed-share", type=float, default=1.0,
                        help="with one reinit per ticket: the share of a reinit's spread from its own seed (1)")
    parser.add_argument("--every", action="store_true", help="print every difference, not the widest per claim")
    parser.add_argument("--reinits", type=int, default=None, help="fix the reinits per ticket (the paper: 3)")
    parser.add_argument("--max-trials", type=int, default=60)
    parser.add_argument("--max-reinits", type=int, default=6)
    parser.add_argument("--max-dense-seeds", type=int, default=200)
    args = parser.parse_args(argv)
    try:
        if not 0 <= args.reinit_seed_share <= 1 or args.half_width <= 0:
            raise LTHError("--reinit-seed-share must be in [0, 1] and --half-width > 0")
        iterative, oneshot = split_study(_read(args.summary))
        if args.oneshot:
            oneshot = _read(args.oneshot)
        run = Run(iterative, oneshot, args.reinit_seed_share)
        costs = Costs(args.dense_s, args.ticket_s, args.reinit_s, args.oneshot_ticket_s, args.oneshot_reinits)
        text = report(run, costs, args.half_width, args.budget_s, args.corrected, args.every,
                      source=" and ".join(filter(None, [args.summary, args.oneshot])), max_trials=args.max_trials,
                      max_reinits=args.max_reinits, max_dense_seeds=args.max_dense_seeds, reinits=args.reinits)
    except LTHError as err:
        raise SystemExit(f"error: {err}") from None
    print(text, end="")


if __name__ == "__main__":
    main()
