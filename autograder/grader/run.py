"""Grading one notebook: sandbox run -> hidden tests -> theory answers -> SubmissionResult."""

from __future__ import annotations

import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.course import Assignment
from autograder.errors import CourseError, NotebookError, SandboxError
from autograder.grader.proxy import MissingName, StudentCodeError
from autograder.grader.reference import limit_threads, load_reference
from autograder.grader.scoring import score_code_questions
from autograder.grader.session import StudentSession
from autograder.grader.theory import NOT_ANSWERED, grade_answer
from autograder.notebook import read_notebook
from autograder.results import QuestionResult, Status, SubmissionResult, TestResult
from autograder.sandbox.base import LaunchConfig, Sandbox
from autograder.spec import AssignmentSpec, Question, QuestionKind

if TYPE_CHECKING:
    from autograder.grader.plugin import TestRunner


def launch_config(
    assignment: Assignment, gpu: str | None = None, gpu_memory_fraction: float | None = None
) -> LaunchConfig:
    limits = assignment.spec.limits
    return LaunchConfig(
        memory_mb=limits.memory_mb,
        max_processes=limits.max_processes,
        scratch_mb=limits.scratch_mb,
        output_bytes=limits.output_bytes,
        max_open_files=limits.max_open_files,
        message_bytes=limits.message_mb * 2**20,
        threads=limits.threads,
        # CPU seconds across the whole run: generous, the wall clock is the real limit.
        cpu_seconds=int(limits.notebook_timeout + limits.test_timeout * 50) * limits.threads,
        data_dir=assignment.data,
        gpu=gpu,
        gpu_memory_fraction=gpu_memory_fraction,
        preload=tuple(limits.preload),
    )


def zero_scores(spec: AssignmentSpec, feedback: str) -> list[QuestionResult]:
    """Every question at zero: what a submission that could not run earns."""
    return [QuestionResult(q.id, q.kind.value, 0.0, q.points, feedback) for q in spec.questions]


