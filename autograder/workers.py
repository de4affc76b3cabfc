"""Where grading worker processes come from: the batch's pool and mutation testing's.

Each worker needs torch, pytest and the grader, seconds of imports on a small machine.
Workers are forked from multiprocessing's fork server, which imports that stack once, so a
worker starts in milliseconds instead of importing it all again. The fork server is started
once per process and kept; it never runs student code (that happens in sandboxes).
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

# "__main__" is the program that runs the batch: without it, each worker would run it again.
PRELOAD = ("__main__", "numpy", "torch", "pytest", "autograder.grade")


def context() -> BaseContext:
    """The multiprocessing context for worker pools: the preloaded fork server where the
    platform has one, else a fresh interpreter per worker."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload(list(PRELOAD))
    return server


def start() -> None:
    """Start the fork server now, without waiting: it imports the grading stack while the
    caller goes on. The first pool uses it (and waits for it if need be)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context()
        forkserver.ensure_running()


def environment() -> dict[str, str]:
    """This process's environment, for `adopt_environment` in a worker."""
    return dict(os.environ)


def adopt_environment(environ: dict[str, str]) -> None:
    """Take the environment the pool was made with: the fork server keeps the one of its
    own start, and a worker must see what its batch sees (e.g. a variable set since)."""
    os.environ.clear()
    os.environ.update(environ)
