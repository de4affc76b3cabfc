"""Grading on a Ray cluster: long-lived grader actors on the nodes, the gradebook here.

The driver (the `autograder grade` process) packs the assignment folder and its reference
solution into one tar, puts it into Ray's object store once, and starts `jobs` actors
(`ray_node.GraderActor`) spread over the nodes. Each actor unpacks the tar into a private
folder (mode 0700) on its node, builds one `Grader` there, with the sandbox chosen, and
then grades one submission per call, sent as bytes. The folder is what the trusted side needs;
sandboxes see of it only what they see on one machine (the assignment's data/).

Faults. An actor that dies while grading is replaced; Ray places the new one wherever
resources are free. If its node is gone (dead in Ray's view, or the actor unreachable),
the submission goes back to the queue, at most MAX_NODE_LOSSES times. If the node is
alive, the worker process itself crashed; after `max_crashes` crashes the submission is
yielded as `WorkerCrashed`. A lost actor's result is never read, so no submission is
yielded twice. A driver that dies takes its actors with it (Ray ends an owner's actors).

`ray` is imported inside functions only: the package imports without it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import autograder
from autograder.backends.base import (
    GraderFactory,
    Outcome,
    Outcomes,
    WorkerCrashed,
    after_retry,
    worth_a_retry,
)
from autograder.backends.ray_node import GraderActor, NodeReport, pack
from autograder.course import Assignment
from autograder.errors import AutograderError
from autograder.notebook import MAX_NOTEBOOK_BYTES
from autograder.results import SubmissionResult
from autograder.submissions import Submission

INSTALL = "pip install 'autograder[ray]'"
MAX_NODE_LOSSES = 3  # a submission whose node dies this often is recorded as crashed
START_TIMEOUT_S = 300.0  # no grader ready (none placed, none started) for this long: stop
WAIT_S = 2.0
STOP_WAIT_S = 10.0
CLIENT_TRIES = 3
PROBE_S = 10.0


def import_ray() -> Any:
    """The `ray` module, or an error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise AutograderError(
            f"--backend ray needs Ray, which is not installed here: run `{INSTALL}` "
            "(on this machine and on every node of the cluster)"
        ) from None
    return ray


# --------------------------------------------------------------------------- the driver
@dataclass(eq=False)
class _Worker:
    handle: Any
    report: NodeReport | None = None


class RayBackend:
    """Grades a batch on a Ray cluster with `jobs` grader actors (see the module docstring).

    `gpus` is None (no GPU) or "all": each grader then asks Ray for 1/`per_gpu` of a GPU
    and its sandboxes see the GPU Ray gave it. After the batch, `notes` says where it ran
    and what went wrong on the way, `gaps` lists the nodes' missing isolation features.
    """

    def __init__(
        self, address: str | None, jobs: int, gpus: str | None = None, per_gpu: int = 1
    ) -> None:
        import_ray()  # without Ray, say so before anything else happens
        if gpus not in (None, "all"):
            raise AutograderError(
                f"--gpus {gpus}: with --backend ray use --gpus all; Ray gives each grader a "
                "GPU of its node (or 1/--per-gpu of one), GPU numbers differ from node to node"
            )
        self.address = address
        self.jobs = max(1, jobs)
        self.gpu_share = 1 / per_gpu if gpus else 0.0
        self.notes: list[str] = []
        self.gaps: list[str] = []
        self.isolation = ""

    def outcomes(
        self, assignment: Assignment, build: GraderFactory, todo: list[Submission], max_crashes: int
    ) -> Outcomes:
        """Yield `(submission, outcome)` for each of `todo` (see `backends.base`)."""
        if not todo:
            return
        ray = import_ray()
        connected_here = not ray.is_initialized()
        if connected_here:
            _connect(ray, self.address)
        workers: list[_Worker] = []
        try:
            cpus = float(assignment.spec.limits.threads)
            _check_fits(ray, cpus, self.gpu_share)
            actor = ray.remote(GraderActor).options(
                num_cpus=cpus,
                num_gpus=self.gpu_share,
                max_restarts=0,  # we replace lost graders ourselves, counting per submission
                max_task_retries=0,
                scheduling_strategy="SPREAD",
            )
            bundle = ray.put(pack(assignment))

            def spawn() -> Any:
                return actor.remote(bundle, assignment.name, build, autograder.__version__)

            yield from _Batch(ray, self, todo, max_crashes, workers, spawn).run()
        finally:
            _stop(ray, workers)
            if connected_here:
                with contextlib.suppress(Exception):
                    ray.shutdown()


