"""The front door (issue 14): a short README whose links work, docs/configuration.md generated from
the config schema (every key, never stale), and no path of a particular machine in any committed
file."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from lth.config import REGENERATE, config_markdown, load_schema

from conftest import ROOT

SCHEMA_FILE = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_PAGE = ROOT / "docs" / "configuration.md"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "results").glob("*/README.md"))]


# --- docs/configuration.md ------------------------------------------------------------------


def test_the_configuration_page_has_a_row_for_every_schema_key():
    page = CONFIG_PAGE.read_text()
    keys = list(load_schema(SCHEMA_FILE)["properties"])
    missing = [k for k in keys if not re.search(rf"^\| `{re.escape(k)}` \|", page, re.M)]
    assert not missing, f"docs/configuration.md lacks {missing}; regenerate it: {REGENERATE}"
    documented = re.findall(r"^\| `([a-z_]+)` \|", page, re.M)
    assert documented == keys, f"docs/configuration.md documents {documented}, the schema has {keys}"


def test_the_configuration_page_is_up_to_date():
    expected = config_markdown(load_schema(SCHEMA_FILE))
    assert CONFIG_PAGE.read_text() == expected, f"docs/configuration.md is stale; regenerate it: {REGENERATE}"


def test_every_schema_key_has_a_description():
    props = load_schema(SCHEMA_FILE)["properties"]
    assert [k for k, v in props.items() if not str(v.get("description", "")).strip()] == []


def test_the_regeneration_command_writes_the_page(tmp_path):
    """The command docs/development.md names, as a user runs it."""
    assert REGENERATE in (ROOT / "docs" / "development.md").read_text()
    out = tmp_path / "configuration.md"
    subprocess.run([sys.executable, "-m", "lth.config", "--markdown", str(out)], check=True, cwd=ROOT)
    assert out.read_text() == config_markdown(load_schema(SCHEMA_FILE))


# --- README and links ------------------------------------------------------------------------


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move details into docs/"


def test_the_readme_names_the_first_contact_profile_first():
    text = (ROOT / "README.md").read_text()
    run = text[text.index("## Run"):]
    first = re.search(r"^snakemake .*$", run, re.M).group(0)
    assert first == "snakemake --cores 2 --configfile config/quick.yaml --config data_source=../shared/mnist"
    assert "python3 -m pytest" in text


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def _links(page) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page):
    broken = []
    for link in _links(page):
        if re.match(r"^[a-z]+:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(link)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


# --- no path of a particular machine ---------------------------------------------------------

# Written in pieces so that this file does not match itself.
MACHINE_PATHS = ["/" + "work/", "/" + "home/", "/" + "root/"]


def test_no_committed_file_names_a_path_of_this_machine():
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    found = []
    for name in filter(None, proc.stdout.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree, or a submodule
            continue
        data = path.read_bytes()
        for pattern in MACHINE_PATHS:
            for match in re.finditer(re.escape(pattern.encode()), data):
                line = data.count(b"\n", 0, match.start()) + 1
                found.append(f"{name}:{line}: {pattern}")
    assert not found, "machine-specific paths (write ../shared/mnist, /path/to/mnist or RUN_DIR): " + "; ".join(found[:20])
