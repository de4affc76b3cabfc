"""The contract of a grading backend.

A backend is called by the `grade` verb with the submissions left to grade and returns an
generator of `(submission, outcome)` pairs, one per submission, in the order they finish:

- a `SubmissionResult` from a worker's `Grader`;
- `WorkerCrashed` when the workers grading it died on it too often (recorded as an error);
- any other exception grading raised (`CourseError`/`SandboxError` stop the batch, the rest
  are recorded as internal errors, after a second try in a fresh worker: `worth_a_retry`,
  `after_retry`).

The verb commits each outcome to the gradebook as it arrives (it is the only writer), so a
backend never opens the gradebook, and stopping the iteration (`close()`) must stop its
workers. A backend may retry a submission whose worker was lost, but yields it only once.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path

from autograder.errors import AutograderError
from autograder.grader.run import Grader
from autograder.results import SubmissionResult
from autograder.submissions import Submission

BACKENDS = ("local", "ray")

Outcome = SubmissionResult | Exception
Outcomes = Generator[tuple[Submission, Outcome], None, None]
# Builds a worker's Grader from a course folder on the worker's machine, the assignment's
# name and the GPU(s) the worker owns (None: no GPU). Must be picklable by reference (a
# module-level function or a functools.partial of one): Ray ships it to the nodes.
GraderFactory = Callable[[Path, str, str | None], Grader]


class WorkerCrashed(Exception):
    """The worker process grading a submission died on it too often to try again."""


def worth_a_retry(outcome: Outcome) -> bool:
    """Whether `outcome` is an internal error (a bug of ours, maybe a passing one) that a
    fresh worker should try once more before it is recorded."""
    return isinstance(outcome, Exception) and not isinstance(outcome, AutograderError)


def after_retry(outcome: Outcome, first: Exception | None) -> Outcome:
    """A retried submission's outcome, saying what its first try hit (`first`)."""
    if first is None:
        return outcome
    if isinstance(outcome, SubmissionResult):
        note = f"graded on a second try after an internal error ({type(first).__name__}: {first})"
        outcome.retried = "; ".join(filter(None, [note, outcome.retried]))
        outcome.message = "; ".join(filter(None, [note, outcome.message]))
    return outcome
