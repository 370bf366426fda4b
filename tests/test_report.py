"""Snakemake's HTML report (`snakemake --report`) and the workflow's lint, on a tiny grid."""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import pytest

from conftest import ROOT, make_small_mnist, run_snakemake

pytestmark = pytest.mark.workflow

TINY = {
    "trials": 1,
    "rounds": 1,
    "iterations": 40,
    "eval_every": 20,
    "batch_size": 20,
    "val_size": 100,
    "verify_data": False,
    "device": "cpu",
}
FIGURES = ["accuracy", "early_stop", "curves", "train_accuracy"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("report")
    config = dict(TINY, data_source=str(make_small_mnist(workdir / "data")))
    run_snakemake(workdir, "--cores", "2", config=config)
    run_snakemake(workdir, "--report", "results/report.html", config=config)
    return workdir, (workdir / "results" / "report.html").read_text()


@pytest.mark.bitwise
def test_report_embeds_every_figure(report):
    workdir, html = report
    for name in FIGURES:
        png = (workdir / "results" / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
        # the figure itself, byte for byte (base64), and its entry under the figures category
        assert base64.b64encode(png).decode() in html, f"{name}.png is not in the report"
        assert f'"results/plots/{name}.png"' in html


@pytest.mark.bitwise
def test_report_has_captions_categories_and_tables(report):
    workdir, html = report
    for category in ("1. Claims", "2. Figures", "3. Tables", "4. Provenance"):
        assert category in html
    for table in ("summary.csv", "claims.csv", "provenance.json"):
        data = (workdir / "results" / table).read_bytes()
        assert base64.b64encode(data).decode() in html, f"{table} is not in the report"
    # each caption, rendered from workflow/report/<name>.rst: its first six words in the page's text
    text = re.sub(r"<[^>]+>", "", html)
    for name in FIGURES + ["summary", "claims", "provenance"]:
        rst = (ROOT / "workflow" / "report" / f"{name}.rst").read_text()
        words = re.sub(r"[*`]", "", rst).split()[:6]
        assert " ".join(words) in text, f"caption {name}.rst is not in the report"
    # the main page, with this run's config filled in
    assert "1 trials" in html and "1 pruning rounds" in html


def test_every_report_caption_file_is_used():
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    used = set(re.findall(r'caption="\.\./report/([\w.]+)"', rules)) | {"workflow.rst"}
    present = {p.name for p in (ROOT / "workflow" / "report").glob("*.rst")}
    assert used == present


def test_snakemake_lint_finds_nothing(tmp_path):
    """`snakemake --lint` (CI also runs ruff and snakefmt)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--configfile", str(ROOT / "config.yaml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in out, out[-4000:]
    assert "Congratulations, your workflow is in a good condition!" in out


def test_rulegraph_picture_is_current():
    """docs/rulegraph.png (in the README) is drawn from docs/rulegraph.dot: redraw both with
    `bash docs/rulegraph.sh` after adding, removing or rewiring a rule."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--rulegraph", "--configfile", str(ROOT / "config.yaml"),
                           "--workflow-profile", "none"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    committed = (ROOT / "docs" / "rulegraph.dot").read_text()
    # the same nodes and edges (Snakemake lists the edges in no fixed order)
    assert sorted(proc.stdout.split("\n")) == sorted(committed.split("\n")), (
        "the rule graph changed: run `bash docs/rulegraph.sh` and commit docs/rulegraph.*"
    )
    assert (ROOT / "docs" / "rulegraph.png").read_bytes().startswith(b"\x89PNG")
