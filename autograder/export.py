"""Export the current grades of an assignment (the `autograder export` verb's library side).

The default CSV has the columns DESIGN.md fixes: `student_id`, one column per question
id in spec order, `score`, `max_score`, `status`. More formats register in `FORMATS`.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from autograder.errors import AutograderError
from autograder.gradebook import StoredResult
from autograder.results import format_points
from autograder.spec import AssignmentSpec

# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Exporter = Callable[[AssignmentSpec, list[StoredResult], Path], Path]


def export_csv(spec: AssignmentSpec, rows: list[StoredResult], out: Path) -> Path:
    """Write one CSV row per student to `out` (atomically) and return `out`.

    A question waiting for manual grading, or with no stored score at all, is an empty
    cell; `score` sums the stored question scores; `max_score` is the one stored at
    grading time.
    """
    question_ids = [q.id for q in spec.questions]
    with _atomic_text(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["student_id", *question_ids, "score", "max_score", "status"])
        for row in rows:
            writer.writerow(_csv_row(row, question_ids))
    return out


def _csv_row(row: StoredResult, question_ids: list[str]) -> list[str]:
    scores = {q.question_id: q.score for q in row.result.questions}
    cells = [_cell(scores.get(qid)) for qid in question_ids]
    return [
        _safe_text(row.result.student_id),
        *cells,
        format_points(row.result.score),
        format_points(row.max_score),
        row.result.status.value,
    ]


def _cell(score: float | None) -> str:
    return "" if score is None else format_points(score)


def _safe_text(text: str) -> str:
    # Student ids come from file names a student may choose; never let one become a formula.
    return "'" + text if text.startswith(_FORMULA_START) else text


@contextlib.contextmanager
def _atomic_text(out: Path) -> Iterator[IO[str]]:
    """A text file that replaces `out` only once fully written (no half-written exports)."""
    # A fresh name opened with "x" (not mkstemp) so the file gets the usual umask permissions.
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fh = open(tmp, "x", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise AutograderError(
            f"cannot write {out}: {exc.strerror}; check that {out.parent} is writable "
            "or choose another file with --out"
        ) from None
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


FORMATS: dict[str, Exporter] = {"csv": export_csv}
