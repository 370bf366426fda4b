"""Tables: one row per training job (summary) and one per evaluation (curves)."""

from __future__ import annotations

import gzip
import os

import pandas as pd

from .errors import LTHError
from .experiment import read_result
from .fileio import atomic_path

EXPERIMENT_ORDER = {"ticket": 0, "reinit": 1, "random_pruning": 2}
SUMMARY_COLUMNS = [
    "experiment",
    "replicate",
    "trial",
    "round",
    "percent_remaining",
    "early_stop_iteration",
    "early_stop_val_loss",
    "early_stop_val_accuracy",
    "early_stop_test_accuracy",
    "final_iteration",
    "final_val_loss",
    "final_test_accuracy",
    "final_train_accuracy",
    "iterations_run",
]
KEYS = ["experiment", "replicate", "trial", "round"]


def _sort(df: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    order = df["experiment"].map(EXPERIMENT_ORDER)
    return (
        df.assign(_order=order)
        .sort_values(["_order", "replicate", "trial", "round", *(extra or [])], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _summary(rows: list[dict], pruning_trials: int | None = None) -> pd.DataFrame:
    summary = pd.DataFrame(rows)
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"result files lack columns {missing}")
    return flag_dense_only(_sort(summary[SUMMARY_COLUMNS]), pruning_trials)


def flag_dense_only(summary: pd.DataFrame, pruning_trials: int | None) -> pd.DataFrame:
    """Add the column ``dense_only`` (True on the dense runs of trials >= ``pruning_trials``: the
    dense-only seeds of config ``dense_seeds``, which start no pruning chain and enter the claims
    only as dense baseline) where there are such runs. A summary without them keeps the columns it
    always had, so the summaries made before the key existed read the same."""
    if pruning_trials is None:
        return summary
    only = (summary["round"] == 0) & (summary["trial"] >= pruning_trials)
    return summary.assign(dense_only=only) if only.any() else summary


def build_summary(result_paths: list[str | os.PathLike], pruning_trials: int | None = None) -> pd.DataFrame:
    """One row per training job, from its result.json (the summary of ``build_tables``)."""
    return _summary([read_result(p) for p in result_paths], pruning_trials)


def build_tables(
    result_paths: list[str | os.PathLike], curve_paths: list[str | os.PathLike], pruning_trials: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary (one row per training job, from its result.json) and the curves (one row per
    evaluation, from its curve.csv, labelled with the job's KEYS); ``curve_paths[i]`` belongs to
    ``result_paths[i]``. With ``pruning_trials`` (the config's ``trials``), the dense runs of
    later trials are flagged ``dense_only`` (``flag_dense_only``)."""
    rows = [read_result(p) for p in result_paths]
    summary = _summary(rows, pruning_trials)
    frames = [pd.read_csv(p).assign(**{k: row[k] for k in KEYS}) for p, row in zip(curve_paths, rows)]
    curves = pd.concat(frames, ignore_index=True)
    cols = KEYS + [c for c in curves.columns if c not in KEYS]
    return summary, _sort(curves[cols], ["iteration"])


def per_trial_means(summary: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per (experiment, round, trial): a control's replicates averaged within their trial,
    so that every trial counts once in a mean over trials (as in the claims)."""
    return summary.groupby(["experiment", "round", "trial"], as_index=False)[columns].mean()


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """``df`` as CSV at ``path``; a name ending in .gz is written gzip-compressed (pandas reads it
    back as it is), with no time or file name in the gzip header: the same table gives the same
    bytes whenever it is written, like the plain CSV."""
    data = df.to_csv(index=False, lineterminator="\n").encode()
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(data, mtime=0) if str(path).endswith(".gz") else data)


def check_fresh(result_paths: list[str | os.PathLike], expected: dict) -> int:
    """Refuse results trained with other settings than ``expected`` (the config's).

    Snakemake reruns a training job when its params change, except in one case: when the data
    download reruns in the same invocation (e.g. ``data_source`` was edited too), the training
    jobs, which read the data as ``ancient()`` inputs, are not re-checked (snakemake issue
    #4166). A second invocation then reruns them. This check makes that case fail loudly instead
    of aggregating stale numbers. Returns how many results carried no record (older versions).
    """
    unrecorded = 0
    for path in result_paths:
        recorded = read_result(path).get("train_config")
        if recorded is None:
            unrecorded += 1
            continue
        diff = {k: (recorded.get(k), v) for k, v in expected.items() if recorded.get(k) != v}
        if diff:
            shown = ", ".join(f"{k}={old!r} (config: {new!r})" for k, (old, new) in sorted(diff.items()))
            raise LTHError(
                f"{path} was trained with {shown}: it is stale. Run the same snakemake command again "
                "(Snakemake skips such reruns when the data is re-fetched in the same run)"
            )
    return unrecorded


def code_versions(result_paths: list[str | os.PathLike]) -> set[str]:
    return {read_result(p).get("code_version", "?") for p in result_paths}
