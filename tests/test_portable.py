"""The suite passes on every CPU: every test that compares bits or bytes carries the `bitwise`
marker, which CI runs a second time under another ATEN_CPU_CAPABILITY (.ci/run), and no test
compares bits with a file made on another machine (those compare within a stated tolerance,
e.g. tests/test_variants.py's assert_same_numbers)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# What an exact comparison looks like in this suite: a call of one of these ...
EXACT_CALLS = {"equal", "assert_frame_equal", "array_equal", "equals"}
# ... or ==, !=, in or not in with an operand that reads bytes or collects them.
BYTES_READERS = ("read_bytes", "lineage_files", "b64encode")


def _marked_bitwise(node: ast.FunctionDef, module: ast.Module) -> bool:
    marks = [ast.unparse(d) for d in node.decorator_list]
    for stmt in module.body:  # pytestmark = [...] or pytestmark = pytest.mark.bitwise
        if isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in stmt.targets):
            marks.append(ast.unparse(stmt.value))
    return any("mark.bitwise" in m for m in marks)


def _compares_exactly(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            name = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", "")
            if name in EXACT_CALLS:
                return True
        operands = [sub.left, *sub.comparators] if isinstance(sub, ast.Compare) else []
        if any(isinstance(o, ast.Constant) and isinstance(o.value, bytes) for o in operands):
            continue  # a file's magic number (b"\x89PNG..."), not a result
        if isinstance(sub, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in sub.ops):
            text = ast.unparse(sub)
            if any(reader in text for reader in BYTES_READERS):
                return True
    return False


def _calls(node: ast.AST) -> set[str]:
    return {sub.func.id for sub in ast.walk(node) if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)}


def exact_tests_without_marker(source: str) -> list[str]:
    """Names of the test functions in ``source`` that compare bits or bytes, themselves or through a
    helper function of the module (a fixture or a `_runs_...` function), without `bitwise`."""
    module = ast.parse(source)
    functions = [n for n in ast.walk(module) if isinstance(n, ast.FunctionDef)]
    helpers = {n.name for n in functions if not n.name.startswith("test_") and _compares_exactly(n)}
    grew = True
    while grew:  # helpers that call helpers
        more = {n.name for n in functions if not n.name.startswith("test_") and _calls(n) & helpers}
        grew = bool(more - helpers)
        helpers |= more
    return [n.name for n in functions if n.name.startswith("test_")
            and (_compares_exactly(n) or _calls(n) & helpers
                 or {a.arg for a in n.args.args} & helpers)  # a fixture that compares
            and not _marked_bitwise(n, module)]


def test_every_test_that_compares_bits_is_marked_bitwise():
    unmarked = {path.name: names for path in sorted(TESTS.glob("test_*.py"))
                if (names := exact_tests_without_marker(path.read_text()))}
    assert not unmarked, f"mark these @pytest.mark.bitwise (CI reruns them under ATEN_CPU_CAPABILITY=default): {unmarked}"


def test_the_scan_finds_an_unmarked_comparison():
    source = '''
import pytest
def test_a(tmp_path):
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
def test_b(x, y):
    assert torch.equal(x, y)
@pytest.mark.bitwise
def test_c(x, y):
    assert torch.equal(x, y)
def test_d(x):
    (x / "a").write_bytes((x / "b").read_bytes()[:10])
    assert x.exists()
def _both_runs(x):
    return _same(x)
def _same(x):
    return (x / "a").read_bytes() == (x / "b").read_bytes()
def test_e(x):
    assert _both_runs(x)
def test_f(_same):
    assert _same
def test_g(x):
    assert (x / "a.png").read_bytes()[1:4] == b"PNG"
'''
    assert exact_tests_without_marker(source) == ["test_a", "test_b", "test_e", "test_f"]
    assert exact_tests_without_marker("import pytest\npytestmark = pytest.mark.bitwise\n" + source) == []


def test_ci_reruns_the_bitwise_tests_under_another_capability():
    ci = (TESTS.parent / ".ci" / "run").read_text()
    assert "ATEN_CPU_CAPABILITY=default python3 -m pytest -m bitwise" in ci
