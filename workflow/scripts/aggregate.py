"""summary.csv, curves.csv, the claims verdict and the provenance record."""

from pathlib import Path

from lth.aggregate import build_tables, check_fresh, code_versions, write_csv
from lth.claims import claims_markdown, claims_table, evaluate_claims, rules_note
from lth.fileio import write_json, write_text
from lth.jobs import run_job
from lth.provenance import collect, git_state


def main(log):
    inp, out, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    unrecorded = check_fresh(inp.results, p.train)
    if unrecorded:
        log(f"warning: {unrecorded} results do not record their training settings (older version)")
    # The config's trials start pruning chains; the dense runs after them are dense-only seeds.
    summary, curves = build_tables(inp.results, inp.curves, p.config["trials"])
    versions = code_versions(inp.results)
    if len(versions) > 1:
        log(f"warning: results come from {len(versions)} versions of the lth numerics code: {sorted(versions)}")
    write_csv(summary, out.summary)
    write_csv(curves, out.curves)
    verdicts = evaluate_claims(summary, p.config["pruning"])
    # The repository this script runs from (its git commit goes into provenance.json and names
    # the claims' rules): not a param, which would rerun this job for the same code in a clone at
    # another place.
    repo = Path(snakemake.scriptdir).parents[1]  # noqa: F821
    write_csv(claims_table(verdicts), out.claims_csv)
    write_text(out.claims_md, claims_markdown(verdicts, p.config, note=rules_note(git_state(repo))))
    write_json(out.provenance, collect(p.config, inp.checksums, repo, versions))
    log(f"{len(summary)} training jobs, {len(curves)} evaluations; claims: "
        + ", ".join(f"{v.claim_id}:{v.verdict}" for v in verdicts))


run_job(main, snakemake.log[0])  # noqa: F821
