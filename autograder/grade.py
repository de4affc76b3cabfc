"""The `grade` verb: a batch of submissions through worker processes into the gradebook.

Workers (one process each) build a `Grader` once (reference loaded, torch imported)
and grade one submission per task; this process is the gradebook's only writer and
commits each result as it arrives, so a crash or kill loses at most the submissions
in flight, and a rerun resumes where the last one stopped (same content hash: skip).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import deadline
from autograder.course import Assignment, Course
from autograder.errors import AutograderError, CourseError, SandboxError
from autograder.gradebook import Gradebook, batch_lock
from autograder.grader.run import Grader, zero_scores
from autograder.results import Status, SubmissionResult, settled_status
from autograder.roster import Roster
from autograder.sandbox import LocalSandbox
from autograder.sandbox import docker as docker_sandbox
from autograder.sandbox.base import Sandbox
from autograder.sandbox.docker import DockerSandbox
from autograder.sandbox.local import bwrap_works
from autograder.sandbox.warm import WarmSandbox
from autograder.spec import AssignmentSpec
from autograder.submissions import Submission, discover

SANDBOXES = ("auto", "local", "docker")
MAX_WORKER_CRASHES = 2


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0  # already graded with the same content
    results: list[SubmissionResult] = field(default_factory=list)
    wall_s: float = 0.0
    sandbox: str = ""
    isolation: str = ""
    warnings: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)


Progress = Callable[[int, int, SubmissionResult | None], None]


def resolve_sandbox(name: str) -> str:
    """`auto` is docker when a daemon answers and the image exists, else local."""
    if name not in SANDBOXES:
        raise AutograderError(f"unknown sandbox {name!r}; choose one of: {', '.join(SANDBOXES)}")
    if name != "auto":
        return name
    try:
        c = docker_sandbox.client()
    except docker_sandbox.DockerUnavailable:
        return "local"
    return "docker" if docker_sandbox.image_exists(c, docker_sandbox.default_image()) else "local"


def make_sandbox(name: str, course: Course, warm: bool = True) -> Sandbox:
    """The sandbox to grade with. `warm` forks local runtimes from a zygote per worker
    (runtime/zygote.py) instead of starting a fresh sandbox per submission."""
    name = resolve_sandbox(name)
    if name == "docker":
        return DockerSandbox()
    # Hide the course even where the interpreter lives inside it.
    local = LocalSandbox(mask=(course.root,))
    return WarmSandbox(local) if warm and bwrap_works() else local


def with_timeout(assignment: Assignment, timeout: float | None) -> Assignment:
    if timeout is None:
        return assignment
    limits = assignment.spec.limits.model_copy(update={"notebook_timeout": timeout})
    spec = assignment.spec.model_copy(update={"limits": limits})
    return Assignment(spec, assignment.folder, assignment.reference_folder)


# --------------------------------------------------------------------------- workers
_worker: Grader | None = None
_worker_error: AutograderError | None = None


@dataclass(frozen=True)
class WorkerOptions:
    sandbox: str
    timeout: float | None = None
    per_gpu: int = 1
    warm: bool = True


def gpu_slots(gpus: str | None, per_gpu: int) -> list[str]:
    """One entry per sandbox that may run at once: each GPU repeated `per_gpu` times."""
    if gpus is None:
        return []
    if gpus == "all":
        found = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        devices = [str(i) for i, line in enumerate(found.stdout.splitlines()) if line.strip()]
        if not devices:
            raise AutograderError("--gpus all: nvidia-smi lists no GPU on this machine")
    else:
        devices = [d.strip() for d in gpus.split(",") if d.strip()]
    return [d for d in devices for _ in range(per_gpu)]


def _init_worker(course_root: str, name: str, options: WorkerOptions, slots: Any) -> None:
    global _worker, _worker_error
    try:
        course = Course.at(Path(course_root))
        assignment = with_timeout(course.assignment(name), options.timeout)
        # Each worker owns one GPU slot for its whole life: its sandboxes see that GPU only.
        gpu = slots.get_nowait() if slots is not None else None
        fraction = 1 / options.per_gpu if gpu is not None and options.per_gpu > 1 else None
        box = make_sandbox(options.sandbox, course, warm=options.warm)
        _worker = Grader.hidden(assignment, box, gpu=gpu, gpu_memory_fraction=fraction)
    except AutograderError as exc:
        # Raised again with the first task, so the batch stops with this message.
        _worker_error = exc


def _grade_in_worker(student_id: str, path: str, content_hash: str) -> SubmissionResult:
    if _worker_error is not None:
        raise _worker_error
    assert _worker is not None, "worker not initialised"
    return _worker.grade(student_id, Path(path), content_hash)


def _failed(
    spec: AssignmentSpec, sub: Submission, sandbox: str, message: str, feedback: str
) -> SubmissionResult:
    """An `error` result with every question at zero, for a submission that was not graded."""
    return SubmissionResult(
        sub.student_id,
        str(sub.path),
        sub.content_hash,
        Status.ERROR,
        message=message,
        sandbox=sandbox,
        questions=zero_scores(spec, feedback),
    )


def _unreadable(spec: AssignmentSpec, sub: Submission, sandbox: str) -> SubmissionResult:
    assert sub.error is not None
    return _failed(spec, sub, sandbox, sub.error, "the submission could not be read")


def _crashed(spec: AssignmentSpec, sub: Submission, sandbox: str) -> SubmissionResult:
    message = (
        "the grader's worker process crashed on this submission twice; "
        "regrade it alone with `autograder grade ... --jobs 1` and report a bug if it recurs"
    )
    return _failed(spec, sub, sandbox, message, "grading crashed")


def _internal_error(
    spec: AssignmentSpec, sub: Submission, sandbox: str, exc: Exception
) -> SubmissionResult:
    message = (
        f"internal error while grading ({type(exc).__name__}: {exc}); the rest of the "
        "batch went on; regrade this submission and report a bug if it recurs"
    )
    return _failed(spec, sub, sandbox, message, "grading failed")


# --------------------------------------------------------------------------- the verb
def grade(
    course: Course,
    assignment_name: str,
    paths: list[Path],
    *,
    sandbox: str = "local",
    jobs: int = 1,
    regrade: bool = False,
    timeout: float | None = None,
    gpus: str | None = None,
    per_gpu: int = 1,
    warm: bool = True,
    progress: Progress | None = None,
    roster: Roster | None = None,
) -> BatchSummary:
    """Grade every submission under `paths`; results are committed one by one.

    `roster` maps the students of LMS downloads (Moodle, Canvas zips) to student ids.
    Each result gets its submission time and late penalty (the spec's `[deadline]`) and
    the status `pending` while a question waits for manual grading.
    """
    assignment = with_timeout(course.assignment(assignment_name), timeout)
    spec = assignment.spec
    sandbox = resolve_sandbox(sandbox)
    slots = gpu_slots(gpus, per_gpu)
    if slots and jobs > len(slots):
        jobs = len(slots)  # never more sandboxes on a GPU than --per-gpu allows
    box = make_sandbox(sandbox, course, warm=warm)
    summary = BatchSummary(sandbox=sandbox, isolation=box.isolation())
    summary.warnings = box.missing()
    started = time.monotonic()
    with (
        batch_lock(course.gradebook),
        Gradebook.open(course.gradebook) as book,
        tempfile.TemporaryDirectory(prefix="autograder-unpack-") as unpack,
    ):
        submissions = discover(paths, Path(unpack), roster)
        by_id = {sub.student_id: sub for sub in submissions}
        summary.total = len(submissions)
        todo: list[Submission] = []
        for sub in submissions:
            if not regrade and book.current_hash(spec.name, sub.student_id) == sub.content_hash:
                summary.skipped += 1
            elif sub.error is not None:
                result = _unreadable(spec, sub, sandbox)
                _settle(spec, sub, result)
                book.record(spec.name, result, spec.max_score)
                summary.results.append(result)
            else:
                todo.append(sub)
        done = summary.total - len(todo)
        if progress:
            progress(done, summary.total, None)

        def commit(result: SubmissionResult) -> None:
            nonlocal done
            _settle(spec, by_id.get(result.student_id), result)
            book.record(spec.name, result, spec.max_score)
            summary.results.append(result)
            done += 1
            if progress:
                progress(done, summary.total, result)

        options = WorkerOptions(sandbox, timeout, per_gpu, warm)
        _run_pool(course, assignment, options, slots, jobs, todo, commit)
    summary.wall_s = time.monotonic() - started
    return summary


def _settle(spec: AssignmentSpec, sub: Submission | None, result: SubmissionResult) -> None:
    """What the batch adds to a worker's result: submission time, lateness, final status."""
    deadline.apply(result, spec.deadline, sub.submitted_at if sub else None)
    if sub is not None and sub.lms_late and spec.deadline and not result.late_minutes:
        note = "the LMS marks it late, but its file time is not: no penalty applied; check it"
        result.message = f"{result.message}; {note}" if result.message else note
    result.status = settled_status(result.status, result.questions)


def _run_pool(
    course: Course,
    assignment: Assignment,
    options: WorkerOptions,
    slots: list[str],
    jobs: int,
    todo: list[Submission],
    commit: Callable[[SubmissionResult], None],
) -> None:
    sandbox = options.sandbox
    crashes: dict[str, int] = {}
    pending = list(todo)
    while pending:
        context = multiprocessing.get_context("spawn")
        queue = None
        if slots:
            queue = context.Queue()
            for slot in slots:
                queue.put(slot)
        pool = ProcessPoolExecutor(
            max_workers=max(1, min(jobs, len(pending))),
            mp_context=context,
            initializer=_init_worker,
            initargs=(str(course.root), assignment.name, options, queue),
        )
        retry: list[Submission] = []
        try:
            futures: dict[Future[SubmissionResult], Submission] = {
                pool.submit(_grade_in_worker, s.student_id, str(s.path), s.content_hash): s
                for s in pending
            }
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in finished:
                    sub = futures[future]
                    try:
                        commit(future.result())
                    except BrokenProcessPool:
                        crashes[sub.student_id] = crashes.get(sub.student_id, 0) + 1
                        if crashes[sub.student_id] >= MAX_WORKER_CRASHES:
                            commit(_crashed(assignment.spec, sub, sandbox))
                        else:
                            retry.append(sub)
                    except (CourseError, SandboxError) as exc:
                        # The course or the machine is broken: every submission would fail.
                        raise type(exc)(f"while grading {sub.path}: {exc}") from None
                    except Exception as exc:
                        commit(_internal_error(assignment.spec, sub, sandbox, exc))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        pending = retry
