"""lth.sources: which files a workflow script runs, and the hash every rule passes as `code`."""

import ast
import re
import shutil
from pathlib import Path

from lth.sources import _canonical, code_hash, sources

from conftest import ROOT

SCRIPTS = ROOT / "workflow" / "scripts"


def names(script):
    return {p.name for p in sources(script)[1:]}


def test_the_training_script_runs_the_numerics_modules_and_not_the_figures():
    found = names(SCRIPTS / "train.py")
    # experiment imports checkpoint with `from . import checkpoint`, training imports sparse
    assert {"experiment.py", "training.py", "sparse.py", "models.py", "pruning.py", "data.py",
            "checkpoint.py", "__init__.py"} <= found
    assert not found & {"plots.py", "claims.py", "compare.py", "summarize.py", "aggregate.py"}


def test_the_plot_script_runs_the_plots_and_not_the_training_loop():
    found = names(SCRIPTS / "plot.py")
    assert "plots.py" in found
    assert not found & {"training.py", "sparse.py", "models.py"}


def _package(tmp_path: Path) -> tuple[Path, Path]:
    """A small package `lth` and a script that imports it, in tmp_path."""
    pkg = tmp_path / "src" / "lth"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""The package."""\n')
    (pkg / "a.py").write_text("from . import b\n\n\ndef f():\n    from .c import g  # inside a function\n    return g()\n")
    (pkg / "b.py").write_text("X = 1\n")
    (pkg / "c.py").write_text("def g():\n    return 2\n")
    (pkg / "unused.py").write_text("Y = 3\n")
    script = tmp_path / "scripts" / "job.py"
    script.parent.mkdir()
    script.write_text("from lth.a import f\n\nf()\n")
    return script, pkg


def test_sources_follow_relative_imports_and_imports_inside_functions(tmp_path):
    script, pkg = _package(tmp_path)
    assert sources(script, pkg) == [script.resolve()] + sorted(
        (pkg / n).resolve() for n in ("__init__.py", "a.py", "b.py", "c.py"))


def test_the_hash_changes_with_the_code_of_any_module_the_script_reaches(tmp_path):
    script, pkg = _package(tmp_path)
    before = code_hash(script, pkg)
    (pkg / "unused.py").write_text("Y = 4\n")
    assert code_hash(script, pkg) == before  # a module the script never imports
    for name, edit in (("c.py", "def g():\n    return 3\n"),  # reached only from inside a function
                       ("b.py", "X = 2\n"),
                       ("__init__.py", '"""The package."""\nZ = 0\n')):
        old = (pkg / name).read_text()
        (pkg / name).write_text(edit)
        assert code_hash(script, pkg) != before, name
        (pkg / name).write_text(old)
        assert code_hash(script, pkg) == before, name
    script.write_text("from lth.a import f\n\nf()\nf()\n")
    assert code_hash(script, pkg) != before


def test_comments_docstrings_layout_and_the_version_do_not_change_the_hash(tmp_path):
    script, pkg = _package(tmp_path)
    before = code_hash(script, pkg)
    (pkg / "__init__.py").write_text('"""Another docstring, longer."""\n# and a comment\n')
    (pkg / "c.py").write_text('def g():\n    """Why two."""\n\n    return (2)  # the answer\n')
    assert code_hash(script, pkg) == before
    (pkg / "__init__.py").write_text('"""The package."""\n__version__ = "9.9"\n')  # a release bump
    assert code_hash(script, pkg) == before
    (pkg / "__init__.py").write_text('"""The package."""\n__all__ = ["a"]\n')  # other code counts
    assert code_hash(script, pkg) != before
    (pkg / "__init__.py").write_text('"""The package."""\n')
    (pkg / "c.py").write_text('def g():\n    """Why two."""\n    return "Why two."\n')  # a string that is code
    assert code_hash(script, pkg) != before


def test_the_same_code_elsewhere_gives_the_same_hash(tmp_path):
    script, pkg = _package(tmp_path / "one")
    copy = tmp_path / "two" / "deeper"
    shutil.copytree(tmp_path / "one", copy)
    assert code_hash(copy / "scripts" / "job.py", copy / "src" / "lth") == code_hash(script, pkg)



def test_every_rule_with_a_script_passes_the_hash_of_that_script():
    # The workflow profile turns Snakemake's own `code` trigger off: a rule without `code=` would
    # never rerun after an edit of its script.
    script_of: dict[str, str | None] = {}  # rule -> the script it runs
    checked = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"(?m)^(?=rule |use rule )", smk.read_text()):
            if block.startswith("rule "):
                name = re.match(r"rule (\w+)", block).group(1)
                found = re.search(r'script:\n\s+"\.\./scripts/([\w.]+)"', block)
                script = script_of[name] = found.group(1) if found else None
            elif block.startswith("use rule "):
                # `use rule X as Y with:` runs X's script; params, if given, replace X's
                parent, name = re.match(r"use rule (\w+) as (\w+)", block).groups()
                script = script_of[parent] if "params:" in block else None
            else:
                continue
            if script is not None:
                line = rf'^\s+code=script_code\("{re.escape(script)}"\),$'
                assert re.search(line, block, re.M), f"{smk.name}: rule {name} runs {script} without its code hash"
                checked.append(name)
    assert {"train_dense", "train_sparse", "init_reinit", "prune_settings", "plot", "study_plot"} <= set(checked)


# Code whose syntax tree each Python writes out in its own way (ast.dump): functions and classes
# (3.12 adds `type_params`), defaults, annotations, f-strings, a match, `return None` and `return`.
_EVERY_PYTHON = '''
import math
from lth.b import X


class Net(object):
    size: int = 3

    @staticmethod
    def forward(x, *args, scale=1.0, **kw):
        return [v * scale for v in x if v is not None]


async def later(n):
    return None


def describe(value, width=8):
    match value:
        case {"kind": kind, **rest}:
            return f"{kind!r:>{width}} {len(rest)}"
        case [first, *_]:
            return first
    try:
        return math.sqrt(value) + X
    except (TypeError, ValueError) as error:
        raise RuntimeError(str(error)) from None
    finally:
        pass
    return
'''


def test_the_hash_is_the_same_in_every_python(tmp_path):
    # A run folder made with one Python and continued with another must not retrain: the hash
    # of this code is the same on Python 3.10, 3.11, 3.12 and 3.13 (checked on each). If an edit
    # of lth.sources changes it on purpose, every run folder reruns once: say so in the release.
    pkg = tmp_path / "src" / "lth"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "b.py").write_text("X = 1.5\n")
    script = tmp_path / "job.py"
    script.write_text(_EVERY_PYTHON)
    assert code_hash(script, pkg) == "d123f5166bc80177"


def test_what_one_python_adds_to_the_tree_of_the_same_code_is_left_out():
    # The test above runs on one Python; this one makes the others' trees from this one's.
    tree = ast.parse(_EVERY_PYTHON)
    before = _canonical(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.type_params = []  # 3.12 and later: every def has one, empty without generics
        if isinstance(node, ast.JoinedStr):  # 3.12: an empty string after a nested format spec
            node.values.append(ast.Constant(""))
    assert _canonical(tree) == before
    tree.body[2].body[0].simple = 0  # `(size): int = 3`: a field that means something counts
    assert _canonical(tree) != before
