"""The floor: notebooks graded in-process with no isolation at all.

One warm process imports torch and the equivalent checks once, then forks a child per
notebook; the child execs the notebook's code cells in a fresh `__main__` namespace (a cell
that raises is skipped, as everywhere else), runs every check, writes its scores and exits.
At most `--jobs` children run at once. Nothing is cheaper than this and still runs the
student's code, so it bounds what any grader can reach on this machine.

    python bench/floor.py CHECKS.py NOTEBOOK_DIR --jobs 2 --out RESULTS.json

RESULTS.json: {"warmup_s", "wall_s" (from the first fork to the last child reaped),
"cpu_s" (CPU time of the children), "students": {id: {"total", "questions", "failed",
"peak_mb", "error"}}}; peak_mb is the child's maximum resident set (from wait4), the pages
it shares with the warm parent included.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any


def load_checks(path: Path) -> Any:
    name = "bench_checks_floor"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cell_sources(notebook: Path) -> list[str]:
    data = json.loads(notebook.read_text(encoding="utf-8"))
    sources = []
    for cell in data.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            sources.append(source if isinstance(source, str) else "".join(source))
    return sources


class IPythonShim:
    """`get_ipython()` for cells with IPython syntax: `%time`/`%%time`/`%%capture` bodies run,
    other magics and `!shell` lines do nothing (as in the autograder's runtime)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.user_ns = namespace

    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1) -> None:
        if name in ("time", "prun") and line.strip():
            exec(compile(line, "<magic>", "exec"), self.user_ns)

    def run_cell_magic(self, name: str, line: str, cell: str) -> None:
        if name in ("time", "capture", "prun"):
            exec(compile(cell, "<magic>", "exec"), self.user_ns)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def transformer() -> Any:
    """IPython's input transformer (magics and `!shell` to plain Python), if IPython is here."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return None
    return TransformerManager()


def to_python(manager: Any, source: str) -> str:
    if manager is None or not any(mark in source for mark in ("%", "!", "?")):
        return source
    try:
        return str(manager.transform_cell(source))
    except Exception:
        return source


def grade_in_child(checks: Any, notebook: Path, out: Path, manager: Any) -> None:
    """Runs in the forked child: never returns."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module
        namespace = module.__dict__
        namespace["display"] = lambda *a, **k: None
        shim = IPythonShim(namespace)
        namespace["get_ipython"] = lambda: shim
        for index, source in enumerate(cell_sources(notebook)):
            # a failing cell is skipped, as in Jupyter
            with contextlib.suppress(BaseException):
                exec(compile(to_python(manager, source), f"<cell {index}>", "exec"), namespace)
        result = checks.score(namespace)
        out.write_text(json.dumps(result), encoding="utf-8")
        code = 0
    except BaseException as exc:
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), encoding="utf-8")
    finally:
        os._exit(code)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checks", type=Path)
    parser.add_argument("notebooks", type=Path, help="a folder of <student>.ipynb, or one file")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the spec's)")
    parser.add_argument("--describe", action="store_true", help="also write the list of checks")
    args = parser.parse_args()

    started = time.monotonic()
    import torch

    torch.set_num_threads(args.threads)
    checks = load_checks(args.checks)
    manager = transformer()
    paths = [args.notebooks] if args.notebooks.is_file() else sorted(args.notebooks.glob("*.ipynb"))
    warmup = time.monotonic() - started
    students: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        running: dict[int, tuple[str, Path]] = {}
        todo = list(paths)
        first = time.monotonic()
        cpu0 = children_cpu()
        while todo or running:
            while todo and len(running) < args.jobs:
                path = todo.pop(0)
                out = Path(tmp) / f"{path.stem}.json"
                pid = os.fork()
                if pid == 0:
                    grade_in_child(checks, path, out, manager)
                running[pid] = (path.stem, out)
            pid, status, usage = os.wait4(-1, 0)
            if pid not in running:
                continue
            student, out = running.pop(pid)
            try:
                result = json.loads(out.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                result = {"error": f"the child died (wait status {status})"}
            result["peak_mb"] = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
            students[student] = result
        wall = time.monotonic() - first
        cpu = children_cpu() - cpu0
    report: dict[str, Any] = {
        "warmup_s": warmup,
        "wall_s": wall,
        "cpu_s": cpu,
        "students": students,
    }
    if args.describe:
        report["cases"] = checks.cases()
    args.out.write_text(json.dumps(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
