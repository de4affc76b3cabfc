"""What the gradebook says of one student's current attempt: shown when a row is wrong."""

from __future__ import annotations

from pathlib import Path

from autograder.gradebook import Gradebook


def note(course: Path, assignment: str, student: str) -> str:
    """The current attempt's status, message and the end of its stderr, in one string."""
    with Gradebook.open(course / "gradebook.db") as book:
        found = [s.result for s in book.current(assignment) if s.result.student_id == student]
    if not found:
        return f"{student}: no current attempt in the gradebook"
    result = found[0]
    return (
        f"{student}: {result.status.value}: {result.message!r}; "
        f"stderr ends {result.stderr[-800:]!r}"
    )