class _Batch:
    """The driver's loop: one submission at a time per grader, losses and crashes counted."""

    def __init__(
        self,
        ray: Any,
        backend: RayBackend,
        todo: list[Submission],
        max_crashes: int,
        workers: list[_Worker],
        spawn: Callable[[], Any],
    ) -> None:
        self.ray = ray
        self.spawn = spawn
        self.backend = backend
        self.queue = deque(todo)
        self.remaining = len(todo)
        self.max_crashes = max_crashes
        self.workers = workers
        self.waiting: dict[Any, tuple[_Worker, Submission | None]] = {}
        self.idle: list[_Worker] = []
        self.losses: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()
        self.failures: dict[str, Exception] = {}  # the first internal error of each submission
        self.lost_nodes: dict[str, list[str]] = {}  # node -> students graded again
        self.failed_starts = 0
        self.began = time.monotonic()
        self.sent: dict[Any, float] = {}
        self.round_trips: list[float] = []  # seconds per result beyond the grading itself
        self.first_ready: float | None = None

    def start_worker(self) -> None:
        worker = _Worker(self.spawn())
        self.workers.append(worker)
        self.waiting[worker.handle.ready.remote()] = (worker, None)

    def run(self) -> Outcomes:
        for _ in range(min(self.backend.jobs, self.remaining)):
            self.start_worker()
        stalled_since = time.monotonic()
        while self.remaining:
            while self.idle and self.queue:
                self._send(self.idle.pop(), self.queue.popleft())
            done, _ = self.ray.wait(list(self.waiting), num_returns=1, timeout=WAIT_S)
            if not done:
                busy = self.idle or any(sub for _, sub in self.waiting.values())
                if busy:
                    stalled_since = time.monotonic()
                elif time.monotonic() - stalled_since > START_TIMEOUT_S:
                    raise AutograderError(
                        f"no grader could start on the Ray cluster for {START_TIMEOUT_S:.0f} s "
                        "(each needs the CPUs/GPU of one grader free on a node; `ray status` "
                        "shows what the cluster has); what was graded is saved"
                    )
                continue
            stalled_since = time.monotonic()
            worker, sub = self.waiting.pop(done[0])
            sent = self.sent.pop(done[0], None)
            try:
                value = self.ray.get(done[0])
            except self.ray.exceptions.RayActorError as exc:
                if (outcome := self._lost(worker, sub, exc)) is not None:
                    assert sub is not None
                    self.remaining -= 1
                    yield sub, outcome
                continue
            except self.ray.exceptions.RayError as exc:  # not the actor: Ray itself failed
                if sub is None:
                    raise AutograderError(f"a grader could not start on Ray: {exc}") from None
                value = RuntimeError(f"Ray failed to return the result: {exc}")
            if sub is None:
                self._ready(worker, value)
            elif worth_a_retry(value) and sub.student_id not in self.failures:
                self.failures[sub.student_id] = value
                self._replace(worker)
                self.queue.appendleft(sub)  # once more, on a fresh grader
            else:
                value = after_retry(value, self.failures.get(sub.student_id))
                if isinstance(value, SubmissionResult):
                    value.path = str(sub.path)  # the driver's path, not the node's copy
                    if sent is not None:
                        elapsed = time.monotonic() - sent
                        self.round_trips.append(max(0.0, elapsed - value.duration_s))
                self.remaining -= 1
                self.idle.append(worker)
                yield sub, value
        self._summarise()

    def _send(self, worker: _Worker, sub: Submission) -> None:
        try:
            size = sub.path.stat().st_size
            data = sub.path.read_bytes() if size <= MAX_NOTEBOOK_BYTES else None
        except OSError:  # gone since it was found: the grader says so, as on one machine
            size, data = 0, None
        ref = worker.handle.grade.remote(
            sub.student_id, sub.path.name, data, size, sub.content_hash
        )
        self.waiting[ref] = (worker, sub)
        self.sent[ref] = time.monotonic()

    def _ready(self, worker: _Worker, report: NodeReport) -> None:
        if report.error is not None:
            raise type(report.error)(f"on the Ray node {report.label}: {report.error}")
        worker.report = report
        self.idle.append(worker)
        if self.first_ready is None:
            self.first_ready = time.monotonic() - self.began
        backend = self.backend
        backend.isolation = backend.isolation or report.isolation
        for gap in report.missing:
            if (line := f"{report.label}: {gap}") not in backend.gaps:
                backend.gaps.append(line)

    def _drop(self, worker: _Worker) -> None:
        """Forget a grader and make sure its actor is gone (dead already, or suspect)."""
        self.workers.remove(worker)
        _kill(self.ray, [worker])

    def _replace(self, worker: _Worker) -> None:
        """End a grader that raised (its state is suspect) and start another."""
        self._drop(worker)
        self.start_worker()

    def _lost(self, worker: _Worker, sub: Submission | None, exc: Exception) -> Outcome | None:
        """Replace a dead grader; what its submission becomes (None: queued again)."""
        ray = self.ray
        self._drop(worker)
        unavailable = getattr(ray.exceptions, "ActorUnavailableError", ())
        node = worker.report.node_id if worker.report else None
        node_gone = isinstance(exc, unavailable) or not _node_alive(ray, node)
        outcome: Outcome | None = None
        if sub is None:
            if getattr(exc, "actor_init_failed", False):
                raise AutograderError(
                    f"a grader could not start on a Ray node ({exc}); every node needs this "
                    f"autograder installed: `{INSTALL}`"
                ) from None
            self.failed_starts += 1
            if self.failed_starts > MAX_NODE_LOSSES * self.backend.jobs:
                raise AutograderError(
                    f"Ray graders keep dying before they are ready (last: {exc}); "
                    "see the nodes' worker logs (python-core-worker-*.log)"
                ) from None
        elif node_gone:
            label = worker.report.label if worker.report else "(not ready yet)"
            self.lost_nodes.setdefault(label, []).append(sub.student_id)
            self.losses[sub.student_id] += 1
            if self.losses[sub.student_id] >= MAX_NODE_LOSSES:
                outcome = WorkerCrashed(f"{MAX_NODE_LOSSES} nodes were lost grading it")
        else:
            self.crashes[sub.student_id] += 1
            if self.crashes[sub.student_id] >= self.max_crashes:
                outcome = WorkerCrashed(f"its grader crashed {self.max_crashes} times")
        if sub is not None and outcome is None:
            self.queue.appendleft(sub)  # next free grader: on another node if this one is gone
        if len(self.workers) < min(self.backend.jobs, self.remaining - (outcome is not None)):
            self.start_worker()  # pending until a node has room, if none has now
        return outcome

    def _summarise(self) -> None:
        nodes = Counter(w.report.label for w in self.workers if w.report)
        where = ", ".join(f"{n} on {label}" for label, n in sorted(nodes.items()))
        ready = f"; first ready after {self.first_ready:.1f} s" if self.first_ready else ""
        notes = self.backend.notes
        notes.append(f"Ray: {sum(nodes.values())} grader(s) at the end ({where}){ready}")
        if self.round_trips:
            trip = statistics.median(self.round_trips) * 1000
            notes.append(
                f"Ray round trip: {trip:.0f} ms per submission beyond grading it (median of "
                f"{len(self.round_trips)}: sending it, scheduling, the result coming back)"
            )
        for label, students in sorted(self.lost_nodes.items()):
            notes.append(
                f"Ray node {label} was lost while grading: {len(students)} submission(s) "
                f"sent to another grader ({', '.join(students)})"
            )
        for student, count in sorted(self.crashes.items()):
            notes.append(f"the grader's worker process died {count} time(s) grading {student}")


