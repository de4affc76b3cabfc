"""The combined course grade: assignments weighted into one final grade per student.

The `course-grade` verb's library side. A weights file (TOML) names the parts:

    [weights]
    perceptron  = 0.1
    backprop    = 0.4
    digits      = 0.5           # a competition of the course (competitions/digits/)

Each assignment counts with its final score (after late penalties) over its maximum;
a student without a submission has 0 there. A competition counts with its grade
(`autograder compete grades`: the private leaderboard mapped to a percentage, the same
for every member of a team), once it has closed.

A part named `competition` takes its scores from the `[competition]` table:

    [competition]
    name = "digits"             # the course's competition (default: its only one), or
    csv = "competition.csv"     # scores from a CSV: student_id,score (the path is
    max_score = 100             # relative to this file; max_score default 1)

(a student not in the CSV has 0). The final grade is the weighted mean, in percent:
weights need not sum to 1, they are divided by their sum.
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from autograder.competition import compete
from autograder.competition.spec import competition_names
from autograder.course import Course
from autograder.errors import AutograderError
from autograder.gradebook import Gradebook, StoredResult
from autograder.results import Status
from autograder.roster import Roster, find_roster
from autograder.tabular import atomic_text, safe_text

COMPETITION = "competition"


@dataclass(frozen=True)
class Weights:
    parts: dict[str, float]  # name -> weight, in file order
    competition_csv: Path | None = None
    competition_max: float = 1.0
    competition_name: str | None = None  # `[competition] name`: a competition of the course

    @property
    def total(self) -> float:
        return sum(self.parts.values())


@dataclass
class StudentGrade:
    student_id: str
    shares: dict[str, float] = field(default_factory=dict)  # part -> share of its max, 0..1
    notes: list[str] = field(default_factory=list)

    def final(self, weights: Weights) -> float:
        """The weighted mean of the shares, in percent."""
        total = weights.total
        return 100 * sum(w * self.shares.get(p, 0.0) for p, w in weights.parts.items()) / total


@dataclass(frozen=True)
class CourseGrades:
    weights: Weights
    students: list[StudentGrade]
    out: Path


def load_weights(path: Path) -> Weights:
    """Read and check a weights file; errors name the file and what to fix."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AutograderError(f"{path}: no such weights file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AutograderError(f"{path}: not valid TOML: {exc}") from None
    raw = data.get("weights")
    if not isinstance(raw, dict) or not raw:
        raise AutograderError(f"{path}: needs a [weights] table, e.g. `perceptron = 0.5`")
    parts: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise AutograderError(f"{path}: weight of {name!r} must be a number >= 0")
        parts[name] = float(value)
    if not sum(parts.values()) > 0:
        raise AutograderError(f"{path}: all weights are 0; give at least one a weight")
    comp = data.get(COMPETITION, {})
    if not isinstance(comp, dict):
        raise AutograderError(f"{path}: [competition] must be a table (name, or csv, max_score)")
    csv_path = comp.get("csv")
    name = comp.get("name")
    if name is not None and (not isinstance(name, str) or csv_path is not None):
        raise AutograderError(
            f'{path}: [competition] takes either name = "<competition>" or csv = "<file>"'
        )
    max_score = comp.get("max_score", 1.0)
    if isinstance(max_score, bool) or not isinstance(max_score, int | float) or max_score <= 0:
        raise AutograderError(f"{path}: competition max_score must be a number > 0")
    return Weights(
        parts,
        (path.parent / csv_path) if isinstance(csv_path, str) else None,
        float(max_score),
        name,
    )


