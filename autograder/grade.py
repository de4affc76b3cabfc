"""The `grade` verb: a batch of submissions through worker processes into the gradebook.

Workers (one process each) build a `Grader` once (reference loaded, torch imported)
and grade one submission per task; this process is the gradebook's only writer and
commits each result as it arrives, so a crash or kill loses at most the submissions
in flight, and a rerun resumes where the last one stopped (same content hash: skip).
With `backend="ray"` the workers are Ray actors on a cluster (`backends/ray.py`); the
results come back here and are committed the same way.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import deadline, workers
from autograder.backends import (
    BACKENDS,
    Outcome,
    Outcomes,
    WorkerCrashed,
    after_retry,
    worth_a_retry,
)
from autograder.backends.ray import RayBackend
from autograder.course import Assignment, Course
from autograder.errors import AutograderError, CourseError, SandboxError
from autograder.gradebook import Gradebook, batch_lock
from autograder.grader.run import Grader, launch_config, zero_scores
from autograder.results import Status, SubmissionResult, settled_status
from autograder.roster import Roster
from autograder.sandbox import LocalSandbox
from autograder.sandbox.base import Sandbox
from autograder.sandbox.local import bwrap_works
from autograder.sandbox.warm import Claimable, Spares, SpareZygote, WarmSandbox
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
    notes: list[str] = field(default_factory=list)  # where it ran, lost nodes (Ray)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)


Progress = Callable[[int, int, SubmissionResult | None], None]


def resolve_sandbox(name: str) -> str:
    """`auto` is docker when a daemon answers and the image exists, else local."""
    if name not in SANDBOXES:
        raise AutograderError(f"unknown sandbox {name!r}; choose one of: {', '.join(SANDBOXES)}")
    if name != "auto":
        return name
    from autograder.sandbox import docker as docker_sandbox  # the Docker SDK: only if asked

    try:
        c = docker_sandbox.client()
    except docker_sandbox.DockerUnavailable:
        return "local"
    return "docker" if docker_sandbox.image_exists(c, docker_sandbox.default_image()) else "local"


def make_sandbox(name: str, course: Course, warm: bool = True) -> Sandbox:
    """The sandbox to grade with. `warm` forks runtimes from a zygote per worker
    (runtime/zygote.py) instead of starting a fresh sandbox per submission."""
    name = resolve_sandbox(name)
    if name == "docker":
        from autograder.sandbox.docker import DockerSandbox

        return WarmSandbox(DockerSandbox()) if warm else DockerSandbox()
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
_started: Any = None  # where a worker says which submission it starts (crash attribution)


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


def build_grader(
    options: WorkerOptions,
    course_root: Path,
    name: str,
    gpu: str | None,
    zygote: SpareZygote | None = None,
) -> Grader:
    """A worker's Grader (a pool process here, or a Ray actor on a node's copy of the
    assignment): its sandboxes see `gpu` only, a 1/per_gpu share of it when shared.
    `zygote`: a warm sandbox's zygote the batch process started for this worker."""
    course = Course.at(course_root)
    assignment = with_timeout(course.assignment(name), options.timeout)
    fraction = 1 / options.per_gpu if gpu is not None and options.per_gpu > 1 else None
    box = make_sandbox(options.sandbox, course, warm=options.warm)
    if zygote is not None:
        if isinstance(box, WarmSandbox):
            box.adopt(zygote)
        else:
            zygote.close()
    return Grader.hidden(assignment, box, gpu=gpu, gpu_memory_fraction=fraction)


def _init_worker(
    course_root: str,
    name: str,
    options: WorkerOptions,
    slots: Any,
    started: Any = None,
    spares: Claimable | None = None,  # the batch's `Spares`, as a worker unpickles them
) -> None:
    global _worker, _worker_error, _started
    _started = started
    try:
        # Each worker owns one GPU slot for its whole life: its sandboxes see that GPU only.
        gpu = slots.get_nowait() if slots is not None else None
        zygote = spares.claim() if spares is not None else None
        _worker = build_grader(options, Path(course_root), name, gpu, zygote)
    except AutograderError as exc:
        # Raised again with the first task, so the batch stops with this message.
        _worker_error = exc


