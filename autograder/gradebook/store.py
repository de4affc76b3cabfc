"""Grading attempts in the gradebook: record them, read them back; the batch lock of `grade`.

Every grading of a submission is a new row in `attempts` (history is never rewritten);
the newest one per student and assignment has `current = 1`. Reports and exports read
the current attempts. Nothing here knows about sandboxes or graders: results come in
as `SubmissionResult` values and go out the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from autograder.display import storable
from autograder.errors import GradebookError
from autograder.gradebook import changes as changes_module
from autograder.gradebook.changes import AUTOGRADER, ChangeKind, ScoreChange, SetScore
from autograder.gradebook.schema import connect, sqlite_errors, transaction
from autograder.results import (
    CellRecord,
    Outcome,
    QuestionResult,
    Status,
    SubmissionResult,
    TestResult,
)

LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class StoredResult:
    """A SubmissionResult read back from the gradebook, with its bookkeeping."""

    result: SubmissionResult
    attempt_id: int
    attempt: int  # 1 for the first attempt of this student on this assignment
    graded_at: str  # ISO-8601, UTC
    max_score: float  # the assignment's max score at grading time


# Attempts with their attempt number (1, 2, ... per student), filtered afterwards so that
# the number counts every attempt, not only the ones selected.
_CURRENT_ATTEMPTS = """
    SELECT * FROM (
        SELECT attempts.*,
               ROW_NUMBER() OVER (PARTITION BY student_id ORDER BY id) AS attempt
        FROM attempts WHERE assignment = ?
    ) WHERE current = 1 ORDER BY student_id
"""
_CURRENT_IDS = "SELECT id FROM attempts WHERE assignment = ? AND current = 1"

_HISTORY_ATTEMPTS = """
    SELECT attempts.*, ROW_NUMBER() OVER (ORDER BY id) AS attempt
    FROM attempts WHERE assignment = ? AND student_id = ? ORDER BY id
