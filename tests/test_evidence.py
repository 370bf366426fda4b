"""The committed evidence agrees with itself and with the code: every committed claims.csv and
claims.md is what src/lth/claims.py makes of the summary.csv beside it (so a change of a claim's
rule that would change a committed verdict fails here until the evidence is re-scored), the
study's claims come from its variants, the runs made before the rules say that they were scored
after the fact, the evidence run names the commit of the rules it ran with, and the README's claims
table shows the evidence run's verdicts."""

import io
import json
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest

from lth.claims import SCORED_AFTER_THE_FACT, claims_markdown, claims_table, evaluate_claims
from lth.studies import rescore_study

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "results" / "studies" / "oneshot_vs_iterative"
EVIDENCE = ROOT / "results" / "studies" / "evidence"
DESIGN_COMMIT = "622a37b"  # the evidence run's design and rules, committed before it started
SUMMARIES = {  # committed summary folder -> the pruning its run used
    "results/default": "iterative",
    "results/paper": "iterative",
    "results/studies/oneshot_vs_iterative/iterative": "iterative",
    "results/studies/oneshot_vs_iterative/oneshot": "oneshot",
}
# Every run made before the rules of issue 26 is labelled as scored after the fact.
SCORED_LATER = [*SUMMARIES, "results/studies/oneshot_vs_iterative"]
# The evidence run (lth.shards assemble): scored by the rules it ran with, its note in provenance.json.
PREREGISTERED = ["results/studies/evidence", "results/studies/evidence/iterative", "results/studies/evidence/oneshot"]
TEXT = ["claim_id", "claim", "paper", "source", "statistic", "unit", "verdict", "measured", "rule"]
NUMBERS = ["estimate", "ci_low", "ci_high", "confidence", "verdict_stability"]


@lru_cache(maxsize=None)
def made(folder: str):
    """(claims table, claims.md) the rules make of a committed folder's summary.csv, as
    `python3 -m lth.summarize --rescore FOLDER` writes them."""
    summary = pd.read_csv(ROOT / folder / "summary.csv")
    if folder in PREREGISTERED:
        note = json.loads((EVIDENCE / "provenance.json").read_text())["scoring_note"]
        if folder == PREREGISTERED[0]:
            verdicts, text = rescore_study(summary, EVIDENCE / "config.yaml", note=note)
        else:
            verdicts = evaluate_claims(summary, Path(folder).name)
            text = claims_markdown(verdicts, note=note)
    elif folder in SUMMARIES:
        import yaml

        config_file = ROOT / folder / "config.yaml"
        config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else None
        verdicts = evaluate_claims(summary, SUMMARIES[folder])
        text = claims_markdown(verdicts, config, note=SCORED_AFTER_THE_FACT)
    else:
        verdicts, text = rescore_study(summary, ROOT / folder / "config.yaml", note=SCORED_AFTER_THE_FACT)
    return claims_table(verdicts), text


@pytest.mark.parametrize("folder", SCORED_LATER + PREREGISTERED)
def test_committed_claims_are_what_the_rules_make_of_the_committed_summary(folder):
    table, text = made(folder)
    table = pd.read_csv(io.StringIO(table.to_csv(index=False)))  # as written and read back
    committed = pd.read_csv(ROOT / folder / "claims.csv")
    assert list(table.columns) == list(committed.columns)
    for column in TEXT:
        assert table[column].astype(str).tolist() == committed[column].astype(str).tolist(), f"{folder}: {column}"
    for column in NUMBERS:  # numbers to the rounding of another CPU's arithmetic
        assert table[column].tolist() == pytest.approx(committed[column].tolist(), abs=2e-3, nan_ok=True), column
    assert (ROOT / folder / "claims.md").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("folder", SCORED_LATER)
def test_runs_made_before_the_rules_say_they_were_scored_after_the_fact(folder):
    assert SCORED_AFTER_THE_FACT in (ROOT / folder / "claims.md").read_text(encoding="utf-8")


def test_the_evidence_run_is_scored_by_the_rules_committed_before_it():
    provenance = json.loads((EVIDENCE / "provenance.json").read_text())
    commit = provenance["git"]["commit"]
    assert commit.startswith(DESIGN_COMMIT) and not provenance["git"].get("dirty")
    assert {m["git"]["commit"] for m in provenance["shards"].values()} == {commit}
    for folder in PREREGISTERED:
        text = (ROOT / folder / "claims.md").read_text(encoding="utf-8")
        assert f"Scored by the rules of src/lth/claims.py at commit {commit[:12]} (provenance.json)" in text, folder
        assert "scored after the fact" not in text.lower(), folder


def verdicts(folder: Path) -> dict[int, str]:
    """claim id -> verdict of a committed claims.csv."""
    claims = pd.read_csv(folder / "claims.csv")
    return dict(zip(claims["claim_id"], claims["verdict"]))


@pytest.mark.parametrize("folder", [STUDY, EVIDENCE], ids=lambda p: p.name)
def test_the_study_measures_all_six_claims_each_on_the_variant_that_can(folder):
    study, iterative, oneshot = verdicts(folder), verdicts(folder / "iterative"), verdicts(folder / "oneshot")
    assert sorted(study) == [1, 2, 3, 4, 5, 6]
    assert "NOT-RUN" not in study.values()
    assert {k: study[k] for k in range(1, 6)} == {k: iterative[k] for k in range(1, 6)}
    assert study[6] == oneshot[6]


def readme_claims_table() -> dict[int, list[str]]:
    """The rows of the README's claims table (the one under ## Results), by claim."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Results") :]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_the_readme_claims_table_shows_the_evidence_runs_verdicts_and_intervals():
    rows = readme_claims_table()
    assert {k: r[-1].strip("*") for k, r in rows.items()} == verdicts(EVIDENCE)
    study = pd.read_csv(EVIDENCE / "claims.csv").set_index("claim_id")
    for k, row in rows.items():
        if study.loc[k, "unit"] == "pts":  # the deciding interval, as claims.csv has it
            lo, hi = study.loc[k, "ci_low"], study.loc[k, "ci_high"]
            assert f"[{lo:+.2f}, {hi:+.2f}]" in " ".join(row), (k, row)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"fixed before the run (commit {DESIGN_COMMIT})" in text[text.index("## Results") :]
