"""Loading the instructor's reference solution into the trusted grader process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import random
import types
from pathlib import Path

from autograder.errors import CourseError, NotebookError
from autograder.notebook import read_notebook, to_python
from autograder.runtime.notebook_exec import IPythonShim, format_exception


def reference_file(folder: Path) -> Path:
    """The reference notebook or module in `reference_solutions/<name>/`."""
    if not folder.is_dir():
        raise CourseError(f"{folder}: missing; put the reference solution (a .ipynb or .py) there")
    found = sorted(folder.glob("*.ipynb")) + sorted(folder.glob("*.py"))
    if len(found) != 1:
        listing = ", ".join(p.name for p in found) or "nothing"
        raise CourseError(
            f"{folder}: expected exactly one reference notebook or module, found {listing}"
        )
    return found[0]


def seed_everything(seed: int) -> None:
    """Seed the trusted side's generators the same way the runtime seeds the student's."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    if torch.backends.cuda.is_built():
        torch.manual_seed(seed)
    else:
        # All torch.manual_seed changes on a CPU build; it also queues seeding for devices
        # this build lacks, capturing a stack trace each time (milliseconds per test).
        torch.default_generator.manual_seed(seed)


def limit_threads(threads: int) -> None:
    """Run the torch work of the calling thread (the reference, the tests' checks) on
    `threads` threads, the budget a sandbox gets. torch's default, one thread per core in
    each of --jobs workers, makes the workers' threads outnumber the cores and spin waiting
    for each other (backprop at --jobs 2 took twice as long on 2 cores). OpenMP keeps the
    count per thread: each thread that computes must call this."""
    import torch

    torch.set_num_threads(threads)


def load_reference(folder: Path, seed: int = 0) -> types.ModuleType:
    """Execute the reference and return its namespace as a module (trusted code)."""
    path = reference_file(folder)
    seed_everything(seed)
    if path.suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"reference_{folder.name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise CourseError(f"{path}: the reference solution raised {exc!r}; fix it") from None
        return module
    try:
        notebook = read_notebook(path)
    except NotebookError as exc:
        raise CourseError(f"{path}: {exc}") from None
    module = types.ModuleType(f"reference_{folder.name}")
    namespace = module.__dict__
    shim = IPythonShim(namespace)
    namespace["get_ipython"] = lambda: shim
    namespace["display"] = lambda *a, **k: None
    for cell in notebook.cells:
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # its self-test prints are noise here
                exec(
                    compile(to_python(cell.source), f"<reference cell {cell.index}>", "exec"),
                    namespace,
                )
        except Exception as exc:
            summary, _ = format_exception(exc)
            raise CourseError(
                f"{path}: cell {cell.index} of the reference raised {summary}; "
                "the reference must run top to bottom without errors"
            ) from None
    return module
