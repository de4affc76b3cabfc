"""Markdown that shows student text literally: no links, images, HTML or markup.

Used by the Markdown reports: every piece of text a student controls goes through one
of these filters, so it renders as the characters the student typed and nothing else.
"""

from __future__ import annotations

import re

# Enough to stop emphasis, links, images, code, tables and strikethrough mid-line; the
# templates never start a line with this text, so block markers (#, -, 1.) cannot trigger.
_MD_INLINE = re.compile(r"([\\`*\[\]|~])")
# `_` between two letters or digits (snake_case) can never emphasise; leave it readable.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def md_text(text: str) -> str:
    """Inline Markdown that shows `text` literally (one line, no HTML, no markup)."""
    flat = " ".join(str(text).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_UNDERSCORE.sub(r"\\_", _MD_INLINE.sub(r"\\\1", flat))


def md_code(text: str, in_table: bool = False) -> str:
    """An inline code span showing `text` literally (one line); `|` escaped inside tables."""
    flat = " ".join(str(text).split())
    if not flat:
        return ""
    ticks = "`" * (_longest_run(flat, "`") + 1)
    # A backtick at either end needs a space between it and the fence (stripped on render).
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    span = f"{ticks}{pad}{flat}{pad}{ticks}"
    return span.replace("|", "\\|") if in_table else span


def md_block(text: str, indent: int = 0) -> str:
    """A fenced code block no line of `text` can close (its fence is longer than any run)."""
    # A lone \r is a line end to Markdown: left in, it would start an unindented line that
    # ends the enclosing list item, and the fence with it.
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    pad = " " * indent
    lines = [fence, *text.rstrip("\n").split("\n"), fence]
    return "\n".join(pad + line if line else line for line in lines)


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(run) for run in runs), default=0)
