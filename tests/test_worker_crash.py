"""A submission that kills its grading worker is charged alone, never its neighbours.

The trusted side can crash (an instructor's hidden test calling os._exit, the worker
running out of memory). The pool then fails every unfinished submission, queued ones too;
only those a worker had started may be charged, each graded alone to find out. A grader
that raises (a bug of ours) is given one more try, alone, in a fresh worker.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import INTERNAL_ERROR_HOOK, hello_class, require_isolation

# A hidden test with a fatal bug for one kind of notebook: it takes the worker down.
CRASH_HOOK = """\
import os


def test_zz_crash_hook(student):
    try:
        crash = student.CRASH_GRADER
    except Exception:
        return
    if crash is True:
        os._exit(3)
"""


def _course(root: Path, students: int) -> Path:
    hello_class(root, ["return torch.clamp(x, min=0)"] * students)
    (root / "assignments" / "hello" / "hidden_tests" / "test_crash_hook.py").write_text(CRASH_HOOK)
    _append_cell(root / "submissions" / "s01.ipynb", "CRASH_GRADER = True")
    return root


def _append_cell(notebook: Path, source: str) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, notebook)


def _grade(root: Path) -> tuple[subprocess.CompletedProcess[str], sqlite3.Connection]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            "hello",
            str(root / "submissions"),
            "--course",
            str(root),
            "--sandbox",
            "local",
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return done, sqlite3.connect(root / "gradebook.db")


@pytest.mark.slow
def test_only_the_crashing_submission_is_charged(tmp_path: Path) -> None:
    from autograder.sandbox.local import bwrap_works

    require_isolation(bwrap_works(), "bubblewrap")
    root = _course(tmp_path / "course", students=8)
    done, db = _grade(root)
    assert done.returncode == 1, done.stdout + done.stderr  # one submission failed
    rows = dict(
        db.execute("SELECT student_id, status || ' ' || score FROM attempts WHERE current = 1")
    )
    counts = dict(db.execute("SELECT student_id, COUNT(*) FROM attempts GROUP BY student_id"))
    assert set(rows) == {f"s{i:02d}" for i in range(8)}, rows
    assert all(n == 1 for n in counts.values()), counts
    assert rows.pop("s01").startswith("error"), done.stdout
    message = db.execute("SELECT message FROM attempts WHERE student_id = 's01'").fetchone()[0]
    assert "crash" in message.lower(), message
    assert all(v.startswith("graded") for v in rows.values()), rows


@pytest.mark.slow
def test_an_internal_error_is_tried_again_alone_before_it_is_recorded(tmp_path: Path) -> None:
    from autograder.sandbox.local import bwrap_works

    require_isolation(bwrap_works(), "bubblewrap")
    root = hello_class(tmp_path / "course", ["return torch.clamp(x, min=0)"] * 6)
    markers = tmp_path / "markers"
    markers.mkdir()
    hook = INTERNAL_ERROR_HOOK.format(marker=str(markers))
    (root / "assignments" / "hello" / "hidden_tests" / "test_error_hook.py").write_text(hook)
    for student, mode in (("s01", "once"), ("s02", "always")):
        _append_cell(
            root / "submissions" / f"{student}.ipynb",
            f"INTERNAL_ERROR = {mode!r}\nSTUDENT = {student!r}",
        )
    done, db = _grade(root)
    assert done.returncode == 1, done.stdout + done.stderr  # s02 failed twice
    rows = {
        student: (status, score, message)
        for student, status, score, message in db.execute(
            "SELECT student_id, status, score, message FROM attempts WHERE current = 1"
        )
    }
    assert set(rows) == {f"s{i:02d}" for i in range(6)}, rows
    full = rows["s00"][1]
    status, score, message = rows.pop("s01")
    assert (status, score) == ("graded", full), rows
    assert "second try after an internal error (RuntimeError: a bug in the grader)" in message
    # The batch's summary names it too: the instructor need not regrade it.
    assert "s01: graded on a second try after an internal error" in done.stdout, done.stdout
    status, score, message = rows.pop("s02")
    assert status == "error" and score == 0, message
    assert "internal error while grading (RuntimeError: a bug in the grader)" in message
    assert all(row == ("graded", full, "") for row in rows.values()), rows
    assert sorted(p.name for p in markers.iterdir()) == ["s01", "s02"]
