"""Worker processes come from a fork server that imported the grading stack once."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from autograder import workers


def _preloaded() -> dict[str, bool]:
    # Asked before the task imports anything: what the worker inherited.
    return {name: name in sys.modules for name in ("torch", "pytest", "autograder.grader.run")}


def _collector() -> tuple[bool, int]:
    return gc.isenabled(), gc.get_freeze_count()


def _nothing() -> None:
    pass


def _variable(name: str) -> str | None:
    return os.environ.get(name)


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="no fork server on this platform",
)
def test_workers_inherit_the_grading_stack() -> None:
    with ProcessPoolExecutor(1, mp_context=workers.context()) as pool:
        assert pool.submit(_preloaded).result() == dict.fromkeys(
            ("torch", "pytest", "autograder.grader.run"), True
        )


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="no fork server on this platform",
)
def test_the_grading_stack_is_frozen_and_collection_back_on() -> None:
    # The fork server imports with the collector paused, then freezes what it imported:
    # a worker inherits torch's objects out of every collection, and collections on.
    with ProcessPoolExecutor(1, mp_context=workers.context()) as pool:
        enabled, frozen = pool.submit(_collector).result()
    assert enabled
    assert frozen > 50_000  # torch alone makes about 150,000 objects


def test_workers_see_the_environment_of_their_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    # Start the fork server first, so it holds an environment without the variable.
    with ProcessPoolExecutor(1, mp_context=workers.context()) as pool:
        pool.submit(_variable, "PATH").result()
    monkeypatch.setenv("AUTOGRADER_TEST_WORKER_ENV", "set after the fork server started")
    with workers.pool(workers.context(), 1, _nothing, ()) as pool:
        seen = pool.submit(_variable, "AUTOGRADER_TEST_WORKER_ENV").result()
    assert seen == "set after the fork server started"
