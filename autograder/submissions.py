"""Finding submissions in files, folders and zips, and who they belong to.

Layouts: `<id>.ipynb`, `<id>/<anything>.ipynb`, and zips holding either. Anything that
cannot be graded (a .py file, two notebooks in one folder, a symlink, a bad id) still
becomes a Submission with an `error`, so the batch reports it instead of dropping it.
Zips are unpacked by us, entry by entry, with size and count caps and no path escapes.
"""

from __future__ import annotations

import hashlib
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autograder.errors import SubmissionError

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


def _entry(student_id: str, path: Path, error: str | None = None) -> Submission:
    if error is None and not ID_PATTERN.match(student_id):
        error = (
            f"{path.name}: {student_id!r} is not a valid student id (letters, digits and . _ @ + - "
            "only); rename the file to <student id>.ipynb"
        )
        student_id = safe_id(student_id)
    return Submission(student_id, path, file_hash(path) if path.is_file() else "none", error)


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


def _scan(path: Path, out: list[Submission], top: bool) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        out.append(_entry(path.stem, path, f"{path.name}: a symbolic link; not followed"))
    elif stat.S_ISDIR(mode):
        if top:
            for child in sorted(path.iterdir()):
                if not _is_ignored(child):
                    _scan(child, out, top=False)
        else:
            out.append(_from_folder(path))
    elif stat.S_ISREG(mode):
        out.append(_from_file(path))
    else:
        out.append(_entry(path.stem, path, f"{path.name}: not a regular file; not read"))


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
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SubmissionError(f"{archive.name}: not a readable zip ({exc})") from None
    return target


def discover(paths: list[Path], unpack_dir: Path) -> list[Submission]:
    """All submissions under `paths`, one per student id, in id order."""
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
            _scan(folder, found, top=True)
        else:
            _scan(path, found, top=True)
    seen: dict[str, Submission] = {}
    for sub in found:
        if sub.student_id in seen:
            first = seen[sub.student_id]
            found[found.index(sub)] = Submission(
                sub.student_id + "~dup",
                sub.path,
                sub.content_hash,
                f"{sub.path}: a second submission for {sub.student_id} (first: {first.path}); "
                "keep one",
            )
        else:
            seen[sub.student_id] = sub
    return sorted(found, key=lambda s: s.student_id)