def read_competition(path: Path, max_score: float) -> dict[str, float]:
    """student_id -> share (0..1) of the competition's max score."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AutograderError(f"cannot read the competition scores {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    if not {"student_id", "score"} <= set(reader.fieldnames or []):
        raise AutograderError(f"{path}: needs the columns student_id,score")
    shares: dict[str, float] = {}
    for line, row in enumerate(reader, start=2):
        sid = (row["student_id"] or "").strip()
        try:
            score = float((row["score"] or "").strip())
        except ValueError:
            raise AutograderError(
                f"{path}, line {line}: score {row['score']!r} is no number"
            ) from None
        if not sid or not math.isfinite(score):
            raise AutograderError(f"{path}, line {line}: needs a student_id and a finite score")
        if sid in shares:
            raise AutograderError(f"{path}, line {line}: {sid!r} appears twice")
        shares[sid] = min(1.0, max(0.0, score / max_score))
    return shares


def course_grade(
    course: Course,
    weights_path: Path,
    out: Path,
    roster_path: Path | None = None,
    competition_path: Path | None = None,
    now: datetime | None = None,
) -> CourseGrades:
    """Write the final grade of every student to `out` (CSV) and return the grades.

    `now` (default: the current time) decides whether the course's competitions have
    closed; their grades exist only then."""
    weights = load_weights(weights_path)
    roster = find_roster(course.root, roster_path)
    known = set(course.assignment_names())
    competitions = set(competition_names(course.root))
    unknown = [
        p for p in weights.parts if p not in known and p not in competitions and p != COMPETITION
    ]
    if unknown:
        raise AutograderError(
            f"{weights_path}: {', '.join(unknown)} is no assignment of this course "
            f"(assignments: {', '.join(sorted(known)) or 'none'}; competitions: "
            f"{', '.join(sorted(competitions)) or 'none'}; `competition` reads a CSV)"
        )
    moment = now or datetime.now(UTC)
    grades: dict[str, StudentGrade] = {}

    def student(sid: str) -> StudentGrade:
        return grades.setdefault(sid, StudentGrade(sid))

    if roster is not None:
        for s in roster.students:
            student(s.id)
    with Gradebook.open(course.gradebook) as book:
        current = {name: book.current(name) for name in weights.parts if name in known}
    for name, rows in current.items():
        for row in rows:
            _add_assignment(student(row.result.student_id), name, row)
    for part in weights.parts:
        if part in competitions and part not in known:
            _add_competition(course, part, part, roster, moment, student)
    if COMPETITION in weights.parts and COMPETITION not in known | competitions:
        source = competition_path or weights.competition_csv
        name = weights.competition_name
        if source is None and name is None and len(competitions) == 1:
            name = next(iter(competitions))
        if source is not None:
            for sid, share in read_competition(source, weights.competition_max).items():
                student(sid).shares[COMPETITION] = share
        elif name is not None:
            _add_competition(course, COMPETITION, name, roster, moment, student)
        else:
            raise AutograderError(
                f"{weights_path}: `competition` has a weight but no scores; add "
                '[competition] name = "<competition>" (a folder of competitions/) or '
                'csv = "scores.csv", or pass --competition FILE'
            )
    for g in grades.values():
        missing = [p for p in weights.parts if p not in g.shares]
        if missing:
            g.notes.append("no score (0) for " + ", ".join(missing))
        if roster is not None and roster.get(g.student_id) is None:
            g.notes.append("not on the roster")
    ordered = sorted(grades.values(), key=lambda g: g.student_id)
    _write(out, weights, ordered, roster)
    return CourseGrades(weights, ordered, out)


def _add_competition(
    course: Course,
    part: str,
    name: str,
    roster: Roster | None,
    now: datetime,
    student: Callable[[str], StudentGrade],
) -> None:
    """The grades of competition `name` as the shares of weight `part` (every roster
    student has one: the team's, or the competition's grade for no submission)."""
    ctx = compete.open_competition(course, name, roster)
    _, grades = compete.grades(ctx, now)
    for g in grades:
        grade = student(g.student_id)
        grade.shares[part] = g.percent / 100
        if g.note:
            grade.notes.append(f"{part}: {g.note}")


def _add_assignment(grade: StudentGrade, name: str, row: StoredResult) -> None:
    r = row.result
    if r.status is Status.MISSING:
        return
    grade.shares[name] = max(0.0, r.final_score) / row.max_score if row.max_score else 0.0
    if r.status is Status.PENDING:
        grade.notes.append(f"{name} waits for manual grading")
    elif r.status in (Status.ERROR, Status.TIMEOUT):
        grade.notes.append(f"{name}: {r.status.value}")


def _write(out: Path, weights: Weights, grades: list[StudentGrade], roster: Roster | None) -> None:
    parts = list(weights.parts)
    with atomic_text(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        header = ["student_id", "name", "email"] if roster is not None else ["student_id"]
        writer.writerow([*header, *(f"{p}_percent" for p in parts), "final_percent", "notes"])
        for g in grades:
            who = roster.get(g.student_id) if roster is not None else None
            names = [safe_text(who.name), safe_text(who.email)] if who else ["", ""]
            writer.writerow(
                [
                    safe_text(g.student_id),
                    *(names if roster is not None else []),
                    *(_percent(100 * g.shares.get(p, 0.0)) for p in parts),
                    _percent(g.final(weights)),
                    "; ".join(g.notes),
                ]
            )


def _percent(value: float) -> str:
    return f"{value:.2f}"
