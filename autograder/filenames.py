"""File names made from student ids (reports, Gradescope folders): never a path escape."""

from __future__ import annotations

import hashlib
import re

_SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
_RESERVED_STEMS = {"summary"}  # would overwrite summary.md / summary.html


def student_stem(student_id: str) -> str:
    """The file name (without suffix) for a student: the id itself when it is safe."""
    if _SAFE_STEM.fullmatch(student_id) and student_id.lower() not in _RESERVED_STEMS:
        return student_id
    # Odd ids (path separators, leading dots, "summary") get a cleaned name plus a hash,
    # so they can neither escape their folder nor collide with another student's file.
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]", "_", student_id).lstrip("._-+@")[:60]
    digest = hashlib.sha256(student_id.encode()).hexdigest()[:8]
    return f"{cleaned or 'student'}-{digest}"
