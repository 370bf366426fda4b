"""A study's tables: every job of every variant (summary.csv) and mean/min/max per level (table.csv)."""

from pathlib import Path

from lth.aggregate import build_summary, check_fresh, write_csv
from lth.claims import claims_table, rules_note
from lth.fileio import write_text
from lth.jobs import run_job
from lth.provenance import git_state
from lth.studies import study_claims, study_claims_markdown, study_summary, study_table, varied_settings


def main(log):
    p, out = snakemake.params, snakemake.output  # noqa: F821
    for name, paths in p.results.items():
        check_fresh(paths, p.train[name])
    # Each variant's trials start pruning chains; its later dense runs are dense-only seeds.
    summaries = {name: build_summary(paths, p.variants[name]["trials"]) for name, paths in p.results.items()}
    summary = study_summary(summaries, p.variants)
    varied = varied_settings(p.variants)
    write_csv(summary, out.summary)
    write_csv(study_table(summary, varied), out.table)
    verdicts = study_claims(summaries, p.variants)
    write_csv(claims_table(verdicts), out.claims_csv)
    repo = Path(snakemake.scriptdir).parents[1]  # noqa: F821  (the code that ran: names the claims' rules)
    write_text(out.claims_md, study_claims_markdown(verdicts, p.study, p.variants, note=rules_note(git_state(repo))))
    log(f"{len(p.variants)} variants ({', '.join(p.variants)}), varied settings {varied}: {len(summary)} job rows; "
        "claims: " + ", ".join(f"{v.claim_id}:{v.verdict}" for v in verdicts))


run_job(main, snakemake.log[0])  # noqa: F821
