"""The pytest plugin that runs hidden (or public) tests against one student session.

Fixtures: `student` (the proxy), `reference` (the reference module; hidden tests only).
Before each test both sides are seeded from the test's id, so a regrade gives the same
inputs; each test gets `test_timeout` seconds of student time. Outcomes are collected
with the failure *message* only: assertion rewriting is off (`--assert=plain`) so no
test source leaks into feedback.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import types
import zlib
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from autograder.grader.proxy import ForbiddenAPI, StudentCodeError, StudentProxy, StudentTimeout
from autograder.grader.reference import limit_threads, seed_everything
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
        session: StudentSession | None,
        spec: AssignmentSpec,
        reference: types.ModuleType | None,
    ) -> None:
        self.session = session
        self.spec = spec
        self._reference = reference
        self.results: list[TestResult] = []
        self.collection_errors: list[str] = []

    def bind(self, session: StudentSession | None) -> None:
        """Grade `session` from now on (one plugin serves a whole batch)."""
        self.session = session
        self.results = []

    def take_results(self) -> list[TestResult]:
        results, self.results = self.results, []
        return results

    def _current(self) -> StudentSession:
        if self.session is None:
            raise RuntimeError("no submission is being graded")
        return self.session

    @pytest.fixture
    def student(self) -> StudentProxy:
        return StudentProxy(self._current())

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

    # New-style wrappers (`wrapper=True`): pluggy runs them as plain generators, without the
    # result object and shim an old-style `hookwrapper` costs on each of the thousands of
    # calls a batch makes.
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        session = self._current()
        seed = test_seed(self.spec.seed, item.nodeid)
        seed_everything(seed)
        session.pending_seed = seed
        question = self.spec.question_for_test(item.name)
        session.forbid = list(question.forbid) if question else []
        session.deadline = time.monotonic() + self.spec.limits.test_timeout
        try:
            return (yield)
        finally:
            session.deadline = None
            session.forbid = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[Any]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.results.append(self._result(item, call, report))
        return report

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


PYTEST_ARGS = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:randomly",
    # The terminal reporter: results come from our hooks, nothing is printed.
    "-p",
    "no:terminal",
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
    # Log and warning capture wrap every test phase in handler juggling; tests neither log
    # nor need warnings, nor a debugger or fault dumps.
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
    # In-memory capture: fd capture makes temporary files and dup2s per test phase.
    "--capture=sys",
    "-c",
    os.devnull,
)


@dataclass
class _Job:
    session: StudentSession
    done: threading.Event = field(default_factory=threading.Event)
    results: list[TestResult] = field(default_factory=list)
    error: BaseException | None = None


class TestRunner:
    """Runs the tests in `tests_dir` for one submission after another, in ONE pytest session.

    `pytest.main` per submission parses options, registers plugins and collects the tests
    every time, which costs about as much as the checks themselves. Here pytest runs once,
    in a thread of its own, and its run loop serves one submission per `run`: every test
    with full setup and teardown, the last one tearing down session and module fixtures too,
    so no fixture value of one submission reaches the next.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(
        self, tests_dir: Path, spec: AssignmentSpec, reference: types.ModuleType | None
    ) -> None:
        self.tests_dir = tests_dir
        self.plugin = GradingPlugin(None, spec, reference)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._ended: BaseException | None = None

    @property
    def collection_errors(self) -> list[str]:
        return self.plugin.collection_errors

    def run(self, session: StudentSession) -> list[TestResult]:
        """The results of every test against `session` (collection errors: see
        `collection_errors`, which stay the same for every run)."""
        self.start()
        job = _Job(session)
        self._jobs.put(job)
        while not job.done.wait(0.5):
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError(f"pytest stopped while running {self.tests_dir}: {self._ended}")
        if job.error is not None:
            raise job.error
        return job.results

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=30)

    def start(self) -> None:
        """Start pytest (it collects the tests) unless it is running; `run` does it too."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.plugin.collection_errors.clear()
        self._thread = threading.Thread(target=self._main, name="pytest", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        limit_threads(self.plugin.spec.limits.threads)  # this thread runs the tests' checks
        args = [str(self.tests_dir), *PYTEST_ARGS, "--rootdir", str(self.tests_dir)]
        try:
            code = pytest.main(args, plugins=[self.plugin, _Loop(self)])
            self._ended = RuntimeError(f"pytest exited with {code!s}")
        except BaseException as exc:  # reported to the waiting `run`
            self._ended = exc


class _Loop:
    """pytest's run loop, replaced: it waits for submissions instead of running once."""

    def __init__(self, runner: TestRunner) -> None:
        self.runner = runner

    def pytest_configure(self, config: pytest.Config) -> None:
        # Feedback comes from the exception itself (`_failure`); pytest's own traceback
        # rendering parses test sources and costs more than the checks.
        config.option.tbstyle = "no"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        plugin = self.runner.plugin
        items = list(session.items)
        for item in items:
            # Even with tbstyle "no", pytest walks and filters the traceback of every
            # failure for a report nobody reads (about a millisecond per notebook).
            item.repr_failure = _unread_failure  # type: ignore[method-assign]
            item._repr_failure_py = _unread_failure  # type: ignore[method-assign]
        while (job := self.runner._jobs.get()) is not None:
            try:
                plugin.bind(job.session)
                if not plugin.collection_errors:
                    for i, item in enumerate(items):
                        following = items[i + 1] if i + 1 < len(items) else None
                        item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
                job.results = plugin.take_results()
            except BaseException as exc:  # handed to the caller of `run`
                job.error = exc
            finally:
                plugin.bind(None)
                job.done.set()
        return True


def _unread_failure(excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
    """A test report's failure text: the exception's name (feedback: `_failure`)."""
    return excinfo.typename
