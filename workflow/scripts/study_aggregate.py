"""A study's tables: every job of every variant (summary.csv) and mean/min/max per level (table.csv)."""

from lth.aggregate import build_summary, check_fresh, write_csv
from lth.jobs import run_job
from lth.studies import study_summary, study_table, varied_settings


def main(log):
    p, out = snakemake.params, snakemake.output  # noqa: F821
    for name, paths in p.results.items():
        check_fresh(paths, p.train[name])
    summary = study_summary({name: build_summary(paths) for name, paths in p.results.items()}, p.variants)
    varied = varied_settings(p.variants)
    write_csv(summary, out.summary)
    write_csv(study_table(summary, varied), out.table)
    log(f"{len(p.variants)} variants ({', '.join(p.variants)}), varied settings {varied}: {len(summary)} job rows")


run_job(main, snakemake.log[0])  # noqa: F821
