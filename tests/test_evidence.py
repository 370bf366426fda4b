"""The committed evidence agrees with itself and with the code: every committed claims.csv is what
src/lth/claims.py makes of the summary.csv beside it (so a change of a claim's rule that would flip
a committed verdict fails here until the evidence is regenerated), the study's claims come from its
variants, and the README's claims table shows the study's verdicts."""

from pathlib import Path

import pandas as pd
import pytest

from lth.claims import claims_table, evaluate_claims

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "results" / "studies" / "oneshot_vs_iterative"
SUMMARIES = {  # committed summary folder -> the pruning its run used
    "results/default": "iterative",
    "results/paper": "iterative",
    "results/studies/oneshot_vs_iterative/iterative": "iterative",
    "results/studies/oneshot_vs_iterative/oneshot": "oneshot",
}


@pytest.mark.parametrize("folder", sorted(SUMMARIES))
def test_committed_claims_are_what_the_code_makes_of_the_committed_summary(folder):
    summary = pd.read_csv(ROOT / folder / "summary.csv")
    made = claims_table(evaluate_claims(summary, SUMMARIES[folder])).astype(str)
    committed = pd.read_csv(ROOT / folder / "claims.csv").astype(str)
    assert list(made.columns) == list(committed.columns)
    for column in ("claim_id", "measured", "tolerance", "verdict"):
        assert made[column].tolist() == committed[column].tolist(), f"{folder}: {column}"


def verdicts(folder: Path) -> dict[int, str]:
    """claim id -> verdict of a committed claims.csv."""
    claims = pd.read_csv(folder / "claims.csv")
    return dict(zip(claims["claim_id"], claims["verdict"]))


def test_the_study_measures_all_six_claims_each_on_the_variant_that_can():
    study, iterative, oneshot = verdicts(STUDY), verdicts(STUDY / "iterative"), verdicts(STUDY / "oneshot")
    assert sorted(study) == [1, 2, 3, 4, 5, 6]
    assert "NOT-RUN" not in study.values()
    assert {k: study[k] for k in range(1, 6)} == {k: iterative[k] for k in range(1, 6)}
    assert study[6] == oneshot[6]


def readme_claims_table() -> dict[int, str]:
    """The verdict column of the README's claims table (the one under ## Results)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Results") :]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows[int(cells[0])] = cells[-1].strip("*")
    return rows


def test_the_readme_claims_table_shows_the_studys_verdicts():
    assert readme_claims_table() == verdicts(STUDY)
