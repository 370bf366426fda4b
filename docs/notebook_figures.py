"""The README's figures for the notebook profiles (issue 8), from a finished run's results/.

    python3 docs/notebook_figures.py oneshot   RUN_DIR docs/notebook_oneshot_curves.png
    python3 docs/notebook_figures.py iterative RUN_DIR docs/notebook_iterative_accuracy.png

RUN_DIR is the folder the profile ran in (`snakemake --directory RUN_DIR ...`). The x axis of
the one-shot figure is in epochs: iteration / (54000 // 60) = iteration / 900, the profile's
eval_every (pass --steps-per-epoch if the profile's batch size was changed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def oneshot(run: Path, out: Path, steps_per_epoch: int) -> None:
    curves = pd.read_csv(run / "results" / "curves.csv")
    summary = pd.read_csv(run / "results" / "summary.csv")
    curves = curves[curves["experiment"] == "ticket"]
    summary = summary[summary["experiment"] == "ticket"]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    styles = {0: ("tab:blue", "dense (before pruning)"), 1: ("tab:red", "pruned 20%, reset to θ0, retrained")}
    for r, (colour, label) in styles.items():
        c = curves[curves["round"] == r].groupby("iteration")["test_accuracy"].mean()
        s = summary[summary["round"] == r]
        if c.empty:
            continue
        pct = s["percent_remaining"].mean()
        ax.plot(c.index / steps_per_epoch, c.values * 100, marker="o", ms=3, color=colour,
                label=f"{label}: {pct:.0f}% of weights")
        es = s["early_stop_iteration"].mean() / steps_per_epoch
        acc = s["early_stop_test_accuracy"].mean() * 100
        ax.plot([es], [acc], marker="*", ms=12, color=colour, markeredgecolor="black", linestyle="none")
    ax.plot([], [], marker="*", ms=10, color="grey", markeredgecolor="black", linestyle="none",
            label="early stop (minimum validation loss)")
    n = summary["trial"].nunique()
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch (900 iterations of batch 60)" if steps_per_epoch == 900 else "epoch")
    ax.set_ylabel("test accuracy (%)" + (f", mean of {n} trials" if n > 1 else ""))
    ax.set_title("LeNet-5 on MNIST, notebook one-shot profile" + (" (1 trial)" if n == 1 else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)


def iterative(run: Path, out: Path) -> None:
    summary = pd.read_csv(run / "results" / "summary.csv")
    summary = summary[summary["experiment"] == "ticket"]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    g = summary.groupby("round")
    pct = g["percent_remaining"].mean()
    n = summary["trial"].nunique()
    for column, colour, label in (
        ("early_stop_test_accuracy", "tab:blue", "at early stop (minimum validation loss)"),
        ("final_test_accuracy", "tab:grey", "at the last epoch run"),
    ):
        mean, lo, hi = g[column].mean() * 100, g[column].min() * 100, g[column].max() * 100
        ax.errorbar(pct, mean, yerr=[mean - lo, hi - mean], marker="o", capsize=3, color=colour, label=label)
        for p, m in zip(pct, mean):
            if column == "early_stop_test_accuracy":
                ax.annotate(f"{m:.2f}", (p, m), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    ax.set_xlim(105, pct.min() - 5)  # reversed: the dense network on the left
    ax.set_xticks(list(pct))
    ax.set_xticklabels([f"{p:.1f}" for p in pct])
    ax.set_xlabel("percent of weights remaining")
    ax.set_ylabel("test accuracy (%)" + (f", mean of {n} trials, bars min/max" if n > 1 else ""))
    ax.margins(y=0.12)
    ax.set_title("LeNet-5 on MNIST, notebook iterative profile" + (" (trial 0 only)" if n == 1 else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", choices=["oneshot", "iterative"])
    ap.add_argument("run", type=Path, help="the folder the profile ran in")
    ap.add_argument("out", type=Path, help="the PNG to write")
    ap.add_argument("--steps-per-epoch", type=int, default=900)
    a = ap.parse_args()
    if a.profile == "oneshot":
        oneshot(a.run, a.out, a.steps_per_epoch)
    else:
        iterative(a.run, a.out)


if __name__ == "__main__":
    main()
