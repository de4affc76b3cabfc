"""Crash safety: `autograder grade` killed with SIGKILL at random moments, then rerun.

In the end every submission is graded exactly once (one attempt row each, all current,
no duplicates, no half-written rows), the database passes its integrity check, and no
sandbox process survives its grader.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import hello_class

KILLS = 6
STUDENTS = 40


def _course(root: Path) -> Path:
    # Different content per student (different hashes); some wrong, one slow.
    bodies = ["return torch.clamp(x, min=0)" if i % 3 else "return x" for i in range(STUDENTS)]
    bodies[5] = "import time; time.sleep(0.5); return torch.clamp(x, min=0)"
    return hello_class(root, bodies)


MARKER = f"AUTOGRADER_CRASH_TEST={os.getpid()}"  # in the environment of our graders


def _grade(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "AUTOGRADER_CRASH_TEST": str(os.getpid())},
    )


def _read(pid: int, name: str) -> bytes:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    stat = _read(pid, "stat").decode(errors="replace")
    return int(stat.rsplit(")", 1)[1].split()[1]) if ")" in stat else 0


def _sandbox_part(pid: int) -> bool:
    cmd = _read(pid, "cmdline")
    return any(x in cmd for x in (b"bwrap", b"autograder_runtime", b"prlimit", b"/bin/sh"))


def _processes(marker: str) -> set[int]:
    """Processes of our graders (their environment holds `marker`), and orphaned sandboxes:
    runtime processes no live grader owns any more (other test runs' sandboxes have one)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        if marker.encode() in _read(pid, "environ"):
            found.add(pid)
        elif b"autograder_runtime" in _read(pid, "cmdline"):
            ancestor = _parent(pid)
            while ancestor > 1 and _sandbox_part(ancestor):
                ancestor = _parent(ancestor)
            if ancestor <= 1:
                found.add(pid)
    return found


@pytest.mark.slow
def test_sigkill_at_any_moment_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    root = _course(tmp_path / "course")
    before = _processes(MARKER)
    rng = random.Random(7)
    kills = 0
    for _ in range(KILLS):
        proc = _grade(root)
        time.sleep(rng.uniform(0.3, 4.0))
        if proc.poll() is not None:
            break  # finished before the kill
        os.killpg(proc.pid, signal.SIGKILL)  # the grader and its workers, mid-batch
        proc.wait()
        kills += 1
    final = _grade(root)
    assert final.wait(timeout=600) == 0
    db = sqlite3.connect(root / "gradebook.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute(
        "SELECT student_id, COUNT(*), SUM(current) FROM attempts GROUP BY student_id"
    ).fetchall()
    assert sorted(r[0] for r in rows) == [f"s{i:02d}" for i in range(STUDENTS)]
    assert all(count == 1 and current == 1 for _, count, current in rows), rows
    # Every attempt is whole: its question rows are all there.
    orphans = db.execute(
        "SELECT a.student_id FROM attempts a LEFT JOIN question_scores q ON q.attempt_id = a.id "
        "GROUP BY a.id HAVING COUNT(q.question_id) != 2"
    ).fetchall()
    assert orphans == []
    scores = dict(db.execute("SELECT student_id, score FROM attempts"))
    assert scores["s00"] == 1.0 and scores["s01"] == 3.0  # wrong relu keeps the MCQ point
    # Nothing of the killed runs is left running.
    time.sleep(1)
    assert _processes(MARKER) - before == set()
    assert kills >= 1, "the batch finished before any kill; raise STUDENTS"
    print(f"{kills} SIGKILLs mid-batch, {STUDENTS} submissions, each graded exactly once")
    shutil.rmtree(root, ignore_errors=True)


def test_a_second_grade_refuses_while_one_runs(tmp_path: Path) -> None:
    root = _course(tmp_path / "course")
    first = _grade(root)
    try:
        time.sleep(2.0)
        second = subprocess.run(
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
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if first.poll() is None:
            assert second.returncode == 2
            assert "another `autograder grade` is running" in second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
