"""What grading one submission produces; the gradebook stores these, reports read them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    GRADED = "graded"  # ran; scores are final for the auto-graded questions
    ERROR = "error"  # could not be graded (not a notebook, bad id, sandbox failure)
    TIMEOUT = "timeout"  # the notebook did not finish within its time limit
    MISSING = "missing"  # on the roster, nothing submitted
    PENDING = "pending"  # auto-graded; some question still waits for manual grading


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the test itself broke (a bug in the hidden test, not the student)
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    FORBIDDEN = "forbidden"  # the student's code used an API the question forbids


@dataclass(frozen=True)
class TestResult:
    """One hidden test, as the student may see it (never the test's code)."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    test_id: str  # pytest node name, e.g. "test_predict_random[3]"
    question_id: str | None  # None: the spec maps this test to no question
    outcome: Outcome
    message: str = ""  # why it failed, in words for the student
    description: str = ""  # first line of the test's docstring
    weight: float = 1.0
    duration_s: float = 0.0


@dataclass(frozen=True)
class QuestionResult:
    question_id: str
    kind: str
    score: float | None  # None: waits for manual grading
    max_score: float
    feedback: str = ""
    answer: str | None = None  # the student's theory answer, as text
    graded_by: str | None = None  # who set this score by hand (manual grading, override)


@dataclass(frozen=True)
class CellRecord:
    """A notebook cell that did not run cleanly."""

    index: int  # position among the notebook's cells (0-based)
    error: str  # "ZeroDivisionError: division by zero" or "skipped: timed out"
    traceback: str = ""


@dataclass
class SubmissionResult:
    student_id: str
    path: str
    content_hash: str
    status: Status
    message: str = ""
    questions: list[QuestionResult] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    cells: list[CellRecord] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    sandbox: str = ""
    duration_s: float = 0.0
    peak_memory_mb: float | None = None
    # Why it was graded a second time (a sandbox that failed, an internal error); the
    # message says it too. Empty: graded at the first try.
    retried: str = ""
    # The late policy: recorded apart from the scores, which stay the raw ones.
    submitted_at: str | None = None  # ISO-8601 with offset; from the LMS, else the file's mtime
    late_minutes: float = 0.0  # after the due time (0: on time); grace minutes included
    penalty_percent: float = 0.0  # share of the raw score taken off (100: after the cutoff)

    @property
    def score(self) -> float:
        """The raw score: the sum of the question scores, before any late penalty."""
        return sum(q.score or 0.0 for q in self.questions)

    @property
    def max_score(self) -> float:
        return sum(q.max_score for q in self.questions)

    @property
    def penalty_points(self) -> float:
        return self.score * self.penalty_percent / 100

    @property
    def final_score(self) -> float:
        """The raw score less the late penalty."""
        return self.score - self.penalty_points


def settled_status(status: Status, questions: list[QuestionResult]) -> Status:
    """GRADED and PENDING follow the questions: PENDING while any score is still None.

    ERROR, TIMEOUT and MISSING are kept: waiting for a human does not hide them.
    """
    if status not in (Status.GRADED, Status.PENDING):
        return status
    return Status.PENDING if any(q.score is None for q in questions) else Status.GRADED


def format_points(value: float) -> str:
    """A score as people write it: 4 decimals at most, no trailing zeros (3, 2.5, 0.3333)."""
    text = f"{round(value, 4):.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
