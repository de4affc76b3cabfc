"""Scores set by people, and the audit trail of every score change.

Three things change a stored score after the autograder produced it:

- a **manual** grade of a free-text question (`autograder manual ... import`),
- an **override** of any question (`autograder override`),
- a **regrade**: a new attempt whose scores differ from the previous one.

Each leaves a row in `score_changes` (who, when, why, old and new score). A human
decision outlives a regrade as long as what it judged is unchanged: a new attempt
inherits a hand-set score when the notebook is byte-identical, or, for a manually
graded question, when the answer text is unchanged (a **carried** change).

The functions here run inside a transaction the caller (`store.Gradebook`) opened.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

from autograder.errors import GradebookError
from autograder.results import QuestionResult, SubmissionResult, settled_status

AUTOGRADER = "autograder"  # the `grader` of changes no person made


class ChangeKind(enum.StrEnum):
    MANUAL = "manual"
    OVERRIDE = "override"
    REGRADE = "regrade"
    CARRIED = "carried"


@dataclass(frozen=True)
class ScoreChange:
    """One row of the audit trail."""

    attempt_id: int
    student_id: str
    question_id: str | None  # None: the change concerns the whole submission
    kind: ChangeKind
    old_score: float | None
    new_score: float | None
    grader: str
    reason: str
    changed_at: str  # ISO-8601, UTC


@dataclass(frozen=True)
class SetScore:
    """A request to set one question's score on a student's current attempt."""

    student_id: str
    question_id: str
    points: float
    comment: str | None = None  # becomes the question's feedback; None keeps the old one
    answer: str | None = None  # when given, refuse if the stored answer is another one


class ScoresRefused(GradebookError):
    """Some requested score changes do not fit the gradebook; none was written."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(f"nothing was changed: {len(self.problems)} problem(s):\n  {shown}{more}")


def same_answer(a: str | None, b: str | None) -> bool:
    """Whether two stored answers are the same text (line endings and edges aside)."""
    return _normal(a) == _normal(b)


def _normal(text: str | None) -> str:
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


# --------------------------------------------------------------------------- regrades
def previous_attempt(
    conn: sqlite3.Connection, assignment: str, student_id: str
) -> tuple[sqlite3.Row | None, list[sqlite3.Row]]:
    """The student's current attempt (about to be superseded) and its question rows."""
    row = conn.execute(
        "SELECT id, content_hash FROM attempts"
        " WHERE assignment = ? AND student_id = ? AND current = 1",
        (assignment, student_id),
    ).fetchone()
    if row is None:
        return None, []
    questions = conn.execute(
        "SELECT * FROM question_scores WHERE attempt_id = ? ORDER BY position", (row["id"],)
    ).fetchall()
    return row, questions


def carry_forward(
    previous: sqlite3.Row, previous_questions: list[sqlite3.Row], result: SubmissionResult
) -> list[tuple[str, float | None, float | None, str, str]]:
    """Give `result` (in place) the hand-set scores of the previous attempt that still apply.

    Returns (question id, old score, new score, grader, reason) per carried score.
    """
    same_notebook = previous["content_hash"] == result.content_hash
    by_id = {row["question_id"]: row for row in previous_questions}
    carried = []
    questions: list[QuestionResult] = []
    for q in result.questions:
        old = by_id.get(q.question_id)
        if old is None or old["graded_by"] is None or old["score"] is None:
            questions.append(q)
            continue
        manual_unchanged = q.score is None and same_answer(q.answer, old["answer"])
        if not (same_notebook or manual_unchanged):
            questions.append(q)
            continue
        why = "same notebook as before" if same_notebook else "answer unchanged"
        questions.append(
            replace(q, score=old["score"], feedback=old["feedback"], graded_by=old["graded_by"])
        )
        carried.append((q.question_id, q.score, old["score"], old["graded_by"], why))
    result.questions = questions
    result.status = settled_status(result.status, result.questions)
    return carried


def regrade_changes(
    previous_questions: list[sqlite3.Row], result: SubmissionResult
) -> list[tuple[str, float | None, float | None]]:
    """(question id, old score, new score) for each question whose score the regrade changed."""
    old = {row["question_id"]: row["score"] for row in previous_questions}
    changes = []
    for q in result.questions:
        if q.question_id in old and not _same_score(old[q.question_id], q.score):
            changes.append((q.question_id, old[q.question_id], q.score))
    return changes