def _reachable(target: str) -> None:
    """Fail fast on an address nothing listens at: `ray.init` would retry for minutes."""
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S).close()
    except OSError as exc:
        raise AutograderError(
            f"cannot reach the Ray cluster at {target} ({exc.strerror or exc}); start it with "
            "`ray start --head` there, or check the address (HOST:PORT of the head's GCS, "
            "ray://HOST:10001 for the Ray client)"
        ) from None


def _connect(ray: Any, address: str | None) -> None:
    target = address or os.environ.get("RAY_ADDRESS") or "auto"
    _reachable(target)
    # The Ray client (ray://) starts a server process per driver on the head, which can
    # fail to come up in time on a busy head: try it again before giving up.
    tries = CLIENT_TRIES if target.startswith("ray://") else 1
    for attempt in range(1, tries + 1):
        try:
            ray.init(
                address=target,
                namespace="autograder",
                log_to_driver=False,  # the nodes' logs stay on the nodes; the bar stays readable
                logging_level=logging.WARNING,
            )
            return
        except Exception as exc:
            with contextlib.suppress(Exception):
                ray.shutdown()
            if attempt == tries:
                raise AutograderError(
                    f"cannot connect to the Ray cluster at {target} "
                    f"({type(exc).__name__}: {exc}); start one with `ray start --head`, then "
                    "pass --address HOST:PORT (or ray://HOST:10001, or auto on a node of it)"
                ) from None
            time.sleep(2 * attempt)


