"""Where grading worker processes come from: the batch's pool and mutation testing's.

Each worker needs torch, pytest and the grader, seconds of imports on a small machine.
Workers are forked from multiprocessing's fork server, which imports that stack once, so a
worker starts in milliseconds instead of importing it all again. The fork server is started
once per process and kept; it never runs student code (that happens in sandboxes).
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import BaseContext

# "__main__" is the program that runs the batch (e.g. the CLI): without it, each worker
# would import it again.
PRELOAD = ("__main__", "numpy", "torch", "pytest", "autograder.grader.run")


def context() -> BaseContext:
    """The multiprocessing context for worker pools: the preloaded fork server where the
    platform has one, else a fresh interpreter per worker."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(list(PRELOAD))
    return forkserver


def environment() -> dict[str, str]:
    """This process's environment, for `adopt_environment` in a worker."""
    return dict(os.environ)


def adopt_environment(environ: dict[str, str]) -> None:
    """Take the environment the pool was made with: the fork server keeps the one of its
    own start, and a worker must see what its batch sees (e.g. a variable set since)."""
    os.environ.clear()
    os.environ.update(environ)
