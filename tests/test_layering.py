"""Imports run one way (STYLE.md): cli -> verbs -> services -> models; the runtime alone."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "autograder"
VERBS = {
    "grade",
    "publish",
    "check",
    "report",
    "export",
    "scaffold",
    "image",
    "manual",
    "course_grade",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m == "autograder" or m.startswith("autograder.")}


def modules(folder: str = "") -> dict[str, set[str]]:
    base = PACKAGE / folder
    return {str(p.relative_to(PACKAGE)): imports_of(p) for p in base.rglob("*.py")}


def test_runtime_imports_nothing_of_the_grader() -> None:
    # The runtime is mounted alone into sandboxes: it must not need the rest of the package.
    for name, deps in modules("runtime").items():
        assert not deps, f"{name} imports {deps}"


def test_sandboxes_know_nothing_of_grading() -> None:
    for name, deps in modules("sandbox").items():
        bad = {d for d in deps if not d.startswith(("autograder.sandbox", "autograder.runtime"))}
        assert not bad, f"{name} imports {bad}"


def test_gradebook_reports_and_exports_do_not_reach_back() -> None:
    for name, deps in {
        **modules("gradebook"),
        "report.py": imports_of(PACKAGE / "report.py"),
        "export.py": imports_of(PACKAGE / "export.py"),
    }.items():
        bad = {
            d
            for d in deps
            if d.startswith(
                ("autograder.grader", "autograder.sandbox", "autograder.runtime", "autograder.cli")
            )
        }
        assert not bad, f"{name} imports {bad}"


def test_nothing_imports_the_cli_and_verbs_do_not_import_verbs() -> None:
    for name, deps in modules().items():
        if name not in ("cli.py", "__main__.py"):
            assert "autograder.cli" not in deps, name
        stem = name.removesuffix(".py")
        if stem in VERBS:
            others = {d for d in deps if d.removeprefix("autograder.") in VERBS - {stem}}
            assert not others, f"verb {stem} imports verbs {others}"
