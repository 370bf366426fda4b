"""Tables, claims and figures from whatever training jobs of a run directory have finished.

    python3 -m lth.summarize RUN_DIR OUT_DIR [--pruning iterative|oneshot]

Writes summary.csv, curves.csv, claims.csv, claims.md, results.md (the summary as a readable
table: mean [min, max] over trials per experiment and round) and plots/*.png into OUT_DIR.

The workflow's aggregate and plot rules need the whole grid; this looks at a run in progress
(e.g. the paper profile after some hours) or copies a finished run's small outputs elsewhere.
Claims whose sparsity levels have not been reached yet are NOT-RUN.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .aggregate import EXPERIMENT_ORDER, build_tables, write_csv
from .claims import claims_markdown, claims_table, evaluate_claims, mean_min_max
from .fileio import write_text
from .plots import plot_figures


def finished_jobs(run_dir: str | Path) -> list[Path]:
    """result.json of every finished training job (written last, atomically, by each job)."""
    return sorted(Path(run_dir).glob("results/trial_*/*/round_*/result.json"))


def results_markdown(summary: pd.DataFrame) -> str:
    """One row per (experiment, round): mean [min, max] over trials of the early-stop test
    accuracy, the early-stop iteration and the final training accuracy. Replicates of a control
    are averaged within their trial first, so every trial counts once (as in the claims)."""
    columns = ["early_stop_test_accuracy", "early_stop_iteration", "final_train_accuracy", "percent_remaining"]
    per_trial = summary.groupby(["experiment", "round", "trial"], as_index=False)[columns].mean()
    lines = [
        "| experiment | round | weights remaining | test accuracy at early stop (%) | early-stop iteration "
        "| train accuracy at the end (%) | trials |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted(per_trial.groupby(["experiment", "round"]).groups, key=lambda k: (EXPERIMENT_ORDER.get(k[0], 9), k))
    for experiment, round_ in keys:
        g = per_trial[(per_trial.experiment == experiment) & (per_trial["round"] == round_)]
        lines.append(
            f"| {experiment} | {round_} | {g.percent_remaining.mean():.1f}% "
            f"| {mean_min_max(g.early_stop_test_accuracy, 100, digits=2)} "
            f"| {mean_min_max(g.early_stop_iteration, 1, digits=0)} "
            f"| {mean_min_max(g.final_train_accuracy, 100, digits=2)} | {len(g)} |"
        )
    return "\n".join(lines) + "\n"


def summarize(run_dir: str | Path, out_dir: str | Path, pruning: str = "iterative") -> pd.DataFrame:
    results = finished_jobs(run_dir)
    if not results:
        raise SystemExit(f"no finished training jobs under {run_dir}/results")
    out = Path(out_dir)
    summary, curves = build_tables(results, [p.with_name("curve.csv") for p in results])
    write_csv(summary, out / "summary.csv")
    write_csv(curves, out / "curves.csv")
    verdicts = evaluate_claims(summary, pruning)
    write_csv(claims_table(verdicts), out / "claims.csv")
    write_text(out / "claims.md", claims_markdown(verdicts))
    write_text(out / "results.md", results_markdown(summary))
    plots = out / "plots"
    plot_figures(summary, curves, accuracy=plots / "accuracy.png", early_stop=plots / "early_stop.png",
                 train_accuracy=plots / "train_accuracy.png", curves_png=plots / "curves.png")
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--pruning", default="iterative", choices=["iterative", "oneshot"])
    args = parser.parse_args(argv)
    summary = summarize(args.run_dir, args.out_dir, args.pruning)
    print(f"{len(summary)} finished training jobs summarised into {args.out_dir}")


if __name__ == "__main__":
    main()