"""
_HISTORY_IDS = "SELECT id FROM attempts WHERE assignment = ? AND student_id = ?"


class Gradebook:
    """The course's SQLite gradebook. Open with `Gradebook.open(path)`; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Gradebook:
        """Open the gradebook at `path`, creating or migrating it as needed."""
        return cls(connect(path), path)

    def close(self) -> None:
        """Close the connection; the gradebook cannot be used afterwards."""
        self._conn.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def current_hash(self, assignment: str, student_id: str) -> str | None:
        """Content hash of the student's current attempt, or None if never graded."""
        with sqlite_errors(self.path, f"looking up {student_id!r} in {assignment!r}"):
            row = self._conn.execute(
                "SELECT content_hash FROM attempts"
                " WHERE assignment = ? AND student_id = ? AND current = 1",
                (assignment, student_id),
            ).fetchone()
        return None if row is None else str(row["content_hash"])

    def record(self, assignment: str, result: SubmissionResult, max_score: float) -> int:
        """Store one grading attempt and make it the student's current one; returns its id.

        One transaction: the attempt, its question, test and cell rows, the demotion of
        the previous current attempt and the audit rows are written together or not at all.
        Scores a person set on the previous attempt are carried over where what they
        judged is unchanged (see `changes.py`); they are written into `result` as well, so
        the caller sees what was stored. Score changes against the previous attempt go to
        the audit trail.
        """
        doing = f"recording {result.student_id!r} for {assignment!r}"
        with sqlite_errors(self.path, doing), transaction(self._conn, "IMMEDIATE") as conn:
            previous, old_questions = changes_module.previous_attempt(
                conn, assignment, result.student_id
            )
            carried = (
                changes_module.carry_forward(previous, old_questions, result) if previous else []
            )
            conn.execute(
                "UPDATE attempts SET current = 0"
                " WHERE assignment = ? AND student_id = ? AND current = 1",
                (assignment, result.student_id),
            )
            attempt_id = _insert_attempt(conn, assignment, result, max_score)
            _insert_questions(conn, attempt_id, result.questions)
            _insert_tests(conn, attempt_id, result.tests)
            _insert_cells(conn, attempt_id, result.cells)
            if previous is not None:
                self._audit_regrade(
                    conn, assignment, attempt_id, previous, old_questions, result, carried
                )
        return attempt_id

    def _audit_regrade(
        self,
        conn: sqlite3.Connection,
        assignment: str,
        attempt_id: int,
        previous: sqlite3.Row,
        old_questions: list[sqlite3.Row],
        result: SubmissionResult,
        carried: list[tuple[str, float | None, float | None, str, str]],
    ) -> None:
        now = _utc_now()
        changed = (
            "same notebook"
            if previous["content_hash"] == result.content_hash
            else ("new submission")
        )
        carried_ids = {qid for qid, *_ in carried}
        for qid, old, new in changes_module.regrade_changes(old_questions, result):
            if qid not in carried_ids:
                changes_module.insert_change(
                    conn,
                    assignment,
                    ScoreChange(
                        attempt_id,
                        result.student_id,
                        qid,
                        ChangeKind.REGRADE,
                        old,
                        new,
                        AUTOGRADER,
                        f"regraded ({changed})",
                        now,
                    ),
                )
        for qid, old, new, grader, why in carried:
            changes_module.insert_change(
                conn,
                assignment,
                ScoreChange(
                    attempt_id,
                    result.student_id,
                    qid,
                    ChangeKind.CARRIED,
                    old,
                    new,
                    grader,
                    f"kept on regrade: {why}",
                    now,
                ),
            )

    def set_scores(
        self,
        assignment: str,
        requests: Sequence[SetScore],
        *,
        kind: ChangeKind,
        grader: str,
        reason: str,
    ) -> list[ScoreChange]:
        """Set question scores on current attempts by hand, all or none; returns the changes.

        Each change is audited; an attempt whose last manual question gets its score turns
        from `pending` to `graded`. Raises `ScoresRefused` (nothing written) when a request
        does not fit: see `changes.apply_scores`.
        """
        doing = f"setting {len(requests)} score(s) in {assignment!r}"
        with sqlite_errors(self.path, doing), transaction(self._conn, "IMMEDIATE") as conn:
            return changes_module.apply_scores(
                conn, assignment, requests, kind, grader, reason, _utc_now()
            )

    def score_changes(self, assignment: str, student_id: str) -> list[ScoreChange]:
        """The audit trail of one student on `assignment`, oldest first."""
        with sqlite_errors(self.path, f"reading the score changes of {student_id!r}"):
            return changes_module.read_changes(self._conn, assignment, student_id)

    def current(self, assignment: str) -> list[StoredResult]:
        """The current attempt of every student graded on `assignment`, sorted by student id."""
        return self._load(_CURRENT_ATTEMPTS, _CURRENT_IDS, (assignment,), f"reading {assignment!r}")

    def history(self, assignment: str, student_id: str) -> list[StoredResult]:
        """Every attempt of one student on `assignment`, oldest first."""
        return self._load(
            _HISTORY_ATTEMPTS,
            _HISTORY_IDS,
            (assignment, student_id),
            f"reading the history of {student_id!r} in {assignment!r}",
        )

    def assignments(self) -> list[str]:
        """Names of the assignments with at least one attempt, sorted."""
        with sqlite_errors(self.path, "listing assignments"):
            rows = self._conn.execute(
                "SELECT DISTINCT assignment FROM attempts ORDER BY assignment"
            ).fetchall()
        return [str(row["assignment"]) for row in rows]

    def _load(
        self, attempts_sql: str, ids_sql: str, params: tuple[str, ...], doing: str
    ) -> list[StoredResult]:
        # One read transaction: a concurrent `record` cannot slip between the queries.
        with sqlite_errors(self.path, doing), transaction(self._conn, "DEFERRED") as conn:
            attempts = conn.execute(attempts_sql, params).fetchall()
            children = {
                table: _group(
                    conn.execute(
                        f"SELECT * FROM {table} WHERE attempt_id IN ({ids_sql})"
                        " ORDER BY attempt_id, position",
                        params,
                    )
                )
                for table in ("question_scores", "test_results", "cell_errors")
            }
        return [_stored(row, children) for row in attempts]


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _insert_attempt(
    conn: sqlite3.Connection, assignment: str, result: SubmissionResult, max_score: float
) -> int:
    cursor = conn.execute(
        "INSERT INTO attempts (assignment, student_id, path, content_hash, status, message,"
        " score, max_score, sandbox, duration_s, peak_memory_mb, stdout, stderr, graded_at,"
        " current, submitted_at, late_minutes, penalty_percent)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        (
            assignment,
            result.student_id,
            storable(result.path),
            result.content_hash,
            result.status.value,
            storable(result.message),
            result.score,
            max_score,
            result.sandbox,
            result.duration_s,
            result.peak_memory_mb,
            storable(result.stdout),
            storable(result.stderr),
            _utc_now(),
            result.submitted_at,
            result.late_minutes,
            result.penalty_percent,
        ),
    )
    assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
    return cursor.lastrowid


def _insert_questions(
    conn: sqlite3.Connection, attempt_id: int, questions: Sequence[QuestionResult]
) -> None:
    conn.executemany(
        "INSERT INTO question_scores (attempt_id, position, question_id, kind, score,"
        " max_score, feedback, answer, graded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                attempt_id,
                i,
                q.question_id,
                q.kind,
                q.score,
                q.max_score,
                storable(q.feedback),
                storable(q.answer),
                q.graded_by,
            )
            for i, q in enumerate(questions)
        ],
    )