def _grade_in_worker(student_id: str, path: str, content_hash: str) -> SubmissionResult:
    if _worker_error is not None:
        raise _worker_error
    assert _worker is not None, "worker not initialised"
    if _started is not None:
        _started.put(student_id)  # a SimpleQueue: written before the grading can crash us
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
    backend: str = "local",
    address: str | None = None,
) -> BatchSummary:
    """Grade every submission under `paths`; results are committed one by one.

    `roster` maps the students of LMS downloads (Moodle, Canvas zips) to student ids.
    Each result gets its submission time and late penalty (the spec's `[deadline]`) and
    the status `pending` while a question waits for manual grading.
    `backend="ray"` grades on the Ray cluster at `address` with `jobs` grader actors.
    """
    if backend not in BACKENDS:
        raise AutograderError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    cluster = RayBackend(address, jobs, gpus, per_gpu) if backend == "ray" else None
    assignment = with_timeout(course.assignment(assignment_name), timeout)
    spec = assignment.spec
    sandbox = resolve_sandbox(sandbox)
    slots = gpu_slots(gpus, per_gpu) if cluster is None else []
    if slots and jobs > len(slots):
        jobs = len(slots)  # never more sandboxes on a GPU than --per-gpu allows
    if cluster is None:
        box = make_sandbox(sandbox, course, warm=warm)
        summary = BatchSummary(sandbox=sandbox, isolation=box.isolation())
        summary.warnings = box.missing()
    else:  # the nodes report their sandboxes' isolation once their graders are ready
        summary = BatchSummary(sandbox=sandbox)
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
        if cluster is None:
            outcomes = _pool_outcomes(course, assignment, options, slots, jobs, todo)
        else:
            build = functools.partial(build_grader, options)
            outcomes = cluster.outcomes(assignment, build, todo, MAX_WORKER_CRASHES)
        try:
            with contextlib.closing(outcomes):  # a stopped batch stops its workers
                for sub, outcome in outcomes:
                    commit(_outcome_result(spec, sub, sandbox, outcome))
        finally:
            if cluster is not None:
                idle = "no grader was needed" if not todo else "no Ray grader started"
                summary.isolation = cluster.isolation or f"not reported: {idle}"
                summary.warnings, summary.notes = cluster.gaps, cluster.notes
    summary.notes += [f"{r.student_id}: {r.retried}" for r in summary.results if r.retried]
    summary.wall_s = time.monotonic() - started
    return summary


def _outcome_result(
    spec: AssignmentSpec, sub: Submission, sandbox: str, outcome: Outcome
) -> SubmissionResult:
    """The result to commit for a backend's outcome; raises when the batch must stop."""
    if isinstance(outcome, SubmissionResult):
        return outcome
    if isinstance(outcome, WorkerCrashed):
        return _crashed(spec, sub, sandbox)
    if isinstance(outcome, (CourseError, SandboxError)):
        # The course or the machine is broken: every submission would fail.
        raise type(outcome)(f"while grading {sub.path}: {outcome}") from None
    return _internal_error(spec, sub, sandbox, outcome)


def _settle(spec: AssignmentSpec, sub: Submission | None, result: SubmissionResult) -> None:
    """What the batch adds to a worker's result: submission time, lateness, final status."""
    deadline.apply(result, spec.deadline, sub.submitted_at if sub else None)
    if sub is not None and sub.lms_late and spec.deadline and not result.late_minutes:
        note = "the LMS marks it late, but its file time is not: no penalty applied; check it"
        result.message = f"{result.message}; {note}" if result.message else note
    result.status = settled_status(result.status, result.questions)


