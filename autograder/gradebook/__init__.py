"""The course gradebook: an embedded SQLite file holding every grading attempt.

Data flows one way: grading produces `SubmissionResult`s, the gradebook stores them,
reports and exports read them back as `StoredResult`s.
"""

from autograder.gradebook.schema import SCHEMA_VERSION, connect
from autograder.gradebook.store import Gradebook, StoredResult, batch_lock, lock_path

__all__ = [
    "SCHEMA_VERSION",
    "Gradebook",
    "StoredResult",
    "batch_lock",
    "connect",
    "lock_path",
]
