"""A study's tables: every job of every variant (summary.csv) and mean/min/max per level (table.csv)."""

from pathlib import Path

from lth.claims import rules_note
from lth.jobs import run_job
from lth.provenance import git_state
from lth.studies import varied_settings, write_study


def main(log):
    p, out = snakemake.params, snakemake.output  # noqa: F821
    repo = Path(snakemake.scriptdir).parents[1]  # noqa: F821  (the code that ran: names the claims' rules)
    files = {k: out[k] for k in ("summary", "table", "claims_csv", "claims_md")}
    summary, verdicts = write_study(p.results, p.variants, p.study, files, note=rules_note(git_state(repo)))
    log(f"{len(p.variants)} variants ({', '.join(p.variants)}), varied settings {varied_settings(p.variants)}: "
        f"{len(summary)} job rows; claims: " + ", ".join(f"{v.claim_id}:{v.verdict}" for v in verdicts))


run_job(main, snakemake.log[0])  # noqa: F821
