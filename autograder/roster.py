"""The class roster: a CSV the instructor keeps, naming every student of the course.

Columns (header row required; names are case-insensitive, extra columns are ignored):

    id        the student id the gradebook uses (required; `student_id` also accepted)
    name      full name, as the LMS shows it            (optional; `full_name`)
    email     e-mail address                            (optional; `email_address`)
    team      team or group                             (optional)
    lms_id    the LMS's number for the student: Moodle participant id or Canvas user id
              (optional; `moodle_id`, `canvas_id`, `participant_id`, `user_id`)
    login     LMS login / SIS login id                  (optional; `sis_login_id`, `username`)
    section   course section, for Canvas                (optional)

The roster joins names and e-mails into exports, lists students who submitted nothing
(status `missing`) and maps LMS downloads, which name students by full name and LMS
number, to student ids.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from autograder.errors import AutograderError
from autograder.gradebook import StoredResult
from autograder.results import Status, SubmissionResult
from autograder.submissions import ID_PATTERN

ROSTER_FILENAME = "roster.csv"  # the course's roster, used when --roster is not given

_ALIASES = {
    "id": ("id", "student_id", "student id"),
    "name": ("name", "full_name", "full name"),
    "email": ("email", "email_address", "email address", "e-mail"),
    "team": ("team", "group"),
    "lms_id": ("lms_id", "moodle_id", "canvas_id", "participant_id", "user_id"),
    "login": ("login", "sis_login_id", "sis login id", "username"),
    "section": ("section",),
}


class RosterError(AutograderError):
    """The roster file cannot be read or does not make sense."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""
    team: str = ""
    lms_id: str = ""
    login: str = ""
    section: str = ""


@dataclass(frozen=True)
class Roster:
    students: tuple[Student, ...]
    path: Path | None = None

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.students]

    def get(self, student_id: str) -> Student | None:
        for s in self.students:
            if s.id == student_id:
                return s
        return None

    def match(self, lms_id: str, name: str) -> tuple[Student | None, str]:
        """The student an LMS download names, or None and why not.

        Tries the LMS number (the `lms_id` column, then the `id` column), then the name:
        the full name (accents, case and spacing aside), the login, the e-mail's local part
        and, for Canvas's `lastfirst` style, the name's words run together in either order.
        A name shared by two students matches neither.
        """
        if lms_id:
            by_number = [s for s in self.students if s.lms_id and s.lms_id == lms_id]
            if not by_number:
                by_number = [s for s in self.students if s.id == lms_id]
            if len(by_number) == 1:
                return by_number[0], ""
        key = name_key(name)
        if not key:
            return None, "no name to match"
        found = [s for s in self.students if key in _keys(s)]
        if len(found) == 1:
            return found[0], ""
        where = f" in {self.path}" if self.path else ""
        if len(found) > 1:
            ids = ", ".join(s.id for s in found)
            return None, f"{name!r} matches several students{where} ({ids}); add lms_id {lms_id}"
        number = f" or LMS id {lms_id}" if lms_id else ""
        return None, (
            f"no student named {name!r}{number} on the roster{where}; add them "
            f"(or their lms_id) to the roster and grade again"
        )


def name_key(text: str) -> str:
    """A name reduced for matching: no accents, no case, words joined by one space."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain.casefold()).split())


def _keys(student: Student) -> set[str]:
    keys = {name_key(student.name), name_key(student.login), name_key(student.id)}
    if student.email:
        keys.add(name_key(student.email.split("@", 1)[0]))
    words = name_key(student.name).split()
    if len(words) > 1:  # Canvas file names: "smithjohn" for John Smith
        keys.add("".join(words))
        keys.add("".join(words[-1:] + words[:-1]))
    keys.discard("")
    return keys


def load_roster(path: Path) -> Roster:
    """Read and check a roster CSV; errors name the file, the line and what to fix."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RosterError(f"{path}: no such roster file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot read the roster ({exc}); save it as UTF-8 CSV") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise RosterError(f"{path}: empty; the roster needs a header row with an `id` column")
    columns = _columns(rows[0], path)
    students: list[Student] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {field: (row[i].strip() if i < len(row) else "") for field, i in columns.items()}
        sid = values["id"]
        if not ID_PATTERN.match(sid):
            problems.append(
                f"line {line}: {sid!r} is not a valid student id "
                "(letters, digits and . _ @ + - only, starting with a letter or digit)"
            )
        elif sid in seen:
            problems.append(f"line {line}: id {sid!r} is also on line {seen[sid]}")
        else:
            seen[sid] = line
            students.append(Student(**values))
    if problems:
        raise RosterError(f"{path}: " + "; ".join(problems[:10]))
    return Roster(tuple(students), path)


def _columns(header: list[str], path: Path) -> dict[str, int]:
    names = [h.strip().casefold() for h in header]
    columns: dict[str, int] = {}
    for field, aliases in _ALIASES.items():
        for i, name in enumerate(names):
            if name in aliases and field not in columns:
                columns[field] = i
    if "id" not in columns:
        raise RosterError(
            f"{path}: no `id` column (the header is {', '.join(header) or 'empty'}); "
            "the roster needs the columns id, name, email, team"
        )
    return columns


def find_roster(course_root: Path, given: Path | None) -> Roster | None:
    """The roster given on the command line, else the course's `roster.csv`, else None."""
    if given is not None:
        return load_roster(given)
    default = course_root / ROSTER_FILENAME
    return load_roster(default) if default.is_file() else None


def with_missing(
    rows: list[StoredResult], roster: Roster | None, max_score: float
) -> list[StoredResult]:
    """`rows` plus a `missing` row (score 0) for every roster student without one, by id.

    Missing rows are not stored: a student may still submit. Their attempt number is 0.
    """
    if roster is None:
        return rows
    graded = {row.result.student_id for row in rows}
    missing = [
        StoredResult(
            SubmissionResult(s.id, "", "", Status.MISSING, "nothing submitted"),
            attempt_id=0,
            attempt=0,
            graded_at="",
            max_score=max_score,
        )
        for s in roster.students
        if s.id not in graded
    ]
    return sorted([*rows, *missing], key=lambda row: row.result.student_id)
