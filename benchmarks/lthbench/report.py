"""The printed report: every row of the run, then the table per paper level (Markdown, as
docs/speed.md and docs/sparse_kernels.md show it)."""

from __future__ import annotations

import json

from .levels import STEP_TARGETS
from .projection import JOB_TARGETS, PROFILE_TARGET


def print_table(rows: list[dict], gpu: bool = False) -> None:
    print(f"{'':<38} {'wall':>10} {'CPU time':>10}")
    if gpu:
        print("(GPU figures have no CPU-time figure; the rows marked [CPU process] ran on the CPU)")
    for row in rows:
        if row["metric"].startswith("meta_"):
            continue
        v, c = row["value"], row["value_cpu"]
        shown = f"{v:10.4g}" if isinstance(v, float) else f"{v!s:>10}"
        shown_c = f"{c:10.4g}" if isinstance(c, float) else f"{c!s:>10}"
        print(f"{row['metric']:<38} {shown} {shown_c} {row['unit']:<8} {row['detail']}")
    meta = {r["metric"][5:]: r["value"] for r in rows if r["metric"].startswith("meta_")}
    print(json.dumps(meta))


def level_table(rows: list[dict], clock: str = "value_cpu") -> str:
    """Per paper level: step, evaluation (validation + test) and job time, before (dense kernels,
    test_eval all) and after (kernels auto, test_eval minima), from one clock (CPU time by
    default: steadier where other processes share the cores); then the paper profile."""
    r = {row["metric"]: row for row in rows}
    levels = [row["metric"].split("@")[1] for row in rows if row["metric"].startswith("dense_step_ms@")]

    def v(name):
        return r[name][clock]

    def target(t):
        return f"≤ {t:g}" if t else ""

    out = ["| remaining | step dense (ms) | step sparse (ms) | **step ratio** | target | val eval dense / sparse (ms) "
           "| test eval dense / sparse (ms) | tests per job | job before (s) | job after (s) | **job ratio** | target |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for lv in levels:
        out.append(
            f"| {lv} % | {v(f'dense_step_ms@{lv}'):.3f} | {v(f'sparse_step_ms@{lv}'):.3f} "
            f"| **{v(f'sparse_over_dense_step@{lv}'):.2f}** | {target(STEP_TARGETS.get(lv))} "
            f"| {v(f'dense_val_ms@{lv}'):.0f} / {v(f'sparse_val_ms@{lv}'):.0f} "
            f"| {v(f'dense_test_ms@{lv}'):.0f} / {v(f'sparse_test_ms@{lv}'):.0f} | {r[f'tests_per_job@{lv}']['value']:.0f} "
            f"| {v(f'job_before_s@{lv}'):.0f} | {v(f'job_after_s@{lv}'):.0f} "
            f"| **{v(f'job_after_over_before@{lv}'):.2f}** | {target(JOB_TARGETS.get(lv))} |")
    out.append("")
    out.append(f"Paper profile (185 jobs, projected): before {v('paper_profile_before_s') / 3600:.1f} h, after "
               f"{v('paper_profile_after_s') / 3600:.1f} h of one core: **{v('paper_profile_after_over_before'):.2f}** "
               f"(target ≤ {PROFILE_TARGET}); the kernels alone (auto / dense, both test_eval minima) "
               f"{v('paper_profile_auto_over_dense'):.2f}; the faster kernels for every job "
               f"{v('paper_profile_best_over_before'):.2f}. Sparse jobs faster below "
               f"{v('sparse_faster_below_percent'):.0f} % of the weights (interpolated).")
    return "\n".join(out)
