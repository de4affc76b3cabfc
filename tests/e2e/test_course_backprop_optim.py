"""End to end through the CLI for the backprop and optim labs: publish, grade the samples, export.

For each assignment, a fresh course holds a copy of its spec, template, hidden and public tests,
reference solution and sample submissions (examples/<name>/). `publish` must pass (reference at
full marks, template at zero, mutation testing), and the exported grades of the samples must
match tests/e2e/<name>_expected.json, whose "why" says what each sample does.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.attempts import note

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
NAMES = ("backprop", "optim")
EXPECTED = {name: json.loads((HERE / f"{name}_expected.json").read_text()) for name in NAMES}
QUESTIONS = {
    "backprop": ["linear", "activations", "mse", "sequential", "mlp_params"],
    "optim": ["sgd", "adam", "schedule", "lr_too_high"],
}


def autograder(*args: str, course: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args, "--course", str(course)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


@dataclass
class Graded:
    name: str
    root: Path
    publish: subprocess.CompletedProcess[str]
    grade: subprocess.CompletedProcess[str]
    rows: dict[str, dict[str, str]]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module", params=NAMES)
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Graded:
    """A course with one assignment: published, its sample class graded (--jobs 2), exported."""
    name = request.param
    root = tmp_path_factory.mktemp(f"course-{name}")
    for part in (f"assignments/{name}", f"reference_solutions/{name}", f"examples/{name}"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    publish = autograder("publish", name, "--sandbox", "local", "--jobs", "2", course=root)
    grade = autograder(
        "grade",
        name,
        str(root / "examples" / name),
        "--sandbox",
        "local",
        "--jobs",
        "2",
        course=root,
    )
    out = root / "grades.csv"
    export = autograder("export", name, "--out", str(out), course=root)
    assert export.returncode == 0, export.stdout + export.stderr
    rows = {r["student_id"]: r for r in read_csv(out)}
    return Graded(name, root, publish, grade, rows)


@pytest.mark.slow
def test_publish_passes(graded: Graded) -> None:
    """Reference at full marks, untouched template at zero, enough mutants caught."""
    assert graded.publish.returncode == 0, graded.publish.stdout + graded.publish.stderr
    release = graded.root / "release" / graded.name
    names = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert f"{graded.name}.ipynb" in names
    assert not any("hidden" in n or "reference" in n for n in names), names


@pytest.mark.slow
def test_sample_class_scores_match_expected(graded: Graded) -> None:
    # every sample is a notebook that runs (some cells fail on purpose): none is an error
    assert graded.grade.returncode == 0, graded.grade.stdout + graded.grade.stderr
    expected = {k: v for k, v in EXPECTED[graded.name].items() if not k.startswith("_")}
    assert set(graded.rows) == set(expected)
    columns = list(next(iter(graded.rows.values())))
    assert columns == ["student_id", *QUESTIONS[graded.name], "score", "max_score", "status"]
    wrong = []
    for student, want in expected.items():
        row = graded.rows[student]
        if row["status"] != want["status"]:
            why = note(graded.root, graded.name, student)
            wrong.append(f"status {row['status']}, expected {want['status']}; {why}")
        for qid, points in want["questions"].items():
            if float(row[qid]) != pytest.approx(points, abs=1e-4):
                wrong.append(f"{student}.{qid}: {row[qid]}, expected {points} ({want['why']})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
@pytest.mark.parametrize("graded", ["backprop"], indirect=True)
def test_forbidden_autograd_is_named_in_feedback(graded: Graded) -> None:
    """backprop's gus calls Tensor.backward in Linear.backward: the feedback says so."""
    done = autograder("report", graded.name, course=graded.root)
    assert done.returncode == 0, done.stderr
    feedback = (graded.root / "reports" / graded.name / "gus.md").read_text()
    assert "torch.Tensor.backward" in feedback, feedback
    assert "def test_" not in feedback and "reference." not in feedback
