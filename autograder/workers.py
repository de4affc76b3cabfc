"""Where grading worker processes come from: the batch's pool and mutation testing's.

Each worker needs torch, pytest and the grader, seconds of imports on a small machine.
Workers are forked from multiprocessing's fork server, which imports that stack once, so a
worker starts in milliseconds instead of importing it all again. The fork server is started
once per process and kept; it never runs student code (that happens in sandboxes).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from typing import Any

# "__main__" is the program that runs the batch: without it, each worker would run it again.
# `autograder.preload` imports torch, pytest and the grader.
PRELOAD = ("__main__", "autograder.preload")


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
        context()  # sets the preload list the server starts with
        forkserver.ensure_running()


def pool(
    context: BaseContext,
    max_workers: int,
    initializer: Callable[..., None],
    initargs: tuple[Any, ...],
) -> ProcessPoolExecutor:
    """A pool of `max_workers` processes from `context`. Each runs `initializer(*initargs)`
    with this process's environment: the fork server keeps the one of its own start, and a
    worker must see what its batch sees (e.g. a variable set since)."""
    return ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(dict(os.environ), initializer, initargs),
    )


def _start_worker(
    environ: dict[str, str], initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> None:
    os.environ.clear()
    os.environ.update(environ)
    initializer(*initargs)
    # What the worker holds now (torch, pytest, the reference) lives as long as the worker:
    # keep it out of every later garbage collection.
    gc.freeze()
