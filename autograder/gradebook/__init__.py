"""The course gradebook: an embedded SQLite file holding every grading attempt.

Data flows one way: grading produces `SubmissionResult`s, the gradebook stores them,
reports and exports read them back as `StoredResult`s. Scores people set (manual
grades, overrides) and the audit trail of every score change live here too
(`changes.py`).
"""

from autograder.gradebook.changes import ChangeKind, ScoreChange, ScoresRefused, SetScore
from autograder.gradebook.schema import SCHEMA_VERSION, connect
from autograder.gradebook.store import Gradebook, StoredResult, batch_lock, lock_path

__all__ = [
    "SCHEMA_VERSION",
    "ChangeKind",
    "Gradebook",
    "ScoreChange",
    "ScoresRefused",
    "SetScore",
    "StoredResult",
    "batch_lock",
    "connect",
    "lock_path",
]
