"""Tables, claims and figures from whatever training jobs of a run directory have finished.

    python3 -m lth.summarize RUN_DIR OUT_DIR [--lineage dense_<hash>/prune_<hash>] [--pruning iterative|oneshot]
    python3 -m lth.summarize --rescore OUT_DIR [--pruning iterative|oneshot]

Writes summary.csv, curves.csv, claims.csv, claims.md, results.md (the summary as a readable
table: mean [min, max] over trials per experiment and round) and plots/*.png into OUT_DIR.
``--rescore`` remakes only claims.csv and claims.md of a folder that holds a summary.csv (a
committed result, after the claims' rules changed), labelled as scored after the fact; a study's
folder (its summary.csv has a ``variant`` column, its config.yaml the study) is re-scored over its
variants as the workflow's study_aggregate scores it.

The workflow's aggregate and plot rules need the whole grid; this looks at a run in progress
(e.g. the paper profile after some hours) or copies a finished run's small outputs elsewhere.
Claims whose sparsity levels have not been reached yet are NOT-RUN. A run directory that holds
several lineages (variants, see ``python3 -m lth.store list``) needs ``--lineage``: the pruning
lineage (``prune_<hash>`` or ``dense_<hash>/prune_<hash>``), or a dense one for the dense runs only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from .aggregate import EXPERIMENT_ORDER, build_tables, per_trial_means, write_csv
from .claims import SCORED_AFTER_THE_FACT, claims_markdown, claims_table, evaluate_claims, mean_min_max
from .errors import LTHError
from .fileio import write_text
from .lineage import RUNS, resolve_key
from .plots import plot_figures


def find_lineage(run_dir: str | Path, lineage: str | None = None) -> tuple[str, str | None]:
    """(dense key, prune key or None) of the lineage to summarise: the one given (a prune key
    alone is found under its dense key), or the only one the run directory holds."""
    runs = Path(run_dir) / RUNS
    if lineage:
        try:
            return resolve_key(run_dir, lineage)
        except LTHError as err:
            raise SystemExit(str(err)) from None
    pruned = sorted(f"{p.parent.name}/{p.name}" for p in runs.glob("dense_*/prune_*") if p.is_dir())
    if len(pruned) == 1:
        return find_lineage(run_dir, pruned[0])
    dense = sorted(p.name for p in runs.glob("dense_*") if p.is_dir())
    if not pruned and len(dense) == 1:
        return dense[0], None
    if not dense:
        raise SystemExit(f"no training jobs under {runs}")
    raise SystemExit(f"{run_dir} holds several lineages ({', '.join(pruned or dense)}): choose one with --lineage "
                     "(`python3 -m lth.store list` shows their settings)")


def pruning_trials(jobs: list[Path]) -> int | None:
    """How many trials start a pruning chain, from the finished jobs' paths: one more than the
    highest trial with a pruned job (dense-only seeds are numbered after the pruning trials; see
    lth.aggregate.flag_dense_only). None where no job is pruned (a dense lineage alone)."""
    pruned = [int(p.parents[2].name.removeprefix("trial_")) for p in jobs if p.parents[1].name.startswith("round_")]
    return max(pruned) + 1 if pruned else None


def finished_jobs(run_dir: str | Path, lineage: str | None = None) -> list[Path]:
    """result.json of every finished training job of one lineage (written last, atomically, by
    each job): its dense runs and the pruned rounds with their controls."""
    dense, prune = find_lineage(run_dir, lineage)
    base = Path(run_dir) / RUNS / dense
    jobs = sorted(base.glob("trial_*/dense/result.json"))
    if prune:
        jobs += sorted((base / prune).glob("trial_*/round_*/*/result.json"))
    return jobs


def results_markdown(summary: pd.DataFrame) -> str:
    """One row per (experiment, round): mean [min, max] over trials of the early-stop test
    accuracy, the early-stop iteration and the final training accuracy. Replicates of a control
    are averaged within their trial first, so every trial counts once (as in the claims)."""
    columns = ["early_stop_test_accuracy", "early_stop_iteration", "final_train_accuracy", "percent_remaining"]
    per_trial = per_trial_means(summary, columns)
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


def summarize(run_dir: str | Path, out_dir: str | Path, pruning: str = "iterative", lineage: str | None = None,
              curves_name: str = "curves.csv", note: str | None = None) -> pd.DataFrame:
    """The run's tables, claims and figures in ``out_dir``; ``curves_name`` ending in .gz writes the
    curves gzip-compressed (a large study's: one row per evaluation of every job); ``note`` goes
    under the title of claims.md (an assembled study's: which rules scored it)."""
    results = finished_jobs(run_dir, lineage)
    if not results:
        raise SystemExit(f"no finished training jobs under {run_dir}/{RUNS}")
    out = Path(out_dir)
    summary, curves = build_tables(results, [p.with_name("curve.csv") for p in results], pruning_trials(results))
    write_csv(summary, out / "summary.csv")
    write_csv(curves, out / curves_name)
    verdicts = evaluate_claims(summary, pruning)
    write_csv(claims_table(verdicts), out / "claims.csv")
    write_text(out / "claims.md", claims_markdown(verdicts, note=note))
    write_text(out / "results.md", results_markdown(summary))
    plots = out / "plots"
    plot_figures(summary, curves, accuracy=plots / "accuracy.png", early_stop=plots / "early_stop.png",
                 train_accuracy=plots / "train_accuracy.png", curves_png=plots / "curves.png")
    return summary


def rescore(out_dir: str | Path, pruning: str | None = None) -> list:
    """claims.csv and claims.md of ``out_dir`` remade from its summary.csv under the current
    rules, labelled as scored after the fact; a study's folder over its variants. The pruning:
    ``pruning``, else the folder's config.yaml's (the run's effective config), else iterative."""
    out = Path(out_dir)
    if not (out / "summary.csv").is_file():
        raise SystemExit(f"{out} has no summary.csv to re-score")
    summary = pd.read_csv(out / "summary.csv")
    if "variant" in summary.columns:
        from .studies import rescore_study

        verdicts, text = rescore_study(summary, out / "config.yaml", note=SCORED_AFTER_THE_FACT)
    else:
        config = yaml.safe_load((out / "config.yaml").read_text()) if (out / "config.yaml").is_file() else None
        pruning = pruning or (config or {}).get("pruning", "iterative")
        verdicts = evaluate_claims(summary, pruning)
        text = claims_markdown(verdicts, config, note=SCORED_AFTER_THE_FACT)
    write_csv(claims_table(verdicts), out / "claims.csv")
    write_text(out / "claims.md", text)
    return verdicts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="the run directory (not with --rescore)")
    parser.add_argument("out_dir")
    parser.add_argument("--pruning", default=None, choices=["iterative", "oneshot"],
                        help="iterative (default; with --rescore: the folder's config.yaml's)")
    parser.add_argument("--lineage", default=None, help="dense_<hash>/prune_<hash> (or prune_<hash>)")
    parser.add_argument("--rescore", action="store_true",
                        help="remake OUT_DIR's claims from its summary.csv (labelled as scored after the fact)")
    args = parser.parse_args(argv)
    if args.rescore:
        if args.run_dir is not None:
            parser.error("--rescore takes OUT_DIR only")
        verdicts = rescore(args.out_dir, args.pruning)
        print(f"{args.out_dir}: " + ", ".join(f"{v.claim_id}:{v.verdict}" for v in verdicts))
        return
    if args.run_dir is None:
        parser.error("RUN_DIR and OUT_DIR are needed (or --rescore OUT_DIR)")
    summary = summarize(args.run_dir, args.out_dir, args.pruning or "iterative", args.lineage)
    print(f"{len(summary)} finished training jobs summarised into {args.out_dir}")


if __name__ == "__main__":
    main()
