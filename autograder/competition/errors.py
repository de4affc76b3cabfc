"""The competition's errors, as branches of the one tree in `autograder.errors`.

AutograderError
├── CourseError
│   └── CompetitionError        competition.toml, the solution, the inputs or the
│                               roster's teams are wrong: the instructor must fix them
└── SubmissionError
    └── SubmissionRejected      one file cannot be scored (malformed CSV, predict failed);
                                it never counts against the team's daily cap
"""

from __future__ import annotations

from collections.abc import Sequence

from autograder.errors import CourseError, SubmissionError

SHOWN_PROBLEMS = 5  # problems named in one message; the rest are counted


class CompetitionError(CourseError):
    """A competition's spec, solution, inputs or teams are unusable."""


class SubmissionRejected(SubmissionError):
    """A submitted file cannot be scored; `problems` says why, first problem lines first."""

    def __init__(self, filename: str, problems: Sequence[str], total: int | None = None) -> None:
        self.filename = filename
        self.problems = list(problems)
        self.total = max(total or 0, len(self.problems))
        shown = "; ".join(self.problems[:SHOWN_PROBLEMS])
        more = self.total - min(len(self.problems), SHOWN_PROBLEMS)
        tail = f"; ... and {more} more" if more > 0 else ""
        count = f"{self.total} problem{'s' if self.total != 1 else ''}"
        super().__init__(f"{filename}: {count}: {shown}{tail}")
