"""A sandbox that fails to start is tried once more, on a fresh one, before a submission is
recorded as an error: a daemon's hiccup or a dead zygote says nothing about the notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.course import Course
from autograder.grader.run import Grader
from autograder.results import Status
from autograder.sandbox import LocalSandbox
from autograder.sandbox.base import LaunchConfig, SandboxProcess
from tests.conftest import write_notebook
from tests.grader.toy import CORRECT, make_toy_course


class FlakySandbox:
    """The local sandbox, except that its first `failures` starts fail."""

    name = "local"

    def __init__(self, base: LocalSandbox, failures: int) -> None:
        self.base, self.failures = base, failures
        self.starts = 0
        self.closed = 0

    def missing(self) -> list[str]:
        return self.base.missing()

    def isolation(self) -> str:
        return self.base.isolation()

    def start(self, config: LaunchConfig) -> SandboxProcess:
        self.starts += 1
        if self.starts <= self.failures:
            raise OSError(f"start {self.starts} failed: fork failed (resource unavailable)")
        return self.base.start(config)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_toy_course(tmp_path_factory.mktemp("course"))
    write_notebook(root / "submissions" / "alice.ipynb", CORRECT)
    return root


def grade(course: Path, failures: int) -> tuple[FlakySandbox, object]:
    sandbox = FlakySandbox(LocalSandbox(mask=(course,)), failures)
    grader = Grader.hidden(Course.at(course).assignment("toy"), sandbox)
    try:
        notebook = course / "submissions" / "alice.ipynb"
        return sandbox, grader.grade("alice", notebook, "hash")
    finally:
        grader.close()


def test_a_sandbox_that_fails_once_is_started_again(course: Path) -> None:
    sandbox, result = grade(course, failures=1)
    assert result.status is Status.GRADED, result.message
    assert result.score == result.max_score
    assert sandbox.starts == 2 and sandbox.closed == 1
    # The instructor is told, with the first failure's reason.
    assert result.retried.startswith("the sandbox failed once (could not start"), result.retried
    assert "start 1 failed: fork failed" in result.retried, result.retried
    assert result.retried in result.message  # kept in the gradebook


def test_a_sandbox_that_fails_twice_is_an_error_naming_both_failures(course: Path) -> None:
    sandbox, result = grade(course, failures=5)
    assert sandbox.starts == 2  # not more: a broken machine must not stall the batch
    assert result.status is Status.ERROR
    assert result.score == 0
    assert "start 2 failed" in result.message and "start 1 failed" in result.message
    assert not result.retried  # not graded at all
    assert {q.feedback for q in result.questions} == {"the sandbox failed; regrade this submission"}
