"""The paper-style figures, from summary.csv and curves.csv.

Conventions (as in the paper's Figures 3 and 4): the x axis is the percent of weights remaining,
log-scaled and reversed so that the dense network (100 %) is on the left; points are the mean
over trials (and reinitialisations), error bars span the minimum and maximum.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator  # noqa: E402

from .fileio import atomic_path  # noqa: E402

PAPER_LEVELS = (100.0, 51.3, 21.1, 7.0, 3.6, 1.9)  # the levels of the paper's Figures 3 and 4
LABELS = {"ticket": "winning ticket (reset to θ0)", "reinit": "random reinitialisation", "random_pruning": "random pruning"}
COLORS = {"ticket": "tab:blue", "reinit": "tab:orange", "random_pruning": "tab:green"}


def _n_label(n: pd.Series) -> str:
    """'n=5', or 'n=2-5' where points rest on different numbers of trials (a run in progress)."""
    lo, hi = int(n.min()), int(n.max())
    return f"n={hi}" if lo == hi else f"n={lo}-{hi}"


def _stats(summary: pd.DataFrame, column: str) -> pd.DataFrame:
    g = summary.groupby(["experiment", "round"])
    return pd.DataFrame(
        {
            "percent_remaining": g["percent_remaining"].mean(),
            "mean": g[column].mean(),
            "min": g[column].min(),
            "max": g[column].max(),
            "n": g[column].size(),
        }
    ).reset_index()


def _sparsity_axis(ax, percents) -> None:
    ax.set_xscale("log")
    ticks = sorted(set(round(p, 1) for p in percents), reverse=True)
    if len(ticks) > 10:  # label the levels the paper's figures label, where reached
        paper = [t for t in ticks if any(abs(t - q) / q < 0.05 for q in PAPER_LEVELS)]
        ticks = paper if len(paper) >= 3 else ticks[:: max(1, len(ticks) // 8)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = min(percents), max(percents)
    ax.set_xlim(hi * 1.15, lo / 1.15)  # reversed: 100 % on the left
    ax.set_xlabel("percent of weights remaining (log scale)")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    ax.grid(True, alpha=0.3)


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _errorbar_plot(summary: pd.DataFrame, column: str, ylabel: str, title: str, path, scale: float = 1.0) -> None:
    stats = _stats(summary, column)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for experiment in [e for e in LABELS if e in set(stats["experiment"])]:
        s = stats[stats["experiment"] == experiment].sort_values("percent_remaining", ascending=False)
        ax.errorbar(
            s["percent_remaining"],
            s["mean"] * scale,
            yerr=[(s["mean"] - s["min"]) * scale, (s["max"] - s["mean"]) * scale],
            marker="o",
            capsize=3,
            color=COLORS[experiment],
            label=f"{LABELS[experiment]} ({_n_label(s['n'])} per point)",
        )
    _sparsity_axis(ax, stats["percent_remaining"])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(title="mean over trials, bars = min/max", fontsize=8)
    _save(fig, path)


def plot_accuracy(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    _errorbar_plot(
        summary,
        "early_stop_test_accuracy",
        "test accuracy at early stopping (%)",
        "Test accuracy at the iteration of minimum validation loss",
        path,
        scale=100.0,
    )


def plot_early_stop(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    _errorbar_plot(
        summary,
        "early_stop_iteration",
        "early-stop iteration (minimum validation loss)",
        "How fast the network learns: iteration of minimum validation loss",
        path,
    )


def plot_train_accuracy(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    _errorbar_plot(
        summary,
        "final_train_accuracy",
        "training accuracy at the end of training (%)",
        "Training accuracy after the last iteration",
        path,
        scale=100.0,
    )


def choose_rounds(percents: dict[int, float], levels=None, max_lines: int = 6) -> list[int]:
    """Rounds to draw: all of them when few, else the ones nearest the requested levels
    (within 10 %), as the paper's Figure 3 shows 100, 51.3, 21.1, 7.0, 3.6 and 1.9 %."""
    rounds = sorted(percents)
    if levels is None or len(rounds) <= max_lines:
        return rounds
    chosen = []
    for level in levels:
        best = min(rounds, key=lambda r: abs(percents[r] - level))
        if abs(percents[best] - level) / level < 0.1 and best not in chosen:
            chosen.append(best)
    return sorted(chosen) or rounds[:: max(1, len(rounds) // max_lines)]


def curve_means(curves: pd.DataFrame) -> pd.DataFrame:
    """The points of the curves figure: per (experiment, round, iteration) the mean test accuracy
    over the round's jobs (trials and replicates), at the iterations where every one of them has
    a test accuracy. Under ``test_eval: minima`` a job measures it at its own new minima too, and
    a job stopped by patience has no later rows; a mean over the jobs that happen to have a point
    there would mix trials, so such iterations are left out (``n``: the jobs behind each mean)."""
    keys = ["experiment", "round"]
    jobs = curves.groupby(keys)[["trial", "replicate"]].apply(lambda g: len(g.drop_duplicates())).rename("jobs")
    measured = curves.dropna(subset=["test_accuracy"])
    points = measured.groupby([*keys, "iteration"])["test_accuracy"].agg(["mean", "size"]).reset_index()
    points = points.join(jobs, on=keys)
    points = points[points["size"] == points["jobs"]]
    return points.rename(columns={"mean": "test_accuracy", "size": "n"}).drop(columns="jobs").reset_index(drop=True)


def plot_curves(curves: pd.DataFrame, summary: pd.DataFrame, path: str | os.PathLike, levels=None) -> None:
    """Test accuracy over iterations, one line per round (mean over trials, at the iterations
    every trial has: ``curve_means``), ticket and controls in side-by-side panels."""
    pct = summary.groupby(["experiment", "round"])["percent_remaining"].mean()
    means = curve_means(curves)
    experiments = [e for e in LABELS if e in set(curves["experiment"])]
    fig, axes = plt.subplots(1, len(experiments), figsize=(6.5 * len(experiments), 4.5), squeeze=False, sharey=True)
    ticket_rounds = choose_rounds(pct.loc["ticket"].to_dict(), levels)
    cmap = plt.get_cmap("viridis")
    colour = {r: cmap(i / max(1, len(ticket_rounds) - 1)) for i, r in enumerate(ticket_rounds)}
    for ax, experiment in zip(axes[0], experiments):
        c = means[means["experiment"] == experiment]
        for r in ticket_rounds:
            sub = c[c["round"] == r].sort_values("iteration")
            if sub.empty:
                continue
            ax.plot(sub["iteration"], sub["test_accuracy"] * 100, color=colour[r],
                    label=f"{pct.loc[(experiment, r)]:.1f}% remaining")
        ax.set_title(LABELS[experiment])
        ax.set_xlabel("training iteration")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title="weights remaining")
    axes[0][0].set_ylabel("test accuracy (%), mean over trials")
    lo = curves["test_accuracy"].quantile(0.02) * 100
    axes[0][0].set_ylim(max(lo - 1, 0), 100)
    fig.suptitle("Test accuracy during training (the paper's Figure 3)")
    _save(fig, path)


def plot_figures(summary: pd.DataFrame, curves: pd.DataFrame, *, accuracy, early_stop, train_accuracy, curves_png) -> None:
    """The four paper-style figures of a run (the plot rule's outputs)."""
    plot_accuracy(summary, accuracy)
    plot_early_stop(summary, early_stop)
    plot_train_accuracy(summary, train_accuracy)
    plot_curves(curves, summary, curves_png, levels=PAPER_LEVELS)


LINESTYLES = {"ticket": "-", "reinit": "--", "random_pruning": ":"}


def plot_comparison(table: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """A study's comparison (``lth.studies.study_table``): test accuracy at early stop (left) and
    the early-stop iteration (right) against weights remaining, one series per variant and
    experiment (colour: variant; line style: ticket, reinit, random pruning); mean over trials,
    bars from the minimum to the maximum."""
    variants = list(dict.fromkeys(table["variant"]))
    colors = {v: plt.get_cmap("tab10")(i % 10) for i, v in enumerate(variants)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    panels = (
        ("early_stop_test_accuracy", 100.0, "test accuracy at early stopping (%)"),
        ("early_stop_iteration", 1.0, "early-stop iteration (minimum validation loss)"),
    )
    for ax, (metric, scale, ylabel) in zip(axes, panels):
        for variant in variants:
            for experiment in [e for e in LABELS if e in set(table["experiment"])]:
                s = table[(table["variant"] == variant) & (table["experiment"] == experiment)]
                if s.empty:
                    continue
                s = s.sort_values("percent_remaining", ascending=False)
                mean, lo, hi = (s[f"{metric}_{k}"] * scale for k in ("mean", "min", "max"))
                ax.errorbar(s["percent_remaining"], mean, yerr=[mean - lo, hi - mean], marker="o", markersize=3,
                            capsize=2, color=colors[variant], linestyle=LINESTYLES[experiment],
                            label=f"{variant}: {experiment} ({_n_label(s['trials'])})")
        _sparsity_axis(ax, table["percent_remaining"])
        # Variants' levels differ (0.9^r, 0.8^r, ...): label the paper's levels, not every point.
        lo, hi = table["percent_remaining"].min(), table["percent_remaining"].max()
        paper = [q for q in PAPER_LEVELS if lo / 1.05 <= q <= hi * 1.05]
        if len(paper) >= 3:
            ax.xaxis.set_major_locator(FixedLocator(paper))
        ax.set_ylabel(ylabel)
    axes[0].legend(title="mean over trials, bars = min/max", fontsize=7)
    fig.suptitle(title or "Comparison of the variants")
    _save(fig, path)
