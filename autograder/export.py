"""Export the current grades of an assignment (the `autograder export` verb's library side).

Formats (`FORMATS`):

- `csv`: the columns DESIGN.md fixes: `student_id`, one column per question id in spec
  order, `score`, `max_score`, `status`; with a roster, `name`, `email`, `team` follow
  `student_id`; with a late policy (or any penalty), `submitted_at`, `late_minutes`,
  `penalty_percent`, `final_score` close the row. `score` is always the raw score.
- `moodle`: for Moodle's "Import grades → CSV file": identifiers `ID number` and
  `Email address` (map either in the import form), `Full name`, the grade column (final
  score), then the per-question scores, `Raw score`, `Late penalty (%)` and `Status`,
  which the import form lets you map to other grade items or ignore.
- `canvas`: for Canvas's gradebook import: `Student`, `ID`, `SIS User ID`,
  `SIS Login ID`, `Section`, then one column `<Title> (<Canvas assignment id>)` holding
  the final score, under a first data row `Points Possible`. Nothing else: Canvas turns
  every further column into a new assignment.
- `gradescope`: a folder with `<student>/results.json` per student in the Gradescope
  autograder format: the final score, one test per question, the rest in `output`.

Numbers are written as people write them (`2.5`, never `2.5000000001`, `.` as decimal
mark). Text a student controls is kept from becoming a spreadsheet formula.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.course import Course
from autograder.errors import AutograderError
from autograder.filenames import student_stem
from autograder.gradebook import Gradebook, StoredResult
from autograder.results import Outcome, QuestionResult, Status, TestResult, format_points
from autograder.roster import Roster, Student, find_roster, with_missing
from autograder.spec import AssignmentSpec
from autograder.tabular import atomic_text, safe_text

Exporter = Callable[[AssignmentSpec, list[StoredResult], Path, Roster | None], Path]

GRADESCOPE_FILE = "results.json"
POINTS_POSSIBLE = "    Points Possible"  # as Canvas writes it in its own exports


def default_target(exports_dir: Path, assignment: str, fmt: str) -> Path:
    """Where `export` writes when no --out is given."""
    if fmt == "csv":
        return exports_dir / f"{assignment}.csv"
    if fmt == "gradescope":
        return exports_dir / f"{assignment}-gradescope"
    return exports_dir / f"{assignment}-{fmt}.csv"


# --------------------------------------------------------------------------- csv
def export_csv(
    spec: AssignmentSpec, rows: list[StoredResult], out: Path, roster: Roster | None = None
) -> Path:
    """Write one CSV row per student to `out` (atomically) and return `out`.

    A question waiting for manual grading, or with no stored score at all, is an empty
    cell; `score` sums the stored question scores; `max_score` is the one stored at
    grading time. With a roster, its students without a submission are rows with status
    `missing`.
    """
    rows = with_missing(rows, roster, spec.max_score)
    question_ids = [q.id for q in spec.questions]
    late = _has_late_policy(spec, rows)
    header = ["student_id"]
    if roster is not None:
        header += ["name", "email", "team"]
    header += [*question_ids, "score", "max_score", "status"]
    if late:
        header += ["submitted_at", "late_minutes", "penalty_percent", "final_score"]
    with atomic_text(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            cells = _csv_row(row, question_ids)
            if roster is not None:
                who = roster.get(row.result.student_id) or Student(row.result.student_id)
                cells[1:1] = [safe_text(who.name), safe_text(who.email), safe_text(who.team)]
            if late:
                cells += _late_cells(row)
            writer.writerow(cells)
    return out


def _csv_row(row: StoredResult, question_ids: list[str]) -> list[str]:
    scores = {q.question_id: q.score for q in row.result.questions}
    cells = [_cell(scores.get(qid)) for qid in question_ids]
    return [
        safe_text(row.result.student_id),
        *cells,
        format_points(row.result.score),
        format_points(row.max_score),
        row.result.status.value,
    ]


def _late_cells(row: StoredResult) -> list[str]:
    r = row.result
    return [
        r.submitted_at or "",
        format_points(r.late_minutes),
        format_points(r.penalty_percent),
        format_points(r.final_score),
    ]


def _has_late_policy(spec: AssignmentSpec, rows: list[StoredResult]) -> bool:
    return spec.deadline is not None or any(r.result.penalty_percent for r in rows)


def _cell(score: float | None) -> str:
    return "" if score is None else format_points(score)


# --------------------------------------------------------------------------- moodle
def export_moodle(
    spec: AssignmentSpec, rows: list[StoredResult], out: Path, roster: Roster | None = None
) -> Path:
    """Moodle's grade import CSV: identifiers, the final grade, then the details."""
    rows = with_missing(rows, roster, spec.max_score)
    question_ids = [q.id for q in spec.questions]
    grade_column = spec.lms.moodle_grade_item or (spec.title or spec.name)
    header = ["ID number", "Email address", "Full name", grade_column, *question_ids]
    header += ["Raw score", "Late penalty (%)", "Status"]
    with atomic_text(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            r = row.result
            who = _student(roster, r.student_id)
            scores = {q.question_id: q.score for q in r.questions}
            writer.writerow(
                [
                    safe_text(r.student_id),
                    safe_text(who.email),
                    safe_text(who.name),
                    format_points(r.final_score),
                    *[_cell(scores.get(qid)) for qid in question_ids],
                    format_points(r.score),
                    format_points(r.penalty_percent),
                    r.status.value,
                ]
            )
    return out


# --------------------------------------------------------------------------- canvas
def export_canvas(
    spec: AssignmentSpec, rows: list[StoredResult], out: Path, roster: Roster | None = None
) -> Path:
    """Canvas's gradebook import CSV: one assignment column with the final score."""
    rows = with_missing(rows, roster, spec.max_score)
    title = spec.title or spec.name
    column = (
        f"{title} ({spec.lms.canvas_assignment_id})" if spec.lms.canvas_assignment_id else title
    )
    with atomic_text(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        writer.writerow([POINTS_POSSIBLE, "", "", "", "", format_points(spec.max_score)])
        for row in rows:
            r = row.result
            who = _student(roster, r.student_id)
            writer.writerow(
                [
                    safe_text(who.name or r.student_id),
                    safe_text(who.lms_id),
                    safe_text(r.student_id),
                    safe_text(who.login or who.email),
                    safe_text(who.section),
                    format_points(r.final_score),
                ]
            )
    return out


def _student(roster: Roster | None, student_id: str) -> Student:
    found = roster.get(student_id) if roster is not None else None
    return found or Student(student_id)


# --------------------------------------------------------------------------- gradescope
def export_gradescope(
    spec: AssignmentSpec, rows: list[StoredResult], out: Path, roster: Roster | None = None
) -> Path:
    """`out/<student>/results.json` per student, in Gradescope's autograder format."""
    rows = with_missing(rows, roster, spec.max_score)
    for row in rows:
        target = out / student_stem(row.result.student_id) / GRADESCOPE_FILE
        data = gradescope_results(spec, row)
        _write_json(target, data)
    return out


def gradescope_results(spec: AssignmentSpec, row: StoredResult) -> dict[str, object]:
    """One submission as Gradescope's `results.json`: the score is the final score."""
    r = row.result
    lines = [f"Status: {r.status.value}"]
    if r.message:
        lines.append(r.message)
    lines.append(f"Raw score: {format_points(r.score)} / {format_points(row.max_score)}")
    if r.penalty_percent or r.late_minutes:
        lines.append(
            f"Submitted {r.submitted_at or 'at an unknown time'}, "
            f"{format_points(r.late_minutes)} minutes late: "
            f"late penalty {format_points(r.penalty_percent)}%"
        )
    lines.append(f"Final score: {format_points(r.final_score)}")
    by_id = {q.question_id: q for q in r.questions}
    tests = []
    for number, question in enumerate(spec.questions, start=1):
        q = by_id.get(question.id)
        name = f"{question.id}: {question.title}" if question.title else question.id
        tests.append(
            {
                "name": name,
                "number": str(number),
                "score": round(q.score or 0.0, 4) if q else 0.0,
                "max_score": question.points,
                "status": "passed" if q and q.score is not None and _full(q) else "failed",
                "output": _question_output(q, r.tests),
                "visibility": "visible",
            }
        )
    return {
        "score": round(r.final_score, 4),
        "execution_time": round(r.duration_s, 3),
        "output": "\n".join(lines),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "student_id": r.student_id,
            "status": r.status.value,
            "raw_score": r.score,
            "penalty_percent": r.penalty_percent,
            "late_minutes": r.late_minutes,
            "submitted_at": r.submitted_at,
            "attempt": row.attempt,
        },
    }


def _full(q: QuestionResult) -> bool:
    return q.score is not None and q.score >= q.max_score - 1e-9


def _question_output(q: QuestionResult | None, tests: Sequence[TestResult]) -> str:
    if q is None:
        return "not graded"
    if q.score is None:
        return "waiting for manual grading"
    lines = [q.feedback] if q.feedback else []
    for t in tests:
        if t.question_id == q.question_id and t.outcome is not Outcome.PASSED:
            label = t.description.strip().split("\n", 1)[0] or t.test_id
            lines.append(f"{t.outcome.value}: {label}" + (f"\n  {t.message}" if t.message else ""))
    return "\n".join(lines)


def _write_json(target: Path, data: dict[str, object]) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AutograderError(
            f"cannot write {target}: {exc.strerror}; check that {target.parent.parent} is "
            "writable or choose another folder with --out"
        ) from None


@dataclass(frozen=True)
class ExportSummary:
    target: Path
    students: int
    missing: int  # on the roster, nothing submitted
    pending: int  # waiting for manual grading: their scores leave those questions out
    not_on_roster: list[str]  # graded, but the roster does not know them


def export(
    course: Course,
    assignment: str,
    fmt: str = "csv",
    out: Path | None = None,
    roster_path: Path | None = None,
) -> ExportSummary:
    """Export ASSIGNMENT's current grades from the course gradebook in format `fmt`.

    The roster is `roster_path`, else the course's `roster.csv` when there is one.
    """
    if fmt not in FORMATS:
        raise AutograderError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    spec = course.assignment(assignment).spec
    roster = find_roster(course.root, roster_path)
    with Gradebook.open(course.gradebook) as book:
        rows = book.current(assignment)
    target = out or default_target(course.exports_dir(), assignment, fmt)
    FORMATS[fmt](spec, rows, target, roster)
    everyone = with_missing(rows, roster, spec.max_score)
    return ExportSummary(
        target=target,
        students=len(everyone),
        missing=sum(1 for r in everyone if r.result.status is Status.MISSING),
        pending=sum(1 for r in everyone if r.result.status is Status.PENDING),
        not_on_roster=[]
        if roster is None
        else [r.result.student_id for r in rows if roster.get(r.result.student_id) is None],
    )


FORMATS: dict[str, Exporter] = {
    "csv": export_csv,
    "moodle": export_moodle,
    "canvas": export_canvas,
    "gradescope": export_gradescope,
}
