"""Finding competition submissions in folders, zips and LMS bulk downloads.

Layouts: `<team or student id>.csv|.ipynb`, `<team or student id>/<one file>`, zips holding
either, and Moodle or Canvas downloads, whose students the roster identifies (the
team is then the student's). Anything else becomes a `Found` with a `problem`, so the
intake reports it instead of dropping it. File times are never read: a submission's time
is when the autograder received it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autograder import lms
from autograder.display import printable
from autograder.errors import SubmissionError
from autograder.roster import Roster
from autograder.submissions import IGNORED, unpack_zip

SUFFIXES = (".csv", ".ipynb")


@dataclass(frozen=True)
class Found:
    path: Path
    submitter: str  # a team name or a student id ("" when unknown)
    origin: str = ""  # how the LMS named it
    problem: str | None = None  # set when the entry cannot be submitted


def find(paths: list[Path], unpack_dir: Path, roster: Roster | None) -> list[Found]:
    """Every submission under `paths`, in the order given (folders sorted by name)."""
    found: list[Found] = []
    for path in paths:
        if not path.exists():
            found.append(Found(path, "", problem=f"{printable(str(path))}: no such file or folder"))
        elif path.is_file() and path.suffix.lower() == ".zip":
            try:
                found.extend(_folder(unpack_zip(path, unpack_dir), roster))
            except SubmissionError as exc:
                found.append(Found(path, "", problem=str(exc)))
        elif path.is_dir() and not path.is_symlink():
            found.extend(_folder(path, roster))
        else:
            found.append(_file(path, path.stem))
    return found


def _visible(folder: Path) -> list[Path]:
    return [
        c for c in sorted(folder.iterdir()) if c.name not in IGNORED and not c.name.startswith(".")
    ]


def _folder(folder: Path, roster: Roster | None) -> list[Found]:
    children = _visible(folder)
    if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink():
        inner = _visible(children[0])
        if _lms(inner) is not None:  # an LMS download zipped inside one top folder
            children = inner
    layout = _lms(children)
    if layout is not None:
        # Moodle's other plugins (online text, comments) hold no predictions.
        return [
            _lms_entry(child, layout, roster)
            for child in children
            if layout != lms.MOODLE or _moodle_plugin(child.name) in ("file", None)
        ]
    return [
        _file(child, child.stem) if child.is_file() else _one_inside(child, child.name)
        for child in children
    ]


def _file(path: Path, submitter: str, origin: str = "") -> Found:
    if path.is_symlink() or not path.is_file():
        return Found(path, submitter, origin, f"{printable(path.name)}: not a regular file")
    if path.suffix.lower() not in SUFFIXES:
        return Found(
            path,
            submitter,
            origin,
            f"{printable(path.name)}: not a .csv predictions file or an .ipynb notebook",
        )
    return Found(path, submitter, origin)


def _one_inside(folder: Path, submitter: str, origin: str = "") -> Found:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in SUFFIXES
        and p.is_file()
        and not p.is_symlink()
        and not any(part in IGNORED for part in p.relative_to(folder).parts)
    )
    label = origin or f"{printable(folder.name)}/"
    if len(files) == 1:
        return _file(files[0], submitter, origin)
    if not files:
        return Found(folder, submitter, origin, f"{label}: no .csv or .ipynb file")
    names = ", ".join(printable(p.name) for p in files[:5])
    return Found(folder, submitter, origin, f"{label}: {len(files)} files ({names}); keep one")


def _lms(children: list[Path]) -> str | None:
    if any(lms.parse_moodle(c.name) for c in children):
        return lms.MOODLE
    files = [c for c in children if c.is_file()]
    if files and len(files) == len(children) and all(lms.parse_canvas(c.name) for c in files):
        return lms.CANVAS
    return None


def _moodle_plugin(name: str) -> str | None:
    named = lms.parse_moodle(name)
    return None if named is None else named.plugin


def _lms_entry(child: Path, layout: str, roster: Roster | None) -> Found:
    named = lms.parse_moodle(child.name) if layout == lms.MOODLE else lms.parse_canvas(child.name)
    if named is None:
        return Found(child, "", problem=f"{printable(child.name)}: not named the way {layout} does")
    origin = named.describe()
    if roster is None:
        return Found(child, "", origin, f"{origin}: pass --roster to identify {layout}'s students")
    student, why = roster.match(named.number, named.name)
    if student is None:
        return Found(child, "", origin, why)
    if child.is_dir():
        return _one_inside(child, student.id, origin)
    return _file(child, student.id, origin)
