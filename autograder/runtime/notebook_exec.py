"""Runs a notebook's code cells top to bottom in one namespace, as Jupyter would.

The grader has already rewritten IPython syntax (magics, `!shell`) into calls on
`get_ipython()`; the shim below decides what those do in a sandbox: `%time stmt`
and `%%time`/`%%capture` bodies run, everything else (shell, pip, writefile, html,
timeit...) is a no-op. A cell that raises is recorded and execution goes on.
"""

from __future__ import annotations

import linecache
import sys
import traceback
import types
from typing import Any

# Cell magics whose body is Python that should run (defining what it defines).
_RUN_BODY_CELL_MAGICS = {"time", "capture", "prun"}
# Line magics whose argument is a Python statement that should run.
_RUN_LINE_MAGICS = {"time", "prun"}


class IPythonShim:
    """Just enough of IPython's InteractiveShell for transformed notebook code."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.user_ns = namespace
        self.neutralised: list[str] = []

    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1) -> Any:
        if name in _RUN_LINE_MAGICS and line.strip():
            exec(compile(line, "<magic>", "exec"), self.user_ns)
            return None
        self.neutralised.append(f"%{name} {line}".strip())
        return None

    def run_cell_magic(self, name: str, line: str, cell: str) -> Any:
        if name in _RUN_BODY_CELL_MAGICS:
            exec(compile(cell, "<magic>", "exec"), self.user_ns)
            return None
        self.neutralised.append(f"%%{name} {line}".strip())
        return None

    def system(self, cmd: str) -> None:
        self.neutralised.append(f"!{cmd}")

    def getoutput(self, cmd: str, split: bool = True, depth: int = 0) -> list[str]:
        self.neutralised.append(f"!{cmd}")
        return []

    def magic(self, line: str) -> None:
        self.neutralised.append(f"%{line}")

    def __getattr__(self, name: str) -> Any:
        # Anything else a notebook calls on get_ipython() is harmless to skip.
        return lambda *args, **kwargs: None


def _display(*objects: Any, **kwargs: Any) -> None:
    for obj in objects:
        print(repr(obj))


def make_namespace() -> tuple[dict[str, Any], IPythonShim]:
    """A fresh `__main__` module for the notebook, with `get_ipython` and `display`."""
    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    namespace = module.__dict__
    shim = IPythonShim(namespace)
    namespace["get_ipython"] = lambda: shim
    namespace["display"] = _display
    namespace["__builtins__"] = __builtins__
    return namespace, shim


def cell_filename(index: int) -> str:
    return f"<cell {index}>"


def format_exception(exc: BaseException) -> tuple[str, str]:
    """A one-line summary and a traceback limited to the notebook's own frames."""
    summary = f"{type(exc).__name__}: {exc}".strip()
    if summary.endswith(":"):
        summary = summary[:-1]
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return summary[:1000], "".join(lines)[-4000:]


def run_cell(index: int, source: str, namespace: dict[str, Any]) -> dict[str, str] | None:
    """Execute one cell; return None on success or the error it raised."""
    name = cell_filename(index)
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    try:
        code = compile(source, name, "exec")
        exec(code, namespace)
    except BaseException as exc:
        summary, tb = format_exception(exc)
        return {"error": summary, "traceback": tb}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return None
