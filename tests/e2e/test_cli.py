"""End to end through the CLI: the example class graded, resumed, exported, reported."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.e2e.attempts import note

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = json.loads((Path(__file__).parent / "perceptron_expected.json").read_text())


def autograder(*args: str, course: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args, "--course", str(course)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example course with the sample class graded once (--jobs 2)."""
    root = tmp_path_factory.mktemp("course")
    for part in ("assignments/perceptron", "reference_solutions/perceptron", "examples/perceptron"):
        shutil.copytree(ROOT / part, root / part)
    done = autograder(
        "grade", "perceptron", str(root / "examples/perceptron"), "--jobs", "2", course=root
    )
    assert done.returncode == 1, done.stderr  # some samples are broken on purpose
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_sample_class_scores_match_expected(course: Path) -> None:
    out = course / "grades.csv"
    assert autograder("export", "perceptron", "--out", str(out), course=course).returncode == 0
    rows = {r["student_id"]: r for r in read_csv(out)}
    assert list(next(iter(rows.values()))) == [
        "student_id",
        "predict",
        "train",
        "and_weights",
        "linear_limit",
        "xor_single_layer",
        "xor_explain",
        "score",
        "max_score",
        "status",
    ]
    assert set(rows) == {k for k in EXPECTED if not k.startswith("_")}
    for student, want in EXPECTED.items():
        if student.startswith("_"):
            continue
        row = rows[student]
        why = note(course, "perceptron", student)
        assert row["status"] == want["status"], (row, why)
        for qid, points in want["questions"].items():
            assert float(row[qid]) == pytest.approx(points), (qid, row, want.get("why"), why)


@pytest.mark.slow
def test_rerun_resumes_and_changed_content_is_regraded(course: Path) -> None:
    again = autograder("grade", "perceptron", str(course / "examples/perceptron"), course=course)
    assert "0 graded now" in again.stdout, again.stdout
    # A student resubmits: only that notebook is graded again.
    target = course / "examples/perceptron" / "tess.ipynb"
    nb = nbformat.read(course / "reference_solutions/perceptron/perceptron.ipynb", as_version=4)
    nbformat.write(nb, target)
    third = autograder("grade", "perceptron", str(course / "examples/perceptron"), course=course)
    assert "1 graded now" in third.stdout, third.stdout
    rows = {r["student_id"]: r for r in read_csv(_export(course))}
    assert float(rows["tess"]["predict"]) == 3


def _export(course: Path) -> Path:
    out = course / "exports" / "perceptron.csv"
    assert autograder("export", "perceptron", course=course).returncode == 0
    return out


@pytest.mark.slow
def test_reports_are_written_per_student(course: Path) -> None:
    done = autograder("report", "perceptron", course=course)
    assert done.returncode == 0, done.stderr
    folder = course / "reports" / "perceptron"
    assert (folder / "summary.html").is_file()
    assert (folder / "alice.html").is_file() and (folder / "dan.md").is_file()
    feedback = (folder / "lena.md").read_text()
    assert "def test_" not in feedback and "reference." not in feedback


@pytest.mark.slow
def test_publish_writes_release_without_secrets(course: Path) -> None:
    done = autograder("publish", "perceptron", course=course)
    assert done.returncode == 0, done.stdout + done.stderr
    release = course / "release" / "perceptron"
    names = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert "perceptron.ipynb" in names
    assert not any("hidden" in n or "reference" in n for n in names)
    spec = json.loads((release / "assignment.json").read_text())
    assert all("answer" not in q for q in spec["questions"])
    # The student side: the public checks fail on the untouched template.
    check = subprocess.run(
        [sys.executable, "-m", "autograder", "check", str(release / "perceptron.ipynb")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 1 and "FAIL" in check.stdout, check.stdout + check.stderr


def test_init_publish_grade_export_a_new_course(tmp_path: Path) -> None:
    root = tmp_path / "course"
    assert autograder_init(root).returncode == 0
    assert autograder("publish", "hello", course=root).returncode == 0
    subs = root / "submissions"
    shutil.copy(root / "reference_solutions/hello/hello.ipynb", subs / "ada.ipynb")
    shutil.copy(root / "assignments/hello/hello.ipynb", subs / "bea.ipynb")
    (subs / "cy.ipynb").write_text("{not json")
    graded = autograder("grade", "hello", str(subs), course=root)
    assert graded.returncode == 1  # cy is an error
    rows = {r["student_id"]: r for r in read_csv(_export_hello(root))}
    assert (rows["ada"]["score"], rows["ada"]["status"]) == ("3", "graded")
    assert (rows["bea"]["score"], rows["bea"]["status"]) == ("0", "graded")
    assert rows["cy"]["status"] == "error"


def autograder_init(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", "init", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _export_hello(root: Path) -> Path:
    assert autograder("export", "hello", course=root).returncode == 0
    return root / "exports" / "hello.csv"


def test_second_grade_on_same_course_refuses(tmp_path: Path) -> None:
    from autograder.gradebook import batch_lock

    root = tmp_path / "course"
    assert autograder_init(root).returncode == 0
    with batch_lock(root / "gradebook.db"):
        done = autograder("grade", "hello", str(root / "submissions"), course=root)
    assert done.returncode == 2
    assert "another `autograder grade` is running" in done.stderr


def test_unknown_assignment_is_a_clear_usage_error(tmp_path: Path) -> None:
    root = tmp_path / "course"
    assert autograder_init(root).returncode == 0
    done = autograder("grade", "nope", str(root / "submissions"), course=root)
    assert done.returncode == 2
    assert "no assignment 'nope'" in done.stderr and "hello" in done.stderr


def test_a_zip_grades_like_the_folder(tmp_path: Path) -> None:
    import zipfile

    root = tmp_path / "course"
    assert autograder_init(root).returncode == 0
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(root / "reference_solutions/hello/hello.ipynb", "ada/hello.ipynb")
        zf.write(root / "assignments/hello/hello.ipynb", "bea.ipynb")
    graded = autograder("grade", "hello", str(archive), "--jobs", "2", course=root)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    rows = {r["student_id"]: r for r in read_csv(_export_hello(root))}
    assert (rows["ada"]["relu"], rows["ada"]["relu_range"], rows["ada"]["score"]) == ("2", "1", "3")
    assert rows["bea"]["score"] == "0"
