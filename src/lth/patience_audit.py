"""What ``leaf_patience`` would have changed in a finished full-length run, read from its curves.

    python3 -m lth.patience_audit FOLDER [FOLDER ...] [--patience 5 10 20 50] [--pruning iterative|oneshot]

FOLDER holds a run's ``curves.csv`` (one row per evaluation of every job, as the aggregate step and
``lth.summarize`` write it; ``curves.csv.gz`` in a study assembled by lth.shards) and, optionally,
its ``summary.csv`` (for the iterations each job ran, and the claims). The run must have trained
every iteration (``patience`` and ``leaf_patience`` null). For each patience p the command replays
the stopping rule of ``lth.training.train`` on every leaf job (``lth.lineage.is_leaf``: the
controls, one-shot tickets, the last round's iterative ticket; the last round is the folder's last):
stop at the p-th evaluation in a row without a new minimum validation loss, the early stop being the
minimum so far. It prints how many leaves' early-stop iteration and early-stop test accuracy would
differ from the full run's, the largest such difference, the iterations saved (absolute, as a
fraction of the leaves' iterations and of every job's), and with ``summary.csv`` which claims'
verdicts (``lth.claims``) would change. With several folders (a study's variants) it adds their
total, counting a dense run found in several of them (same keys, same curve: shared) once. Non-leaf
jobs are never stopped: their iterations count in the last column only.

The early-stop test accuracy of a stopped leaf is the one its curve holds at the new early stop,
which was a new minimum when it was measured, so ``test_eval: minima`` runs can be audited too.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .errors import LTHError
from .lineage import is_leaf

KEYS = ["experiment", "replicate", "trial", "round"]
DEFAULT_PATIENCES = (5, 10, 20, 50, 100)
CLAIM_COLUMNS = {"percent_remaining", "early_stop_iteration", "early_stop_test_accuracy"}


def stop_index(val_loss, patience: int) -> tuple[int, int]:
    """(index of the early-stop row, index of the row training stops at) for the validation
    losses of one job's evaluations, in order, under ``patience`` (``lth.training.train``'s rule:
    the early stop is the first minimum; stop once ``patience`` evaluations in a row set none)."""
    best = 0
    for i, loss in enumerate(val_loss):
        if loss < val_loss[best]:
            best = i
        if i - best >= patience:
            return best, i
    return best, len(val_loss) - 1


@dataclass
class Job:
    key: tuple
    leaf: bool
    iterations: int  # iterations the full run trained (summary's iterations_run, else the last row's)
    curve: pd.DataFrame  # its rows, in iteration order


def read_jobs(folder: Path, pruning: str) -> tuple[list[Job], pd.DataFrame | None]:
    path = folder / "curves.csv"
    if not path.is_file() and (folder / "curves.csv.gz").is_file():
        path = folder / "curves.csv.gz"  # an assembled study's (lth.shards)
    curves = pd.read_csv(path)
    missing = [c for c in [*KEYS, "iteration", "val_loss", "test_accuracy"] if c not in curves.columns]
    if missing:
        raise LTHError(f"{path} lacks the columns {missing}: not a curves.csv of this pipeline")
    summary = pd.read_csv(folder / "summary.csv") if (folder / "summary.csv").is_file() else None
    ran = {} if summary is None else {tuple(r[k] for k in KEYS): int(r["iterations_run"]) for _, r in summary.iterrows()}
    last_round = int(curves["round"].max())
    end = int(curves["iteration"].max())
    jobs = []
    for key, rows in curves.groupby(KEYS, sort=False):
        rows = rows.sort_values("iteration").reset_index(drop=True)
        if int(rows["iteration"].iloc[-1]) != end:
            raise LTHError(
                f"{folder}: job {dict(zip(KEYS, key))} ends at iteration {int(rows['iteration'].iloc[-1])}, "
                f"others at {end}: this command reads a run that trained every iteration (patience null)"
            )
        leaf = is_leaf(pruning, key[0], int(key[3]), last_round)
        jobs.append(Job(key, leaf, ran.get(key, end), rows))
    return jobs, summary


def replay(job: Job, patience: int) -> dict:
    """The leaf's early stop and savings under ``patience`` against its full run."""
    val = job.curve["val_loss"].to_numpy()
    full = int(np.argmin(val))  # the first minimum, as training picks it
    best, stop = stop_index(val, patience)
    it, acc = job.curve["iteration"].to_numpy(), job.curve["test_accuracy"].to_numpy()
    return {
        "best": best,
        "stop": stop,
        "iteration_changed": it[best] != it[full],
        "accuracy_changed": not (acc[best] == acc[full]),
        "accuracy_change": abs(acc[best] - acc[full]),
        "saved": int(it[-1] - it[stop]),
    }


def _stopped_summary(summary: pd.DataFrame, jobs: list[Job], patience: int) -> pd.DataFrame:
    """summary.csv as the run would have written it with leaf_patience = ``patience`` (the
    columns the claims read; final_train_accuracy is not in the curves and stays)."""
    out = summary.copy()
    index = {tuple(r[k] for k in KEYS): i for i, r in out.iterrows()}
    for job in jobs:
        if not job.leaf or job.key not in index:
            continue
        r = replay(job, patience)
        b, s, i = job.curve.iloc[r["best"]], job.curve.iloc[r["stop"]], index[job.key]
        out.loc[i, "early_stop_iteration"] = b["iteration"]
        out.loc[i, "early_stop_val_loss"] = b["val_loss"]
        out.loc[i, "early_stop_test_accuracy"] = b["test_accuracy"]
        if "val_accuracy" in b:
            out.loc[i, "early_stop_val_accuracy"] = b["val_accuracy"]
        out.loc[i, "final_iteration"] = s["iteration"]
        out.loc[i, "final_val_loss"] = s["val_loss"]
        out.loc[i, "final_test_accuracy"] = s["test_accuracy"]
        out.loc[i, "iterations_run"] = job.iterations - r["saved"]
    return out


