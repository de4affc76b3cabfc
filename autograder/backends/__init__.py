"""Where a batch is graded: this machine's worker processes, or a Ray cluster.

See `base` for the contract; `ray` needs the optional extra (`pip install 'autograder[ray]'`)
and imports it only when used, so the package imports without it.
"""

from autograder.backends.base import (
    BACKENDS,
    GraderFactory,
    Outcome,
    Outcomes,
    WorkerCrashed,
    after_retry,
    worth_a_retry,
)

__all__ = [
    "BACKENDS",
    "GraderFactory",
    "Outcome",
    "Outcomes",
    "WorkerCrashed",
    "after_retry",
    "worth_a_retry",
]
