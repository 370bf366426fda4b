"""The source files a workflow script runs, and a hash of their contents.

Snakemake reruns a `script:` rule when the script's modification time is newer than the job's
outputs (its `code` trigger), and never when a module the script imports changes. Both are wrong
for this workflow: a fresh clone (new modification times, the same code) would retrain every
job, and an edit of `training.py` would retrain none. So every rule passes
``code=code_hash(script)`` through `params:`, a hash of the script and of every module of this
package it imports (directly or through other modules), and the workflow profile leaves out the
`code` trigger: a job reruns exactly when the code it runs has changed, wherever the clone is.

The hash is of each file's syntax tree without docstrings, so that comments, docstrings and
layout can be edited without retraining. The tree is written out in a form of its own, not
`ast.dump`'s: each Python adds fields (3.12's empty `type_params`) or changes what the dump shows
(3.13 leaves empty ones out), and the hash must not change with the Python a run folder meets
(the same on 3.10 to 3.13: tests/test_sources.py).
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _tree(path: Path) -> ast.Module:
    return _parse(path.read_text())


# Parsed once per content: a DAG hashes 15 rules over mostly the same modules. Callers must not
# modify the tree they get.
@lru_cache(maxsize=None)
def _parse(text: str) -> ast.Module:
    return ast.parse(text)


def _module_file(name: str, package_dir: Path) -> Path | None:
    """The file of module ``name`` (dotted, inside the package) or None if it is not one."""
    first, *rest = name.split(".")
    if first != package_dir.name:
        return None
    candidates = [package_dir.joinpath(*rest, "__init__.py")]
    if rest:
        candidates.insert(0, package_dir.joinpath(*rest[:-1], rest[-1] + ".py"))
    return next((c for c in candidates if c.is_file()), None)


def _imported_names(path: Path, package_dir: Path) -> set[str]:
    """Dotted names of the package's modules that ``path`` imports anywhere in its body (inside
    functions too: a conservative reading). ``from lth import x`` counts both lth and lth.x."""
    # the package a module of ours sits in (what a relative import starts from); None for scripts
    path = path.resolve()
    here = list(path.relative_to(package_dir.parent).parts[:-1]) if path.is_relative_to(package_dir) else None
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from . import x
                if here is None:
                    continue
                base = here[: len(here) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == package_dir.name or n.startswith(package_dir.name + ".")}


def sources(script: str | Path, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """``script`` and every module of the package it imports, transitively (the package's
    ``__init__.py`` too, which any import of it runs), sorted with the script first."""
    script = Path(script).resolve()
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_names(path, package_dir):
            # importing lth.a.b runs lth/__init__.py and lth/a/__init__.py first
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                found = _module_file(".".join(parts[:i]), package_dir)
                if found is not None:
                    todo.append(found.resolve())
    return [script, *sorted(seen - {script})]


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _canonical(node: object) -> str:
    """``node`` as text that is the same in every Python that parses it into the same tree: the
    fields in the order the node lists them, leaving out the empty and absent ones (a field a newer
    Python added, like `type_params`, is empty wherever the code does not use it)."""
    if isinstance(node, ast.Constant):  # its value None is code (`x = None`), not an absent field
        return f"Constant({node.value!r})"
    if isinstance(node, ast.JoinedStr):  # 3.12 puts an empty string into some f-strings' format specs
        node = ast.JoinedStr(values=[v for v in node.values if not (isinstance(v, ast.Constant) and v.value == "")])
    if isinstance(node, ast.AST):
        fields = ((name, getattr(node, name, None)) for name in node._fields)
        return type(node).__name__ + "(" + ",".join(
            f"{name}={_canonical(value)}" for name, value in fields if value is not None and value != []) + ")"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(item) for item in node) + "]"
    return repr(node)


@lru_cache(maxsize=None)
def _code_only(text: str) -> bytes:
    """The syntax tree of a file's ``text`` without its docstrings and its ``__version__``, as text
    (comments are not in the tree)."""
    tree = ast.parse(text)  # a tree of its own: this one is edited
    # The package's version string computes nothing: a release bump must not retrain every job.
    tree.body = [stmt for stmt in tree.body if not (
        isinstance(stmt, ast.Assign) and [ast.unparse(t) for t in stmt.targets] == ["__version__"])]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, _DOCUMENTED) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return _canonical(tree).encode()


def code_hash(script: str | Path, package_dir: Path = PACKAGE_DIR) -> str:
    """A short hash of the code of ``sources(script)``: it changes when the code the script runs
    changes (within this package; PyTorch's version is recorded in every result.json instead),
    and not with comments, docstrings or layout."""
    script, package_dir = Path(script).resolve(), Path(package_dir).resolve()
    h = hashlib.sha256()
    for path in sources(script, package_dir):
        # by name, not by place: the same code in another clone gives the same hash
        name = path.name if path == script else str(path.relative_to(package_dir.parent))
        h.update(name.encode() + b"\0" + _code_only(path.read_text()) + b"\0")
    return h.hexdigest()[:16]

