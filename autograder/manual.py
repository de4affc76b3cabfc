"""Grading by people: the manual grading sheet, overrides, and the history of a student.

The `manual`, `override` and `history` verbs' library side. Free-text (`text`) questions
wait for a human: their submissions stay `pending` until every such question has a
score. `export_sheet` writes them to a CSV grouped by question, similar answers next to
each other; graders fill in `points` (and `comment`), `import_sheet` stores the scores.
Every change goes to the gradebook's audit trail with who, when and why.

Sheet columns: question, student, answer, max_points, points, comment, group
(`group` numbers the clusters of similar answers within a question; import ignores it).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from autograder.course import Course
from autograder.errors import AutograderError
from autograder.gradebook import Gradebook, StoredResult
from autograder.gradebook.changes import ChangeKind, ScoreChange, ScoresRefused, SetScore
from autograder.results import Status, format_points
from autograder.similarity import group_similar
from autograder.spec import AssignmentSpec
from autograder.tabular import atomic_text, safe_text, unsafe_text

SHEET_COLUMNS = ["question", "student", "answer", "max_points", "points", "comment", "group"]
REQUIRED_COLUMNS = ("question", "student", "points")


@dataclass(frozen=True)
class SheetRow:
    question: str
    student: str
    answer: str
    max_points: float
    points: float | None  # filled in when a person graded it already
    comment: str
    group: int


@dataclass(frozen=True)
class SheetSummary:
    path: Path
    rows: int
    to_grade: int  # rows without points yet


@dataclass(frozen=True)
class ImportSummary:
    changes: list[ScoreChange]
    skipped: int  # rows left without points
    still_pending: list[str]  # students still waiting for a manual score


# --------------------------------------------------------------------------- the sheet
def sheet_rows(spec: AssignmentSpec, rows: list[StoredResult]) -> list[SheetRow]:
    """The answers to grade by hand, grouped by question, similar answers together."""
    out: list[SheetRow] = []
    for question in spec.manual_questions:
        answers = []
        for row in rows:
            if row.result.status is Status.MISSING:
                continue
            q = next((q for q in row.result.questions if q.question_id == question.id), None)
            if q is None or not (q.answer or "").strip():
                continue  # unanswered: the autograder already gave 0
            answers.append((row.result.student_id, q))
        groups = group_similar([q.answer or "" for _, q in answers])
        for number, group in enumerate(groups, start=1):
            for i in group:
                student, q = answers[i]
                human = q.graded_by is not None
                out.append(
                    SheetRow(
                        question=question.id,
                        student=student,
                        answer=q.answer or "",
                        max_points=q.max_score,
                        points=q.score if human else None,
                        comment=q.feedback if human else "",
                        group=number,
                    )
                )
    return out


def export_sheet(course: Course, assignment: str, out: Path) -> SheetSummary:
    """Write the grading sheet of ASSIGNMENT's free-text answers to `out`."""
    spec = course.assignment(assignment).spec
    if not spec.manual_questions:
        raise AutograderError(
            f'{assignment} has no free-text (kind = "text") question: nothing to grade by hand'
        )
    with Gradebook.open(course.gradebook) as book:
        rows = book.current(assignment)
    sheet = sheet_rows(spec, rows)
    with atomic_text(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(SHEET_COLUMNS)
        for r in sheet:
            writer.writerow(
                [
                    r.question,
                    safe_text(r.student),
                    safe_text(r.answer),
                    format_points(r.max_points),
                    "" if r.points is None else format_points(r.points),
                    safe_text(r.comment),
                    r.group,
                ]
            )
    return SheetSummary(out, len(sheet), sum(1 for r in sheet if r.points is None))


def read_sheet(spec: AssignmentSpec, path: Path) -> tuple[list[SetScore], int]:
    """The scores a filled-in sheet gives, and how many rows it leaves blank.

    Raises ScoresRefused listing every line that cannot be used (nothing is imported).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AutograderError(f"cannot read the grading sheet {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    if missing := [c for c in REQUIRED_COLUMNS if c not in header]:
        raise AutograderError(
            f"{path}: no column {', '.join(missing)}; write the sheet with "
            f"`autograder manual {spec.name} export` and fill in `points`"
        )
    manual = {q.id for q in spec.manual_questions}
    requests: list[SetScore] = []
    problems: list[str] = []
    blank = 0
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "") for k, v in raw.items() if k is not None}
        qid, student = row["question"].strip(), unsafe_text(row["student"].strip())
        if not row["points"].strip():
            blank += 1
            continue
        if qid not in manual:
            if qid in {q.id for q in spec.questions}:
                problems.append(
                    f"line {line}: {qid!r} is graded automatically; "
                    "change its score with `autograder override`"
                )
            else:
                problems.append(f"line {line}: {spec.name} has no question {qid!r}")
            continue
        points = parse_points(row["points"])
        if points is None:
            problems.append(f"line {line}: points {row['points']!r} is not a number")
            continue
        answer = unsafe_text(row["answer"]) if "answer" in row else None
        comment = unsafe_text(row.get("comment", "")).strip()
        requests.append(SetScore(student, qid, points, comment, answer))
    if problems:
        raise ScoresRefused(problems)
    return requests, blank


def parse_points(text: str) -> float | None:
    """`1.5`, `1,5` (a spreadsheet's decimal comma) or `2`; None for anything else."""
    cleaned = text.strip().replace(",", ".") if "." not in text else text.strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def import_sheet(
    course: Course, assignment: str, path: Path, grader: str, reason: str = ""
) -> ImportSummary:
    """Store the scores of a filled-in grading sheet, all or none (audited)."""
    spec = course.assignment(assignment).spec
    requests, blank = read_sheet(spec, path)
    with Gradebook.open(course.gradebook) as book:
        changes = book.set_scores(
            assignment,
            requests,
            kind=ChangeKind.MANUAL,
            grader=_grader(grader),
            reason=reason or f"grading sheet {path.name}",
        )
        rows = book.current(assignment)
    pending = [r.result.student_id for r in rows if r.result.status is Status.PENDING]
    return ImportSummary(changes, blank, pending)


# --------------------------------------------------------------------------- overrides
def override(
    course: Course,
    assignment: str,
    student: str,
    question: str,
    points: float,
    grader: str,
    reason: str,
) -> ScoreChange | None:
    """Set one question's score of a student's current attempt by hand (audited).

    Returns the change, or None when the score already was `points`.
    """
    spec = course.assignment(assignment).spec
    if question not in {q.id for q in spec.questions}:
        known = ", ".join(q.id for q in spec.questions)
        raise AutograderError(f"{assignment} has no question {question!r}; its questions: {known}")
    if not reason.strip():
        raise AutograderError('an override needs a reason (--reason "..."): it goes on record')
    with Gradebook.open(course.gradebook) as book:
        changes = book.set_scores(
            assignment,
            [SetScore(student, question, points)],
            kind=ChangeKind.OVERRIDE,
            grader=_grader(grader),
            reason=reason.strip(),
        )
    return changes[0] if changes else None


def history(
    course: Course, assignment: str, student: str
) -> tuple[list[StoredResult], list[ScoreChange]]:
    """Every attempt of `student` on ASSIGNMENT, and every change of their scores."""
    course.assignment(assignment)  # a clear error for an unknown assignment
    with Gradebook.open(course.gradebook) as book:
        attempts = book.history(assignment, student)
        changes = book.score_changes(assignment, student)
    if not attempts:
        raise AutograderError(f"no attempt of {student!r} on {assignment} in the gradebook")
    return attempts, changes


def _grader(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise AutograderError("say who grades: --grader NAME (it goes on record)")
    return cleaned
