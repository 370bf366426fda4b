"""summary.csv (one row per training job) and curves.csv (one row per evaluation)."""

from lth.aggregate import KEYS, build_curves, build_summary, code_versions, write_csv
from lth.experiment import read_result
from lth.jobs import run_job


def main(log):
    inp, out = snakemake.input, snakemake.output  # noqa: F821
    summary = build_summary(inp.results)
    labels = [{k: read_result(p)[k] for k in KEYS} for p in inp.results]
    curves = build_curves(inp.curves, labels)
    versions = code_versions(inp.results)
    if len(versions) > 1:
        log(f"warning: results come from {len(versions)} versions of the lth code: {sorted(versions)}")
    write_csv(summary, out.summary)
    write_csv(curves, out.curves)
    log(f"{len(summary)} training jobs, {len(curves)} evaluations")


run_job(main, snakemake.log[0])  # noqa: F821