def changed_claims(summary: pd.DataFrame | None, jobs: list[Job], patience: int, pruning: str) -> str:
    """The claims whose verdict the stopped leaves would change, as "3 (PASS -> FAIL)"; "none"."""
    if summary is None or not CLAIM_COLUMNS <= set(summary.columns):
        return "(no summary.csv)" if summary is None else "(summary.csv lacks the claims' columns)"
    from .claims import evaluate_claims

    before = {v.claim_id: v.verdict for v in evaluate_claims(summary, pruning)}
    after = {v.claim_id: v.verdict for v in evaluate_claims(_stopped_summary(summary, jobs, patience), pruning)}
    diff = [f"{c} ({before[c]} -> {after[c]})" for c in sorted(before) if before[c] != after[c]]
    return ", ".join(diff) or "none"


def audit_rows(jobs: list[Job], patiences) -> list[dict]:
    """One row per patience: leaves changed and iterations saved (``jobs`` counted as given)."""
    leaves = [j for j in jobs if j.leaf]
    leaf_iterations = sum(j.iterations for j in leaves)
    all_iterations = sum(j.iterations for j in jobs)
    rows = []
    for p in patiences:
        results = [replay(j, p) for j in leaves]
        changes = [r["accuracy_change"] for r in results if r["accuracy_changed"]]
        saved = sum(r["saved"] for r in results)
        rows.append({
            "patience": p,
            "leaves": len(leaves),
            "iteration_changed": sum(r["iteration_changed"] for r in results),
            "accuracy_changed": sum(r["accuracy_changed"] for r in results),
            "largest_change": max(changes) if changes else 0.0,
            "saved": saved,
            "of_leaves": saved / leaf_iterations if leaf_iterations else math.nan,
            "of_all": saved / all_iterations if all_iterations else math.nan,
        })
    return rows


def unique_jobs(groups: list[list[Job]]) -> list[Job]:
    """The jobs of several folders, each once: a study's variants share their dense runs, which
    appear in each variant's curves with the same keys and the same rows. (Pruned jobs of two
    variants are two jobs, under two pruning keys, even where their curves agree, as the round-1
    jobs of iterative and one-shot pruning do.)"""
    seen: dict[tuple, pd.DataFrame] = {}
    out = []
    for jobs in groups:
        for job in jobs:
            dense = int(job.key[3]) == 0
            if dense and job.key in seen and seen[job.key].equals(job.curve):
                continue
            if dense:
                seen.setdefault(job.key, job.curve)
            out.append(job)
    return out


def markdown(rows: list[dict], claims: list[str] | None = None) -> str:
    head = ("| patience | leaf jobs | early-stop iteration changed | early-stop test accuracy changed | "
            "largest change (points) | iterations saved | of the leaves' | of all jobs' |")
    lines = [head + (" claims changed |" if claims is not None else ""),
             "|" + "---|" * (8 + (claims is not None))]
    for i, r in enumerate(rows):
        line = (f"| {r['patience']} | {r['leaves']} | {r['iteration_changed']} | {r['accuracy_changed']} | "
                f"{100 * r['largest_change']:.2f} | {r['saved']:,} | {r['of_leaves']:.1%} | {r['of_all']:.1%} |")
        lines.append(line + (f" {claims[i]} |" if claims is not None else ""))
    return "\n".join(lines)


def folder_pruning(folder: Path) -> str | None:
    """iterative or oneshot, from a config.yaml in ``folder`` or, for a study variant's folder,
    from the study's config.yaml one level up (the variant's override, else the study's own)."""
    own = folder / "config.yaml"
    if own.is_file():
        return (yaml.safe_load(own.read_text()) or {}).get("pruning", "iterative")
    parent = folder.parent / "config.yaml"
    if parent.is_file():
        config = yaml.safe_load(parent.read_text()) or {}
        variants = (config.get("study") or {}).get("variants") or {}
        if folder.name in variants:
            return variants[folder.name].get("pruning", config.get("pruning", "iterative"))
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m lth.patience_audit", description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="folders holding a full-length run's curves.csv")
    ap.add_argument("--patience", type=int, nargs="+", default=list(DEFAULT_PATIENCES),
                    help=f"leaf_patience values to replay (default {' '.join(map(str, DEFAULT_PATIENCES))})")
    ap.add_argument("--pruning", choices=("iterative", "oneshot"),
                    help="the run's pruning (default: from config.yaml in the folder or its study's)")
    args = ap.parse_args(argv)
    if any(p < 1 for p in args.patience):
        raise SystemExit("error: --patience values must be positive integers")
    groups = []
    try:
        for folder in args.folders:
            pruning = args.pruning or folder_pruning(folder)
            if pruning is None:
                raise LTHError(f"{folder}: no config.yaml says how it was pruned; give --pruning iterative or oneshot")
            jobs, summary = read_jobs(folder, pruning)
            groups.append(jobs)
            claims = None if summary is None else [changed_claims(summary, jobs, p, pruning) for p in args.patience]
            print(f"## {folder} ({pruning}: {len(jobs)} jobs, {sum(j.leaf for j in jobs)} leaves)\n")
            print(markdown(audit_rows(jobs, args.patience), claims) + "\n")
        if len(groups) > 1:
            jobs = unique_jobs(groups)
            print(f"## together ({len(jobs)} jobs, each once, {sum(j.leaf for j in jobs)} leaves)\n")
            print(markdown(audit_rows(jobs, args.patience)) + "\n")
    except (LTHError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