def _insert_tests(conn: sqlite3.Connection, attempt_id: int, tests: Sequence[TestResult]) -> None:
    conn.executemany(
        "INSERT INTO test_results (attempt_id, position, test_id, question_id, outcome,"
        " message, description, weight, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                attempt_id,
                i,
                t.test_id,
                t.question_id,
                t.outcome.value,
                storable(t.message),
                storable(t.description),
                t.weight,
                t.duration_s,
            )
            for i, t in enumerate(tests)
        ],
    )


def _insert_cells(conn: sqlite3.Connection, attempt_id: int, cells: Sequence[CellRecord]) -> None:
    conn.executemany(
        "INSERT INTO cell_errors (attempt_id, position, cell_index, error, traceback)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (attempt_id, i, c.index, storable(c.error), storable(c.traceback))
            for i, c in enumerate(cells)
        ],
    )


def _group(rows: Iterator[sqlite3.Row]) -> dict[int, list[sqlite3.Row]]:
    grouped: dict[int, list[sqlite3.Row]] = defaultdict(list)
    for row in rows:
        grouped[int(row["attempt_id"])].append(row)
    return grouped


def _stored(row: sqlite3.Row, children: dict[str, dict[int, list[sqlite3.Row]]]) -> StoredResult:
    attempt_id = int(row["id"])
    result = SubmissionResult(
        student_id=row["student_id"],
        path=row["path"],
        content_hash=row["content_hash"],
        status=Status(row["status"]),
        message=row["message"],
        questions=[_question(r) for r in children["question_scores"].get(attempt_id, [])],
        tests=[_test(r) for r in children["test_results"].get(attempt_id, [])],
        cells=[_cell(r) for r in children["cell_errors"].get(attempt_id, [])],
        stdout=row["stdout"],
        stderr=row["stderr"],
        sandbox=row["sandbox"],
        duration_s=row["duration_s"],
        peak_memory_mb=row["peak_memory_mb"],
        submitted_at=row["submitted_at"],
        late_minutes=row["late_minutes"],
        penalty_percent=row["penalty_percent"],
    )
    return StoredResult(
        result=result,
        attempt_id=attempt_id,
        attempt=int(row["attempt"]),
        graded_at=row["graded_at"],
        max_score=row["max_score"],
    )


def _question(row: sqlite3.Row) -> QuestionResult:
    return QuestionResult(
        question_id=row["question_id"],
        kind=row["kind"],
        score=row["score"],
        max_score=row["max_score"],
        feedback=row["feedback"],
        answer=row["answer"],
        graded_by=row["graded_by"],
    )


def _test(row: sqlite3.Row) -> TestResult:
    return TestResult(
        test_id=row["test_id"],
        question_id=row["question_id"],
        outcome=Outcome(row["outcome"]),
        message=row["message"],
        description=row["description"],
        weight=row["weight"],
        duration_s=row["duration_s"],
    )


def _cell(row: sqlite3.Row) -> CellRecord:
    return CellRecord(index=row["cell_index"], error=row["error"], traceback=row["traceback"])


def lock_path(gradebook_path: Path) -> Path:
    """The file `batch_lock` locks: `<gradebook>.lock` next to the gradebook."""
    return gradebook_path.with_name(gradebook_path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def batch_lock(gradebook_path: Path) -> Iterator[Path]:
    """Hold the course's grading lock for the block; yields the lock file's path.

    Only one `autograder grade` may run on a course at a time. The lock is an flock on
    `<gradebook>.lock`, so the kernel releases it when the holder exits or dies.
    Raises GradebookError at once (no waiting) if another process holds it.
    """
    path = lock_path(gradebook_path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise GradebookError(
            f"cannot create the grading lock {path}: {exc.strerror}; "
            f"check that {path.parent} exists and is writable"
        ) from None
    try:
        _acquire(fd, path)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # for the message of the next one
            yield path
        finally:
            # Explicit unlock: a forked worker sharing this descriptor must not keep the lock.
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _lock_owner(fd)
        held_by = f"held by process {owner}" if owner else "held by another process"
        stop = f"stop it (`kill {owner}`)" if owner else "stop that process"
        raise GradebookError(
            f"another `autograder grade` is running on this course (lock {path}, {held_by}); "
            f"wait for it to finish, or {stop} and run this command again: the lock is "
            "released as soon as that process exits"
        ) from None
    except OSError as exc:
        raise GradebookError(
            f"cannot lock {path}: {exc.strerror}; keep the course on a local disk "
            "(some network file systems do not support locks)"
        ) from None


def _lock_owner(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