def _same_score(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < 1e-9


# --------------------------------------------------------------------------- manual scores
def apply_scores(
    conn: sqlite3.Connection,
    assignment: str,
    requests: Sequence[SetScore],
    kind: ChangeKind,
    grader: str,
    reason: str,
    now: str,
) -> list[ScoreChange]:
    """Set scores on current attempts; returns the changes made (unchanged ones skipped).

    Raises ScoresRefused, before writing anything, when a request names no current
    attempt or question, is out of the question's range, or judged another answer.
    """
    problems: list[str] = []
    plan: list[tuple[SetScore, sqlite3.Row]] = []
    seen: set[tuple[str, str]] = set()
    for req in requests:
        key = (req.student_id, req.question_id)
        if key in seen:
            problems.append(f"{req.student_id} / {req.question_id}: given twice; keep one")
            continue
        seen.add(key)
        row = conn.execute(
            "SELECT q.*, a.student_id FROM question_scores q JOIN attempts a ON a.id = q.attempt_id"
            " WHERE a.assignment = ? AND a.student_id = ? AND a.current = 1"
            " AND q.question_id = ?",
            (assignment, req.student_id, req.question_id),
        ).fetchone()
        where = f"{req.student_id} / {req.question_id}"
        if row is None:
            problems.append(f"{where}: no graded submission has this question")
        elif not 0 <= req.points <= row["max_score"] + 1e-9:
            problems.append(f"{where}: {req.points:g} points is outside 0..{row['max_score']:g}")
        elif req.answer is not None and not same_answer(req.answer, row["answer"]):
            problems.append(
                f"{where}: the answer changed since this sheet was written (the student "
                "resubmitted?); export a new sheet and grade that answer"
            )
        else:
            plan.append((req, row))
    if problems:
        raise ScoresRefused(problems)
    changes: list[ScoreChange] = []
    touched: set[int] = set()
    for req, row in plan:
        comment = row["feedback"] if req.comment is None else req.comment
        if (
            _same_score(row["score"], req.points)
            and comment == row["feedback"]
            and row["graded_by"] is not None
        ):
            continue  # importing the same sheet twice changes nothing
        conn.execute(
            "UPDATE question_scores SET score = ?, feedback = ?, graded_by = ?"
            " WHERE attempt_id = ? AND question_id = ?",
            (req.points, comment, grader, row["attempt_id"], req.question_id),
        )
        change = ScoreChange(
            attempt_id=row["attempt_id"],
            student_id=req.student_id,
            question_id=req.question_id,
            kind=kind,
            old_score=row["score"],
            new_score=req.points,
            grader=grader,
            reason=reason,
            changed_at=now,
        )
        insert_change(conn, assignment, change)
        changes.append(change)
        touched.add(row["attempt_id"])
    for attempt_id in touched:
        _resettle(conn, attempt_id)
    return changes


def _resettle(conn: sqlite3.Connection, attempt_id: int) -> None:
    """Recompute an attempt's score and status after some of its question scores changed."""
    rows = conn.execute(
        "SELECT score FROM question_scores WHERE attempt_id = ?", (attempt_id,)
    ).fetchall()
    status = conn.execute("SELECT status FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
    scores = [row["score"] for row in rows]
    from_status = status["status"]
    if from_status in ("graded", "pending"):
        from_status = "pending" if any(s is None for s in scores) else "graded"
    conn.execute(
        "UPDATE attempts SET score = ?, status = ? WHERE id = ?",
        (sum(s or 0.0 for s in scores), from_status, attempt_id),
    )


def insert_change(conn: sqlite3.Connection, assignment: str, change: ScoreChange) -> None:
    conn.execute(
        "INSERT INTO score_changes (assignment, student_id, attempt_id, question_id, kind,"
        " old_score, new_score, grader, reason, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            assignment,
            change.student_id,
            change.attempt_id,
            change.question_id,
            change.kind.value,
            change.old_score,
            change.new_score,
            change.grader,
            change.reason,
            change.changed_at,
        ),
    )


def read_changes(conn: sqlite3.Connection, assignment: str, student_id: str) -> list[ScoreChange]:
    rows = conn.execute(
        "SELECT * FROM score_changes WHERE assignment = ? AND student_id = ? ORDER BY id",
        (assignment, student_id),
    ).fetchall()
    return [
        ScoreChange(
            attempt_id=row["attempt_id"],
            student_id=row["student_id"],
            question_id=row["question_id"],
            kind=ChangeKind(row["kind"]),
            old_score=row["old_score"],
            new_score=row["new_score"],
            grader=row["grader"],
            reason=row["reason"],
            changed_at=row["changed_at"],
        )
        for row in rows
    ]