@dataclass
class Grader:
    """Grades the submissions of one assignment; build one per worker process."""

    assignment: Assignment
    sandbox: Sandbox
    reference: types.ModuleType | None
    config: LaunchConfig
    tests_dir: Path
    _runner: TestRunner | None = field(default=None, repr=False, compare=False)

    @classmethod
    def hidden(
        cls,
        assignment: Assignment,
        sandbox: Sandbox,
        gpu: str | None = None,
        gpu_memory_fraction: float | None = None,
    ) -> Grader:
        """A grader running the hidden tests against the reference (loaded once, here)."""
        if missing := assignment.spec.missing_answers():
            raise CourseError(
                f"{assignment.folder / 'assignment.toml'}: no `answer` for {', '.join(missing)}; "
                "add the answer key before grading"
            )
        config = launch_config(assignment, gpu, gpu_memory_fraction)
        # A warm sandbox starts importing torch while the reference loads here.
        warm_up = getattr(sandbox, "warm_up", None)
        if warm_up is not None:
            warm_up(config)
        limit_threads(assignment.spec.limits.threads)
        reference = load_reference(assignment.reference_folder, assignment.spec.seed)
        grader = cls(assignment, sandbox, reference, config, assignment.hidden_tests)
        # pytest collects the hidden tests while the sandbox is still warming up.
        grader._test_runner().start()
        return grader

    @classmethod
    def public(cls, assignment: Assignment, sandbox: Sandbox, tests_dir: Path) -> Grader:
        """A grader running only the public tests (what `autograder check` does)."""
        return cls(assignment, sandbox, None, launch_config(assignment), tests_dir)

    def grade(self, student_id: str, path: Path, content_hash: str) -> SubmissionResult:
        started = time.monotonic()
        spec = self.assignment.spec
        result = SubmissionResult(
            student_id, str(path), content_hash, Status.GRADED, sandbox=self.sandbox.name
        )
        try:
            notebook = read_notebook(path)
        except NotebookError as exc:
            result.status, result.message = Status.ERROR, str(exc)
            result.questions = zero_scores(spec, "the submission could not be read")
            result.duration_s = round(time.monotonic() - started, 3)
            return result
        cells = notebook.runnable()
        failed: str | None = None  # the first sandbox failure, when a second try was made
        while True:
            session = StudentSession(self.sandbox, cells, self.config, spec.limits, spec.seed)
            try:
                session.start()
                answers = {
                    q.id: _read_answer(session, q.variable)
                    for q in spec.questions
                    if q.kind is not QuestionKind.CODE
                }
                tests = self._run_tests(session)
                break
            except SandboxError as exc:
                if failed is None:
                    # A sandbox that could not start or fork (a daemon's hiccup, a zygote
                    # that died) says nothing about the notebook: once more, on a fresh one.
                    failed = str(exc)
                    self._reset_sandbox()
                    continue
                result.status = Status.ERROR
                result.message = f"{exc} (on the second try; the first: {failed})"
                result.questions = zero_scores(spec, "the sandbox failed; regrade this submission")
                return result
            except StudentCodeError as exc:
                # The notebook never got to run (e.g. it failed on every start).
                answers, tests = {}, []
                result.message = str(exc)
                break
            finally:
                session.close()
                result.stdout, result.stderr = session.stdout_stderr()
                result.cells = sorted(session.cell_records.values(), key=lambda c: c.index)
                result.peak_memory_mb = session.peak_memory_mb
                result.duration_s = round(time.monotonic() - started, 3)
        if failed is not None:
            result.retried = f"the sandbox failed once ({failed}); graded on a fresh one"
        code = {q.question_id: q for q in score_code_questions(spec, tests)}
        result.tests = tests
        result.questions = [
            code[q.id]
            if q.kind is QuestionKind.CODE
            else self._theory(q, answers.get(q.id, NOT_ANSWERED))
            for q in spec.questions
        ]
        if session.timed_out:
            result.status = Status.TIMEOUT
        parts = [result.retried, result.message, _run_summary(session)]
        result.message = "; ".join(filter(None, parts))
        return result

    def _reset_sandbox(self) -> None:
        # A warm sandbox's next start is a fresh zygote; others start fresh anyway.
        close = getattr(self.sandbox, "close", None)
        if close is not None:
            close()

    def _theory(self, question: Question, value: object) -> QuestionResult:
        if self.reference is None:  # public checks: students never get the answer key
            unset = (
                value is NOT_ANSWERED
                or value is None
                or (isinstance(value, str) and not value.strip())
            )
            shown = None if unset else repr(value)[:200]
            feedback = "answered" if shown is not None else f"{question.variable} is not set"
            return QuestionResult(
                question.id, question.kind.value, None, question.points, feedback, shown
            )
        return grade_answer(question, value)

    def _run_tests(self, session: StudentSession) -> list[TestResult]:
        runner = self._test_runner()
        tests = runner.run(session)
        if runner.collection_errors:
            raise CourseError(
                f"{self.tests_dir}: the tests could not be collected: "
                + " | ".join(runner.collection_errors)
            )
        return tests

    def _test_runner(self) -> TestRunner:
        # pytest is imported here, by the workers: the batch process does without it.
        from autograder.grader.plugin import TestRunner

        if self._runner is None:
            self._runner = TestRunner(self.tests_dir, self.assignment.spec, self.reference)
        return self._runner

    def close(self) -> None:
        """End the pytest session this grader keeps between submissions."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None


def _read_answer(session: StudentSession, variable: str) -> object:
    try:
        return session.get(variable)
    except MissingName:
        return NOT_ANSWERED
    except StudentCodeError:
        return NOT_ANSWERED


def _run_summary(session: StudentSession) -> str:
    parts = []
    if session.timed_out:
        parts.append("the notebook did not finish in time; the cell that hung was skipped")
    if session.restarts:
        parts.append(
            f"the notebook was restarted {session.restarts} time(s) after a crash or timeout"
        )
    return "; ".join(parts)
