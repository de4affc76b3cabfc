"""Finding submissions in files, folders and zips, and who they belong to.

Layouts: `<id>.ipynb`, `<id>/<anything>.ipynb`, zips holding either, and the LMS bulk
downloads of Moodle and Canvas (see `lms.py`), whose students the roster identifies.
Anything that cannot be graded (a .py file, two notebooks in one folder, a symlink, a bad
id, an LMS entry no roster line matches) still becomes a Submission with an `error`, so
the batch reports it instead of dropping it. Zips are unpacked by us, entry by entry,
with size and count caps and no path escapes; each file keeps the zip's time for it.

A submission's time (for the late policy) is the file's modification time: for files
from a zip (an LMS download), the time the zip records for it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import struct
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from autograder import lms
from autograder.display import printable
from autograder.errors import SubmissionError

if TYPE_CHECKING:  # the roster is only passed through; it imports this module
    from autograder.roster import Roster

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
IGNORED = {".DS_Store", "Thumbs.db", "__MACOSX", ".ipynb_checkpoints"}
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_BYTES = 2 * 2**30
MAX_ENTRY_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Submission:
    student_id: str
    path: Path
    content_hash: str
    error: str | None = None  # set when the file cannot be graded at all
    submitted_at: datetime | None = None  # the file's (or zip entry's) time, UTC
    origin: str = ""  # how the LMS named it, e.g. "moodle participant 12 (Ann Lee)"
    lms_late: bool = False  # the LMS marked it late (Canvas)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return "unreadable"
    return digest.hexdigest()


def safe_id(name: str) -> str:
    """A printable stand-in for an id that failed validation."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]", "_", name)[:100].lstrip("._-")
    return cleaned or "unnamed"


def invalid_id(name: str) -> str:
    """The id an invalid name is recorded under: printable, and never a valid id.

    `-victim.ipynb` must not be recorded as `victim`, or the real victim's notebook would
    become "a second submission for victim".
    """
    return safe_id(name) + "~invalid"


def _entry(student_id: str, path: Path, error: str | None = None) -> Submission:
    if not ID_PATTERN.match(student_id):
        if error is None:
            error = (
                f"{path.name}: {student_id!r} is not a valid student id "
                "(letters, digits and . _ @ + - only); rename the file to <student id>.ipynb"
            )
        student_id = invalid_id(student_id)
    if error is not None:
        error = printable(error)  # it quotes file names, which may hold anything
    is_file = path.is_file() and not path.is_symlink()
    return Submission(
        student_id,
        path,
        file_hash(path) if path.is_file() else "none",
        error,
        submitted_at=_mtime(path) if is_file else None,
    )


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None


def _is_ignored(path: Path) -> bool:
    return path.name in IGNORED or path.name.startswith(".")


def _from_file(path: Path) -> Submission:
    if path.suffix.lower() == ".ipynb":
        return _entry(path.stem, path)
    return _entry(path.stem, path, f"{path.name}: not a Jupyter notebook (expected .ipynb)")


def _from_folder(folder: Path) -> Submission:
    notebooks = sorted(
        p
        for p in folder.rglob("*.ipynb")
        if not any(part in IGNORED for part in p.relative_to(folder).parts)
        and not p.is_symlink()
        and p.is_file()
    )
    if len(notebooks) == 1:
        return _entry(folder.name, notebooks[0])
    if not notebooks:
        return _entry(folder.name, folder, f"{folder.name}/: no .ipynb notebook in this folder")
    names = ", ".join(str(p.relative_to(folder)) for p in notebooks[:5])
    return _entry(
        folder.name,
        folder,
        f"{folder.name}/: {len(notebooks)} notebooks ({names}); keep only the one to grade",
    )


def _scan(path: Path, out: list[Submission], top: bool, roster: Roster | None = None) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        out.append(_entry(path.stem, path, f"{path.name}: a symbolic link; not followed"))
    elif stat.S_ISDIR(mode):
        if top:
            children = [c for c in sorted(path.iterdir()) if not _is_ignored(c)]
            if _lms_layout(children) is not None:
                out.extend(_from_lms(children, roster))
                return
            for child in children:
                _scan(child, out, top=False)
        else:
            out.append(_from_folder(path))
    elif stat.S_ISREG(mode):
        out.append(_from_file(path))
    else:
        out.append(_entry(path.stem, path, f"{path.name}: not a regular file; not read"))


# --------------------------------------------------------------------------- LMS downloads
def _lms_layout(children: list[Path]) -> str | None:
    """MOODLE when an entry has Moodle's participant naming; CANVAS when every file has
    Canvas's; None for the plain layouts."""
    if any(lms.parse_moodle(c.name) for c in children):
        return lms.MOODLE
    files = [c for c in children if c.is_file()]
    if files and len(files) == len(children) and all(lms.parse_canvas(c.name) for c in files):
        return lms.CANVAS
    return None


def _from_lms(children: list[Path], roster: Roster | None) -> list[Submission]:
    """One submission per student named in a Moodle or Canvas download."""
    layout = _lms_layout(children)
    parse = lms.parse_moodle if layout == lms.MOODLE else lms.parse_canvas
    found: list[Submission] = []
    groups: dict[tuple[str, str], list[tuple[lms.LmsName, Path]]] = defaultdict(list)
    for child in children:
        named = parse(child.name)
        if named is None:
            found.append(
                _entry(
                    child.stem,
                    child,
                    f"{child.name}: not named the way {layout} names submissions; "
                    "grade it separately",
                )
            )
        else:
            groups[(named.number, named.name)].append((named, child))
    for entries in groups.values():
        found.append(_lms_student(entries, roster, layout or ""))
    return found


