"""Text a student controls (file names, ids, messages quoting them), made safe to print.

A file name may hold terminal escape sequences (OSC 52 writes the clipboard, CSI 2J clears
the screen) or bytes that are not UTF-8; printed raw they act on the instructor's terminal
or crash the writer. Here they become visible escapes instead, e.g. ``\\x1b`` and ``\\xe9``.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 and C1 controls and DEL, but not tab and newline, which layout uses.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with control characters and undecodable bytes written as backslash escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", storable(text) or "")


def storable(text: str | None) -> str | None:
    """`text` with lone surrogates (undecodable file-name bytes, `"\\ud800"` in a notebook's
    JSON) written as escapes: SQLite, CSV and HTML writers refuse them."""
    if text is None:
        return None
    return _SURROGATE.sub(_escape_surrogate, text)


def _escape_surrogate(m: re.Match[str]) -> str:
    code = ord(m[0])
    # U+DC80..U+DCFF stand for the bytes 0x80..0xFF that surrogateescape could not decode.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def safe(text: str) -> str:
    """Text for rich markup: its brackets escaped, control characters shown, not sent."""
    return escape(printable(text))