def _alive_nodes(ray: Any) -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def _node_alive(ray: Any, node_id: str | None) -> bool:
    if node_id is None:
        return False
    try:
        return any(n.get("NodeID") == node_id for n in _alive_nodes(ray))
    except Exception:
        return False  # the cluster cannot say: treat it as a lost node, not a crash


def _check_fits(ray: Any, cpus: float, gpus: float) -> None:
    """Fail now, not after START_TIMEOUT_S, when no node could ever host one grader."""
    need = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    nodes = _alive_nodes(ray)
    if any(all(n["Resources"].get(k, 0) >= v for k, v in need.items()) for n in nodes):
        return
    wanted = ", ".join(f"{v:g} {k}" for k, v in need.items())
    has = "; ".join(", ".join(f"{n['Resources'].get(k, 0):g} {k}" for k in need) for n in nodes)
    raise AutograderError(
        f"no node of the Ray cluster can host a grader, which needs {wanted} "
        f"(the nodes have: {has or 'no node'}); start nodes with enough "
        "`ray start --num-cpus N --num-gpus G`, or lower --per-gpu's share"
    )


def _stop(ray: Any, workers: list[_Worker]) -> None:
    """End the graders: those still starting at once, ready ones after removing their folders."""
    ready = [w for w in workers if w.report is not None]
    # Killed after the ready ones, a pending grader could be placed on the room they free and
    # start a process only to be killed in its imports.
    _kill(ray, [w for w in workers if w.report is None])
    closing = [w.handle.close.remote() for w in ready]
    with contextlib.suppress(Exception):
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=STOP_WAIT_S)
    _kill(ray, ready)
    workers.clear()


def _kill(ray: Any, workers: list[_Worker]) -> None:
    for worker in workers:
        with contextlib.suppress(Exception):
            ray.kill(worker.handle, no_restart=True)
