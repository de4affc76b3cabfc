"""Writing the files instructors open in spreadsheets: atomic, and safe from formulas.

Shared by the exports, the manual grading sheet and the course grade.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from autograder.errors import AutograderError

# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """`text`, with a leading `'` when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def unsafe_text(text: str) -> str:
    """Undo `safe_text` (for files we wrote and read back)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


@contextlib.contextmanager
def atomic_text(out: Path) -> Iterator[IO[str]]:
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