def _pool_outcomes(
    course: Course,
    assignment: Assignment,
    options: WorkerOptions,
    slots: list[str],
    jobs: int,
    todo: list[Submission],
) -> Outcomes:
    """This machine's backend: worker processes, a new pool after one broke (see `backends`).

    When a worker dies, the pool fails every submission not yet finished, including those
    queued behind it. Only those a worker had started are suspects: each is then graded
    alone in a pool of one, where a crash is its own; after `MAX_WORKER_CRASHES` of its
    own it is recorded as crashed. The others go on in parallel, uncharged.
    """
    pools = _Pools(workers.context(), course, assignment, options, slots)
    spares = pools.spare_zygotes(min(jobs, len(todo)))
    try:
        yield from _pool_rounds(pools, jobs, list(todo), spares)
    finally:
        if spares is not None:
            spares.end()


@dataclass(frozen=True)
class _Pools:
    """What every worker pool of one batch is made from."""

    context: Any
    course: Course
    assignment: Assignment
    options: WorkerOptions
    slots: list[str]

    def new(
        self, size: int, started: Any = None, spares: Spares | None = None
    ) -> ProcessPoolExecutor:
        queue = None
        if self.slots:
            queue = self.context.Queue()
            for slot in self.slots:
                queue.put(slot)
        args = (str(self.course.root), self.assignment.name, self.options, queue, started, spares)
        return workers.pool(self.context, max(1, size), _init_worker, args)

    def spare_zygotes(self, count: int) -> Spares | None:
        """The first workers' zygotes, started now (see `warm.Spares`): local warm
        sandboxes without GPUs only."""
        if self.slots or count < 1:
            return None
        box = make_sandbox(self.options.sandbox, self.course, warm=self.options.warm)
        if not isinstance(box, WarmSandbox) or not isinstance(box.base, LocalSandbox):
            return None
        return Spares.launch(self.context, box.base, launch_config(self.assignment), count)

    def grade_alone(self, sub: Submission) -> Outcome | None:
        """`sub` graded in a pool of its own; None when its worker died."""
        pool = self.new(1)
        try:
            return pool.submit(
                _grade_in_worker, sub.student_id, str(sub.path), sub.content_hash
            ).result()
        except BrokenProcessPool:
            return None
        except Exception as exc:
            return exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _pool_rounds(
    pools: _Pools, jobs: int, pending: list[Submission], spares: Spares | None
) -> Outcomes:
    crashes: dict[str, int] = {}
    failures: dict[str, Exception] = {}  # the first internal error of each submission
    suspects: list[Submission] = []
    while pending or suspects:
        if suspects:
            sub = suspects.pop(0)
            outcome = pools.grade_alone(sub)
            if outcome is None:  # its own crash
                crashes[sub.student_id] = crashes.get(sub.student_id, 0) + 1
                if crashes[sub.student_id] < MAX_WORKER_CRASHES:
                    suspects.insert(0, sub)
                    continue
                outcome = WorkerCrashed()
            yield sub, after_retry(outcome, failures.get(sub.student_id))
            continue
        started = pools.context.SimpleQueue()
        pool = pools.new(min(jobs, len(pending)), started, spares)
        broken: list[Submission] = []
        again: list[Submission] = []
        try:
            futures: dict[Future[SubmissionResult], Submission] = {
                pool.submit(_grade_in_worker, s.student_id, str(s.path), s.content_hash): s
                for s in pending
            }
            if spares is not None:
                # Every worker of this pool started with the spares' ends: later pools
                # (after a crash) start their own zygotes.
                spares.release()
                spares = None
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in finished:
                    sub = futures[future]
                    outcome: Outcome
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        broken.append(sub)
                        continue
                    except Exception as exc:
                        if worth_a_retry(exc) and sub.student_id not in failures:
                            # Once more, alone, in a fresh worker (see `grade_alone`).
                            failures[sub.student_id] = exc
                            again.append(sub)
                            continue
                        outcome = exc
                    yield sub, outcome
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        began = set()
        while not started.empty():
            began.add(started.get())
        crashed = [s for s in broken if s.student_id in began]
        pending = [s for s in broken if s.student_id not in began]
        suspects = again + crashed
        if broken and not crashed:
            # The workers died before starting any submission: no student is to blame.
            raise AutograderError(
                f"the grading worker processes died before grading {pending[0].path}; "
                "nothing was charged to the students. Check free memory, then rerun "
                "the same command to resume"
            )