def _lms_student(
    entries: list[tuple[lms.LmsName, Path]], roster: Roster | None, layout: str
) -> Submission:
    named = entries[0][0]
    notebooks = sorted(
        {nb for _, path in entries for nb in _notebooks_under(path)}, key=lambda p: p.as_posix()
    )
    origin = named.describe()
    late = any(n.late for n, _ in entries)
    fallback_id = safe_id(f"{layout}-{named.number}")
    problem: str | None
    if roster is None:
        student_id = fallback_id
        problem = (
            f"{origin}: a {layout} download names students by {layout}'s numbers; "
            "pass --roster ROSTER.csv (columns id, name, email, team; lms_id helps) to map "
            "them to student ids"
        )
    else:
        student, why = roster.match(named.number, named.name)
        student_id = student.id if student else fallback_id
        problem = None if student else f"{origin}: {why}"
    where = entries[0][1]
    if problem is None and len(notebooks) != 1:
        listed = ", ".join(p.name for p in notebooks[:5])
        problem = (
            f"{origin}: no .ipynb notebook in the download"
            if not notebooks
            else f"{origin}: {len(notebooks)} notebooks ({listed}); keep only the one to grade"
        )
    if problem is None:
        where = notebooks[0]
    sub = _entry(student_id, where, problem)
    return Submission(
        sub.student_id,
        sub.path,
        sub.content_hash,
        sub.error,
        submitted_at=sub.submitted_at,
        origin=origin,
        lms_late=late,
    )


def _notebooks_under(path: Path) -> list[Path]:
    if path.is_symlink():
        return []
    if path.is_file():
        return [path] if path.suffix.lower() == ".ipynb" else []
    return [
        p
        for p in path.rglob("*.ipynb")
        if not any(part in IGNORED for part in p.relative_to(path).parts)
        and not p.is_symlink()
        and p.is_file()
    ]


# --------------------------------------------------------------------------- zips
def unpack_zip(archive: Path, dest: Path) -> Path:
    """Extract a zip safely into `dest/<zip stem>`; refuses traversal, links and bombs."""
    target = dest / archive.stem
    target.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                raise SubmissionError(f"{archive.name}: {len(infos)} entries is too many")
            total = 0
            for info in infos:
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                    raise SubmissionError(
                        f"{archive.name}: entry {info.filename!r} escapes the zip"
                    )
                if stat.S_ISLNK(info.external_attr >> 16):
                    continue  # a symlink entry could point anywhere; never create it
                if info.is_dir():
                    continue
                total += info.file_size
                if info.file_size > MAX_ENTRY_BYTES or total > MAX_ZIP_BYTES:
                    raise SubmissionError(f"{archive.name}: unpacks to more than the size limit")
                out = target.joinpath(*name.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, out.open("wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > info.file_size or written > MAX_ENTRY_BYTES:
                            raise SubmissionError(
                                f"{archive.name}: {info.filename} is larger than its header says"
                            )
                        dst.write(chunk)
                stamp = _entry_time(info)
                os.utime(out, (stamp, stamp))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SubmissionError(f"{archive.name}: not a readable zip ({exc})") from None
    return target


def _entry_time(info: zipfile.ZipInfo) -> float:
    """The time a zip records for an entry: the UTC "extended timestamp" when present,
    else the DOS date and time, read as local time (as `unzip` does)."""
    extra = info.extra
    while len(extra) >= 4:
        tag, size = struct.unpack("<HH", extra[:4])
        body = extra[4 : 4 + size]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return float(struct.unpack("<i", body[1:5])[0])
        extra = extra[4 + size :]
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return time.time()


def discover(paths: list[Path], unpack_dir: Path, roster: Roster | None = None) -> list[Submission]:
    """All submissions under `paths`, one per student id, in id order.

    `roster` identifies the students of LMS downloads (Moodle, Canvas); without one their
    entries become errors that say to pass it.
    """
    found: list[Submission] = []
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise SubmissionError(f"{path}: no such file or folder")
        if path.is_file() and path.suffix.lower() == ".zip":
            try:
                folder = unpack_zip(path, unpack_dir)
            except SubmissionError as exc:
                found.append(_entry(path.stem, path, str(exc)))
                continue
            _scan(_single_folder(folder), found, top=True, roster=roster)
        else:
            _scan(path, found, top=True, roster=roster)
    # A valid id is never displaced: ids of invalid names end in "~invalid", and the
    # second and later notebooks for one id get "~dup", "~dup2"... each an error.
    taken = {sub.student_id for sub in found}
    seen: dict[str, Submission] = {}
    for i, sub in enumerate(found):
        first = seen.get(sub.student_id)
        if first is None:
            seen[sub.student_id] = sub
            continue
        new_id, n = sub.student_id + "~dup", 1
        while new_id in taken:
            n += 1
            new_id = f"{sub.student_id}~dup{n}"
        taken.add(new_id)
        found[i] = Submission(
            new_id,
            sub.path,
            sub.content_hash,
            f"{printable(str(sub.path))}: a second submission for {sub.student_id} "
            f"(first: {printable(str(first.path))}); keep one",
            submitted_at=sub.submitted_at,
            origin=sub.origin,
        )
    return sorted(found, key=lambda s: s.student_id)


def _single_folder(folder: Path) -> Path:
    """An LMS download zipped inside one top folder: that folder; else `folder` itself."""
    children = [c for c in folder.iterdir() if not _is_ignored(c)]
    if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink():
        inner = [c for c in children[0].iterdir() if not _is_ignored(c)]
        if _lms_layout(inner) is not None:
            return children[0]
    return folder
