"""Two runs of one protocol side by side: per-level means, their differences, the claims' verdicts,
and how many training jobs agree bit for bit.

    python3 -m lth.compare A_DIR B_DIR [--names A B] [--out FILE.md]

A_DIR and B_DIR hold a summary.csv (and, if present, a claims.csv) as ``lth.summarize`` writes
them. Two machines whose CPUs round differently, or two kernels, give two numerical realisations
of the same configuration (docs/method.md, Determinism); this shows how far apart they are.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .aggregate import EXPERIMENT_ORDER, KEYS, per_trial_means
from .errors import LTHError
from .fileio import write_text

# The columns that must agree exactly for two jobs to count as the same bits.
EXACT = ["early_stop_iteration", "early_stop_val_loss", "early_stop_test_accuracy", "final_val_loss",
         "final_test_accuracy", "final_train_accuracy"]
LEVEL_TOLERANCE = 0.001  # relative: the same round must prune to the same percent of weights


def level_means(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, round): percent remaining and the means over trials of the early-stop test
    accuracy and iteration (a control's replicates averaged within their trial first, so every
    trial counts once, as in the claims)."""
    columns = ["percent_remaining", "early_stop_test_accuracy", "early_stop_iteration"]
    per_trial = per_trial_means(summary, columns)
    means = per_trial.groupby(["experiment", "round"], as_index=False).agg(
        percent_remaining=("percent_remaining", "mean"),
        accuracy=("early_stop_test_accuracy", "mean"),
        iteration=("early_stop_iteration", "mean"),
        trials=("trial", "nunique"),
    )
    return means


def identical_jobs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, round): how many jobs both runs have, and how many of them agree exactly
    in every column of EXACT."""
    both = a.merge(b, on=KEYS, suffixes=("_a", "_b"))
    same = pd.Series(True, index=both.index)
    for col in EXACT:
        same &= both[f"{col}_a"] == both[f"{col}_b"]
    return (both.assign(same=same).groupby(["experiment", "round"], as_index=False)
            .agg(jobs=("same", "size"), identical=("same", "sum")))


def compare_summaries(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, round) that both runs have: their level means and B - A (accuracy
    in points). Refuses runs whose rounds prune to different levels (another protocol)."""
    ma, mb = level_means(a), level_means(b)
    table = ma.merge(mb, on=["experiment", "round"], suffixes=("_a", "_b"))
    order = table.experiment.map(EXPERIMENT_ORDER)
    table = table.assign(_o=order).sort_values(["_o", "round"]).drop(columns="_o").reset_index(drop=True)
    if table.empty:
        raise LTHError("the two summaries have no (experiment, round) in common")
    off = (table.percent_remaining_a - table.percent_remaining_b).abs() > LEVEL_TOLERANCE * table.percent_remaining_a
    if off.any():
        r = table[off].iloc[0]
        raise LTHError(f"round {r['round']} of {r.experiment} keeps {r.percent_remaining_a:.2f}% of the weights in one "
                       f"run and {r.percent_remaining_b:.2f}% in the other: not the same protocol")
    table["accuracy_diff_points"] = (table.accuracy_b - table.accuracy_a) * 100
    return table.merge(identical_jobs(a, b), on=["experiment", "round"], how="left")


def compare_claims(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """claim_id, the claim, and each run's measured value and verdict."""
    cols = ["claim_id", "measured", "verdict"]
    return a[["claim_id", "claim", "measured", "verdict"]].merge(b[cols], on="claim_id", suffixes=("_a", "_b"))


def compare_markdown(table: pd.DataFrame, claims: pd.DataFrame | None, names: tuple[str, str]) -> str:
    na, nb = names
    diffs = table.accuracy_diff_points
    lines = [
        f"# {na} and {nb}: two runs of one protocol",
        "",
        f"Jobs in both: {int(table.jobs.sum())}; bit-identical (every early-stop and final metric equal): "
        f"{int(table.identical.sum())}. Mean test accuracy at early stop per level, {nb} − {na}: "
        f"mean |difference| {diffs.abs().mean():.2f} points, largest {diffs.abs().max():.2f} points "
        f"({table.experiment[diffs.abs().idxmax()]}, round {table['round'][diffs.abs().idxmax()]}).",
        "",
    ]
    if claims is not None:
        lines += [f"| claim | {na} | {nb} |", "|---|---|---|"]
        for _, c in claims.iterrows():
            lines.append(f"| {c.claim_id} | {c.verdict_a}: {c.measured_a} | {c.verdict_b}: {c.measured_b} |")
        lines.append("")
    lines += [
        f"| experiment | round | weights remaining | test accuracy {na} (%) | test accuracy {nb} (%) | {nb} − {na} "
        f"(points) | early-stop iteration {na} | {nb} | trials | identical jobs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r.experiment} | {r['round']} | {r.percent_remaining_a:.1f}% | {100 * r.accuracy_a:.2f} | "
            f"{100 * r.accuracy_b:.2f} | {r.accuracy_diff_points:+.2f} | {r.iteration_a:.0f} | {r.iteration_b:.0f} | "
            f"{min(r.trials_a, r.trials_b)} | {r.identical} of {r.jobs} |"
        )
    return "\n".join(lines) + "\n"


def compare_dirs(a_dir: str | Path, b_dir: str | Path, names: tuple[str, str] | None = None) -> str:
    a_dir, b_dir = Path(a_dir), Path(b_dir)
    names = names or (a_dir.name, b_dir.name)
    for d in (a_dir, b_dir):
        if not (d / "summary.csv").is_file():
            raise LTHError(f"{d} has no summary.csv (make one with python3 -m lth.summarize RUN_DIR {d})")
    table = compare_summaries(pd.read_csv(a_dir / "summary.csv"), pd.read_csv(b_dir / "summary.csv"))
    claims = None
    if (a_dir / "claims.csv").is_file() and (b_dir / "claims.csv").is_file():
        claims = compare_claims(pd.read_csv(a_dir / "claims.csv"), pd.read_csv(b_dir / "claims.csv"))
    return compare_markdown(table, claims, names)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a_dir")
    parser.add_argument("b_dir")
    parser.add_argument("--names", nargs=2, default=None, metavar=("A", "B"))
    parser.add_argument("--out", default=None, help="write the markdown here instead of printing it")
    args = parser.parse_args(argv)
    try:
        text = compare_dirs(args.a_dir, args.b_dir, tuple(args.names) if args.names else None)
    except LTHError as err:
        raise SystemExit(f"error: {err}") from None
    if args.out:
        write_text(args.out, text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
