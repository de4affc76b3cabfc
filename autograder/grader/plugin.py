"""The pytest plugin that runs hidden (or public) tests against one student session.

Fixtures: `student` (the proxy), `reference` (the reference module; hidden tests only).
Before each test both sides are seeded from the test's id, so a regrade gives the same
inputs; each test gets `test_timeout` seconds of student time. Outcomes are collected
with the failure *message* only: assertion rewriting is off (`--assert=plain`) so no
test source leaks into feedback.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autograder.grader.proxy import ForbiddenAPI, StudentCodeError, StudentProxy, StudentTimeout
from autograder.grader.reference import seed_everything
from autograder.grader.session import StudentSession
from autograder.results import Outcome, TestResult
from autograder.spec import AssignmentSpec

MESSAGE_CAP = 1500


def test_seed(base: int, nodeid: str) -> int:
    """A seed per test that depends only on the assignment seed and the test's id."""
    return (base * 1_000_003 + zlib.crc32(nodeid.encode())) % 2**31


class GradingPlugin:
    def __init__(
        self,
        session: StudentSession,
        spec: AssignmentSpec,
        reference: types.ModuleType | None,
    ) -> None:
        self.session = session
        self.spec = spec
        self._reference = reference
        self.results: list[TestResult] = []
        self.collection_errors: list[str] = []

    @pytest.fixture
    def student(self) -> StudentProxy:
        return StudentProxy(self.session)

    @pytest.fixture
    def reference(self) -> types.ModuleType:
        if self._reference is None:
            pytest.fail("public tests cannot use the reference solution")
        return self._reference

    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line("markers", "weight(w): weight of this test within its question")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        seed = test_seed(self.spec.seed, item.nodeid)
        seed_everything(seed)
        self.session.pending_seed = seed
        question = self.spec.question_for_test(item.name)
        self.session.forbid = list(question.forbid) if question else []
        self.session.deadline = time.monotonic() + self.spec.limits.test_timeout
        try:
            yield
        finally:
            self.session.deadline = None
            self.session.forbid = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Iterator[None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.results.append(self._result(item, call, report))

    def _result(
        self, item: pytest.Item, call: pytest.CallInfo[Any], report: pytest.TestReport
    ) -> TestResult:
        name = item.name
        question = self.spec.question_for_test(name)
        marker = item.get_closest_marker("weight")
        weight = float(marker.args[0]) if marker and marker.args else 1.0
        doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
        description = doc.strip().splitlines()[0] if doc.strip() else name
        callspec = getattr(item, "callspec", None)
        if callspec is not None and doc.strip():
            description += f" [{callspec.id}]"  # tell the parametrised cases apart
        if report.passed:
            outcome, message = Outcome.PASSED, ""
        elif report.skipped:
            outcome, message = Outcome.SKIPPED, ""
        else:
            outcome, message = _failure(call, report.when)
        return TestResult(
            test_id=name,
            question_id=question.id if question else None,
            outcome=outcome,
            message=message[:MESSAGE_CAP],
            description=description[:300],
            weight=weight,
            duration_s=round(report.duration, 4),
        )


def _failure(call: pytest.CallInfo[Any], when: str) -> tuple[Outcome, str]:
    excinfo = call.excinfo
    if excinfo is None:
        return Outcome.FAILED, "check failed"
    exc = excinfo.value
    if isinstance(exc, StudentTimeout):
        return Outcome.TIMEOUT, str(exc)
    if isinstance(exc, ForbiddenAPI):
        return Outcome.FORBIDDEN, str(exc)
    if isinstance(exc, StudentCodeError):
        return Outcome.FAILED, str(exc)
    if isinstance(exc, AssertionError):
        return Outcome.FAILED, str(exc) or "check failed"
    if when == "setup":
        return Outcome.ERROR, f"the test could not be set up: {type(exc).__name__}"
    # Usually the student's result had the wrong type for the check to even run.
    return Outcome.FAILED, f"the check could not use the result ({type(exc).__name__}: {exc})"


def run_tests(tests_dir: Path, plugin: GradingPlugin) -> list[TestResult]:
    """Run every test file in `tests_dir` with pytest, in this process, quietly."""
    args = [
        str(tests_dir),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        # Plugins a grading run does not need; unraisableexception alone costs two full
        # gc.collect() passes per run in a process that holds torch.
        "-p",
        "no:unraisableexception",
        "-p",
        "no:threadexception",
        "-p",
        "no:junitxml",
        "-p",
        "no:pastebin",
        "-p",
        "no:doctest",
        "-p",
        "no:stepwise",
        # Log capture and warning capture wrap every test phase in handler juggling; tests
        # neither log nor need warnings (ignored anyway), nor a debugger or fault dumps.
        "-p",
        "no:logging",
        "-p",
        "no:warnings",
        "-p",
        "no:faulthandler",
        "-p",
        "no:debugging",
        "-p",
        "no:setuponly",
        "-p",
        "no:setupplan",
        "--assert=plain",
        # Feedback comes from the exception itself (`_failure`); pytest's own traceback
        # rendering parses test sources and costs more than the checks.
        "--tb=no",
        "-c",
        os.devnull,
        "--rootdir",
        str(tests_dir),
        "-W",
        "ignore",
    ]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        pytest.main(args, plugins=[plugin])
    return plugin.results
