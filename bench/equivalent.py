"""Build the equivalent checks of an assignment: one self-contained Python module.

The module is `checks_harness.py` followed by `setup(DATA)`, where DATA holds, as source
text, the assignment's hidden tests, `autograder/testing.py`, the definitions of the
reference solution and the question table. nbgrader's hidden test cells, otter's test
files and the floor all run this same module, so they check exactly what our hidden tests
check (see checks_harness.py for what is and is not reproduced).
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path
from typing import Any

import autograder.testing
from autograder.course import Assignment
from autograder.grader.reference import reference_file
from autograder.notebook import read_notebook, to_python

HARNESS = Path(__file__).with_name("checks_harness.py")
FAKE_MODULES = [
    "pytest",
    "autograder",
    "autograder.grader",
    "autograder.grader.proxy",
    "autograder.testing",
]


class NotReproducible(Exception):
    """The hidden tests use something the equivalent checks cannot reproduce."""


def module_name(assignment: str) -> str:
    return "bench_checks_" + re.sub(r"\W", "_", assignment)


def hidden_test_files(assignment: Assignment) -> list[Path]:
    folder = assignment.hidden_tests
    if (folder / "conftest.py").exists():
        raise NotReproducible(f"{folder}/conftest.py: fixtures of a conftest are not reproduced")
    files = sorted(
        p for p in folder.rglob("*.py") if p.name.startswith("test_") or p.stem.endswith("_test")
    )
    if not files:
        raise NotReproducible(f"{folder}: no test files")
    return files


def _reference_cells(assignment: Assignment) -> list[str]:
    path = reference_file(assignment.reference_folder)
    if path.suffix == ".py":
        return [path.read_text(encoding="utf-8")]
    return [to_python(c.source) for c in read_notebook(path).cells]


def _has_call(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def _targets(node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign | ast.AnnAssign):
        return _targets(node)
    return set()


def reference_definitions(assignment: Assignment, used: set[str]) -> str:
    """The reference solution without its self-tests: what an instructor would paste into a
    hidden test cell. Kept: imports, functions, classes, assignments of names the tests read
    (`reference.NAME`), and constants (assignments without calls that use only names kept
    before them)."""
    kept: list[str] = []
    defined = set(dir(builtins))
    for source in _reference_cells(assignment):
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise NotReproducible(f"the reference solution does not parse: {exc}") from None
        for node in tree.body:
            keep = isinstance(
                node,
                ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
            )
            if isinstance(node, ast.Assign | ast.AnnAssign):
                loads = {
                    n.id
                    for n in ast.walk(node.value or ast.Constant(None))
                    if isinstance(n, ast.Name)
                }
                keep = bool(_targets(node) & used) or (not _has_call(node) and loads <= defined)
            if isinstance(node, ast.Try):
                keep = all(isinstance(n, ast.Import | ast.ImportFrom) for n in node.body)
                if keep:
                    defined |= {d for n in node.body for d in _defined(n)}
            if keep:
                kept.append(ast.unparse(node))
                defined |= _defined(node)
    return "\n\n".join(kept) + "\n"


def build(assignment: Assignment) -> str:
    """The checks module's source."""
    files = hidden_test_files(assignment)
    tests = [(str(p.relative_to(assignment.hidden_tests)), p.read_text("utf-8")) for p in files]
    used = {m for _, src in tests for m in re.findall(r"\breference\.(\w+)", src)}
    spec = assignment.spec
    data: dict[str, Any] = {
        "name": spec.name,
        "seed": spec.seed,
        "fake_modules": FAKE_MODULES,
        "testing": Path(autograder.testing.__file__).read_text(encoding="utf-8"),
        "reference": reference_definitions(assignment, used),
        "tests": tests,
        "questions": [
            {
                "id": q.id,
                "kind": q.kind.value,
                "points": q.points,
                "tests": list(q.tests),
                "choices": list(q.choices),
                "answer": q.answer,
                "rtol": q.rtol,
                "atol": q.atol,
            }
            for q in spec.questions
        ],
    }
    harness = HARNESS.read_text(encoding="utf-8")
    return f"{harness}\n\n# generated by bench/equivalent.py\n_DATA = {data!r}\nsetup(_DATA)\n"


def loader(assignment: str, source: str) -> str:
    """Python statements that load the checks module once per process (cached in sys.modules)
    and bind it to `_bench_checks`: the head of nbgrader's first test cell and of every otter
    test file."""
    name = module_name(assignment)
    return (
        "import sys as _bench_sys\n"
        "import types as _bench_types\n"
        f"if {name!r} not in _bench_sys.modules:\n"
        f"    _bench_m = _bench_types.ModuleType({name!r})\n"
        f"    _bench_sys.modules[{name!r}] = _bench_m\n"
        "    try:\n"
        f"        exec(compile({source!r}, '<bench checks>', 'exec'), _bench_m.__dict__)\n"
        "    except BaseException:\n"
        f"        del _bench_sys.modules[{name!r}]\n"
        "        raise\n"
        f"_bench_checks = _bench_sys.modules[{name!r}]\n"
    )


def call(assignment: str, key: str, namespace: str) -> str:
    """One check as a Python statement (the module must be loaded already)."""
    name = module_name(assignment)
    return f"__import__('sys').modules[{name!r}].run({key!r}, {namespace})\n"
