"""A submission that kills its grading worker is charged alone, never its neighbours.

The trusted side can crash (an instructor's hidden test calling os._exit, the worker
running out of memory). The pool then fails every unfinished submission, queued ones too;
only those a worker had started may be charged, each graded alone to find out.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import hello_class, require_isolation

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
    crasher = root / "submissions" / "s01.ipynb"
    nb = nbformat.read(crasher, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("CRASH_GRADER = True"))
    nbformat.write(nb, crasher)
    return root


@pytest.mark.slow
def test_only_the_crashing_submission_is_charged(tmp_path: Path) -> None:
    from autograder.sandbox.local import bwrap_works

    require_isolation(bwrap_works(), "bubblewrap")
    root = _course(tmp_path / "course", students=8)
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
    assert done.returncode == 1, done.stdout + done.stderr  # one submission failed
    db = sqlite3.connect(root / "gradebook.db")
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
