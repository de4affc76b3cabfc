"""Reading submitted notebooks (untrusted files) into code cells the runtime can execute.

Tolerant where Jupyter is (missing cell ids, odd metadata, Colab exports, nbformat 3),
strict where grading would be meaningless (not JSON, no cells), with a message that
names the file and the problem. IPython syntax is rewritten here, on the trusted side,
into plain Python that calls `get_ipython()`, so the sandbox needs no IPython.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder.errors import NotebookError

MAX_NOTEBOOK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class CodeCell:
    index: int  # position among all cells of the notebook, 0-based
    source: str  # as the student wrote it


@dataclass(frozen=True)
class Notebook:
    path: Path
    cells: list[CodeCell]

    def runnable(self) -> list[dict[str, Any]]:
        """The cells as the runtime receives them: IPython syntax made plain Python."""
        return [{"index": c.index, "source": to_python(c.source)} for c in self.cells]


@functools.cache
def _transformer() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


# What IPython rewrites: an escape (magic, shell, help, autocall) opening a line, a magic
# or shell command assigned, help asked at the end of a line, an indented first line and
# pasted prompts. A cell with none of these is plain Python that IPython would return
# unchanged: it skips the tokenizing rewrite, about 5 ms per notebook per worker.
_IPYTHON_SYNTAX = re.compile(r"^[ \t]*[%!?/,;]|=[ \t]*[%!]|\?[ \t]*$|^(>>>|In \[)", re.MULTILINE)


def _plain_python(source: str) -> bool:
    if "\r" in source:  # old Mac line ends: leave them to IPython
        return False
    return not source.lstrip("\n")[:1].isspace() and not _IPYTHON_SYNTAX.search(source)


def to_python(source: str) -> str:
    """Rewrite magics and `!shell` lines into calls the runtime's shim neutralises."""
    if _plain_python(source):
        return source
    try:
        return str(_transformer().transform_cell(source))
    except Exception:
        return source


def _source_text(source: Any) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(s, str) for s in source):
        return "".join(source)
    raise ValueError("a cell's source is neither text nor a list of lines")


def _cells(data: dict[str, Any]) -> list[Any]:
    if "cells" in data:
        cells = data["cells"]
    elif "worksheets" in data:  # nbformat 3: code lives in worksheets[*].cells[*].input
        cells = []
        for sheet in data.get("worksheets") or []:
            for cell in sheet.get("cells", []) if isinstance(sheet, dict) else []:
                if isinstance(cell, dict) and cell.get("cell_type") == "code":
                    cell = {"cell_type": "code", "source": cell.get("input", "")}
                cells.append(cell)
    else:
        raise ValueError("it has no `cells`: not a Jupyter notebook")
    if not isinstance(cells, list):
        raise ValueError("`cells` is not a list")
    return cells


def parse_notebook(text: str, path: Path) -> Notebook:
    """Code cells of a notebook given as text; raises NotebookError naming `path`."""
    if not text.strip():
        raise NotebookError(f"{path.name}: the file is empty; submit the .ipynb saved from Jupyter")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{path.name}: not valid notebook JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); the file may be truncated or not a notebook"
        ) from None
    except RecursionError:
        raise NotebookError(f"{path.name}: JSON nested too deeply to be a notebook") from None
    if not isinstance(data, dict):
        raise NotebookError(f"{path.name}: not a Jupyter notebook (the JSON is not an object)")
    try:
        cells = _cells(data)
        code = []
        for index, cell in enumerate(cells):
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                code.append(CodeCell(index, _source_text(cell.get("source", ""))))
    except ValueError as exc:
        raise NotebookError(f"{path.name}: {exc}") from None
    return Notebook(path, code)


def read_notebook(path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> Notebook:
    """Read and parse a submitted notebook file."""
    if path.suffix.lower() != ".ipynb":
        raise NotebookError(
            f"{path.name}: not a Jupyter notebook (expected a .ipynb file); "
            "ask the student to submit the notebook itself"
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise NotebookError(
                f"{path.name}: {size / 2**20:.0f} MB is over the {max_bytes / 2**20:.0f} MB limit "
                "for a notebook; clear its outputs (Cell > All Output > Clear) and resubmit"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"{path.name}: cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookError(
            f"{path.name}: not UTF-8 text (byte {exc.start}); a notebook is UTF-8 JSON"
        ) from None
    return parse_notebook(text, path)
