"""The gradebook: storing attempts, reading them back, locking, and refusing bad files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from autograder.errors import GradebookError
from autograder.gradebook import SCHEMA_VERSION, Gradebook, batch_lock, connect, lock_path
from autograder.gradebook import store as store_module
from autograder.results import (
    CellRecord,
    Outcome,
    QuestionResult,
    Status,
    SubmissionResult,
    TestResult,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def full_result(student_id: str = "alice", content_hash: str = "sha256:aaa") -> SubmissionResult:
    """A result with every field set, including a question waiting for manual grading."""
    return SubmissionResult(
        student_id=student_id,
        path=f"submissions/{student_id}.ipynb",
        content_hash=content_hash,
        status=Status.GRADED,
        message="ran 12 cells",
        questions=[
            QuestionResult("linear", "code", 2.5, 3.0, feedback="2 of 3 checks passed"),
            QuestionResult("why_relu", "text", None, 2.0, answer="Because it is <b>cheap</b>"),
            QuestionResult("pick", "choice", 1.0, 1.0, answer="b"),
        ],
        tests=[
            TestResult(
                "test_linear_shape", "linear", Outcome.PASSED, "", "Shape is right", 1.0, 0.25
            ),
            TestResult(
                "test_linear_values[3]",
                "linear",
                Outcome.FAILED,
                "expected 1, got 2",
                "Values match",
                2.0,
                1.5,
            ),
            TestResult("test_linear_big", "linear", Outcome.TIMEOUT, "took over 60 s"),
            TestResult("test_unmapped", None, Outcome.ERROR, "fixture broke"),
            TestResult("test_gpu", "linear", Outcome.SKIPPED),
        ],
        cells=[
            CellRecord(4, "ZeroDivisionError: division by zero", "Traceback ...\nZeroError"),
            CellRecord(9, "skipped: timed out"),
        ],
        stdout="epoch 1 loss 0.3\n",
        stderr="UserWarning: something\n",
        sandbox="local",
        duration_s=12.75,
        peak_memory_mb=812.5,
    )


@pytest.fixture
def gradebook_path(tmp_path: Path) -> Path:
    return tmp_path / "gradebook.db"


@pytest.fixture
def gradebook(gradebook_path: Path) -> Iterator[Gradebook]:
    with Gradebook.open(gradebook_path) as gb:
        yield gb


def test_round_trip_keeps_every_field(gradebook: Gradebook) -> None:
    result = full_result()
    attempt_id = gradebook.record("hw1", result, max_score=6.0)

    [stored] = gradebook.current("hw1")
    assert stored.result == result
    assert stored.attempt_id == attempt_id
    assert stored.attempt == 1
    assert stored.max_score == 6.0
    assert stored.result.questions[1].score is None
    graded_at = datetime.fromisoformat(stored.graded_at)
    assert graded_at.utcoffset() == timedelta(0)


def test_enums_come_back_as_enums(gradebook: Gradebook) -> None:
    gradebook.record("hw1", full_result(), 6.0)
    [stored] = gradebook.current("hw1")
    assert stored.result.status is Status.GRADED
    assert [t.outcome for t in stored.result.tests] == [
        Outcome.PASSED,
        Outcome.FAILED,
        Outcome.TIMEOUT,
        Outcome.ERROR,
        Outcome.SKIPPED,
    ]
    assert all(isinstance(t.outcome, Outcome) for t in stored.result.tests)


def test_minimal_result_round_trips(gradebook: Gradebook) -> None:
    result = SubmissionResult("bob", "bob.ipynb", "", Status.ERROR, "not a notebook: invalid JSON")
    gradebook.record("hw1", result, 6.0)
    [stored] = gradebook.current("hw1")
    assert stored.result == result
    assert stored.result.peak_memory_mb is None


def test_regrade_keeps_history_and_one_current(gradebook: Gradebook, gradebook_path: Path) -> None:
    first = gradebook.record("hw1", full_result(content_hash="h1"), 6.0)
    second = gradebook.record("hw1", full_result(content_hash="h2"), 6.0)
    gradebook.record("hw1", full_result("bob"), 6.0)

    history = gradebook.history("hw1", "alice")
    assert [s.attempt_id for s in history] == [first, second]
    assert [s.attempt for s in history] == [1, 2]
    assert [s.result.content_hash for s in history] == ["h1", "h2"]

    current = gradebook.current("hw1")
    assert [(s.result.student_id, s.attempt) for s in current] == [("alice", 2), ("bob", 1)]
    with sqlite3.connect(gradebook_path) as raw:
        rows = raw.execute(
            "SELECT id FROM attempts WHERE student_id = 'alice' AND current = 1"
        ).fetchall()
    assert rows == [(second,)]


def test_schema_refuses_two_current_attempts(gradebook: Gradebook, gradebook_path: Path) -> None:
    gradebook.record("hw1", full_result(), 6.0)
    raw = sqlite3.connect(gradebook_path)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute(
            "INSERT INTO attempts (assignment, student_id, path, content_hash, status, score,"
            " max_score, graded_at, current) VALUES"
            " ('hw1', 'alice', 'x', 'y', 'graded', 0, 6, '2024-01-01T00:00:00+00:00', 1)"
        )
    raw.close()


def test_current_is_sorted_and_per_assignment(gradebook: Gradebook) -> None:
    for student in ("carol", "alice", "bob"):
        gradebook.record("hw1", full_result(student), 6.0)
    gradebook.record("hw2", full_result("zed"), 4.0)

    assert [s.result.student_id for s in gradebook.current("hw1")] == ["alice", "bob", "carol"]
    assert [s.result.student_id for s in gradebook.current("hw2")] == ["zed"]
    assert gradebook.current("hw3") == []
    assert gradebook.assignments() == ["hw1", "hw2"]


def test_current_hash(gradebook: Gradebook) -> None:
    assert gradebook.current_hash("hw1", "alice") is None
    gradebook.record("hw1", full_result(content_hash="h1"), 6.0)
    assert gradebook.current_hash("hw1", "alice") == "h1"
    gradebook.record("hw1", full_result(content_hash="h2"), 6.0)
    assert gradebook.current_hash("hw1", "alice") == "h2"
    assert gradebook.current_hash("hw2", "alice") is None


def test_failure_midway_writes_nothing(
    gradebook: Gradebook, gradebook_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = gradebook.record("hw1", full_result(content_hash="h1"), 6.0)

    def crash(*args: object) -> None:
        raise RuntimeError("disk pulled out")

    monkeypatch.setattr(store_module, "_insert_tests", crash)
    with pytest.raises(RuntimeError, match="disk pulled out"):
        gradebook.record("hw1", full_result(content_hash="h2"), 6.0)

    assert [s.attempt_id for s in gradebook.history("hw1", "alice")] == [first]
    assert gradebook.current_hash("hw1", "alice") == "h1"
    with sqlite3.connect(gradebook_path) as raw:
        attempts = raw.execute("SELECT count(*) FROM attempts").fetchone()[0]
        questions = raw.execute("SELECT count(*) FROM question_scores").fetchone()[0]
    assert (attempts, questions) == (1, 3)
    # The connection is still usable after the rollback.
    monkeypatch.undo()
    gradebook.record("hw1", full_result(content_hash="h3"), 6.0)
    assert gradebook.current_hash("hw1", "alice") == "h3"


def test_duplicate_question_ids_are_refused_whole(gradebook: Gradebook) -> None:
    result = full_result()
    result.questions.append(QuestionResult("pick", "choice", 0.0, 1.0))
    with pytest.raises(GradebookError, match="nothing was written"):
        gradebook.record("hw1", result, 6.0)
    assert gradebook.current("hw1") == []


def test_connection_settings(gradebook_path: Path) -> None:
    conn = connect(gradebook_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        assert meta["schema_version"] == str(SCHEMA_VERSION)
    finally:
        conn.close()


def test_reopening_keeps_data(gradebook_path: Path) -> None:
    with Gradebook.open(gradebook_path) as gb:
        gb.record("hw1", full_result(), 6.0)
    with Gradebook.open(gradebook_path) as gb:
        assert [s.result for s in gb.current("hw1")] == [full_result()]


def test_newer_schema_is_refused(gradebook_path: Path) -> None:
    Gradebook.open(gradebook_path).close()
    with sqlite3.connect(gradebook_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(GradebookError) as info:
        Gradebook.open(gradebook_path)
    message = str(info.value)
    assert str(gradebook_path) in message
    assert "written by a newer autograder" in message
    assert "upgrade autograder" in message


def test_garbage_file_is_refused_by_name(gradebook_path: Path) -> None:
    gradebook_path.write_bytes(b"this is a spreadsheet, not a gradebook\n" * 100)
    with pytest.raises(GradebookError) as info:
        Gradebook.open(gradebook_path)
    message = str(info.value)
    assert f"gradebook {gradebook_path} is damaged or not a gradebook" in message
    assert "restore it from a backup" in message


def test_corrupt_pages_are_refused_by_name(gradebook_path: Path) -> None:
    with Gradebook.open(gradebook_path) as gb:
        gb.record("hw1", full_result(), 6.0)
    data = bytearray(gradebook_path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, past the file header
    gradebook_path.write_bytes(bytes(data))
    with (
        pytest.raises(GradebookError, match="is damaged or not a gradebook") as info,
        Gradebook.open(gradebook_path) as gb,
    ):
        gb.current("hw1")
    assert str(gradebook_path) in str(info.value)


def test_other_sqlite_database_is_refused(gradebook_path: Path) -> None:
    with sqlite3.connect(gradebook_path) as raw:
        raw.execute("CREATE TABLE grades (x)")
    with pytest.raises(GradebookError, match="not an autograder gradebook"):
        Gradebook.open(gradebook_path)


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "gradebook.db"
    with pytest.raises(GradebookError, match="check that its folder exists"):
        Gradebook.open(path)


# --- the batch lock ----------------------------------------------------------------------


def test_lock_refuses_a_second_holder(gradebook_path: Path) -> None:
    with batch_lock(gradebook_path) as held:
        assert held == lock_path(gradebook_path) == gradebook_path.with_name("gradebook.db.lock")
        with pytest.raises(GradebookError) as info, batch_lock(gradebook_path):
            pass
    message = str(info.value)
    assert message.startswith("another `autograder grade` is running on this course")
    assert str(held) in message
    assert f"held by process {os.getpid()}" in message
    assert "wait for it to finish" in message


def test_lock_is_released_on_exit(gradebook_path: Path) -> None:
    with batch_lock(gradebook_path):
        pass
    with batch_lock(gradebook_path):
        pass


def test_lock_is_released_on_error(gradebook_path: Path) -> None:
    with pytest.raises(ValueError), batch_lock(gradebook_path):
        raise ValueError("boom")
    with batch_lock(gradebook_path):
        pass


HOLD_LOCK = """
import sys
from pathlib import Path
from autograder.gradebook import batch_lock
with batch_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_lock_across_processes_and_released_when_holder_dies(gradebook_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(gradebook_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(GradebookError, match=f"held by process {holder.pid}"),
            batch_lock(gradebook_path),
        ):
            pass
    finally:
        holder.kill()  # no clean exit: the kernel must release the flock
        holder.communicate(timeout=10)
    with batch_lock(gradebook_path):
        pass


def test_undecodable_text_is_stored_escaped(gradebook: Gradebook) -> None:
    # A Latin-1 file name decodes with surrogateescape; a notebook's JSON may hold "\ud800".
    # SQLite refuses both; the attempt must still be recorded, with the bytes shown escaped.
    result = SubmissionResult(
        "mallory",
        "mallory/r\udce9sum\udce9.ipynb",
        "sha256:bbb",
        Status.GRADED,
        "cell 3 printed \ud800",
        questions=[QuestionResult("why", "text", None, 2.0, answer="odd \udfff answer")],
        tests=[TestResult("test_x", "why", Outcome.FAILED, "got '\ud83d'")],
        cells=[CellRecord(1, "Error \udc80", "tb \udc80")],
        stdout="out \udcff",
        stderr="err \ud800",
    )
    gradebook.record("hw1", result, 2.0)
    [stored] = gradebook.current("hw1")
    assert stored.result.path == "mallory/r\\xe9sum\\xe9.ipynb"
    assert stored.result.message == "cell 3 printed \\ud800"
    assert stored.result.questions[0].answer == "odd \\udfff answer"
    assert stored.result.tests[0].message == "got '\\ud83d'"
    assert stored.result.cells[0].error == "Error \\x80"
    assert (stored.result.stdout, stored.result.stderr) == ("out \\xff", "err \\ud800")
