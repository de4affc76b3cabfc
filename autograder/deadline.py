"""The late policy: how late a submission came in, and what that costs.

Pure functions of the spec's `[deadline]` table and a submission time. The penalty is
recorded next to the raw score (never folded into it), so a changed policy or an
excused student is a matter of recomputing one number, and exports show all three:
raw score, penalty and final score.

    late_minutes  = minutes after `due` (0 when on time)
    penalty       = 0                                   if late_minutes <= grace_minutes
                  = min(100, percent_per_day * days)    days = started 24 h periods after due
                  = 100                                 if submitted after `cutoff`
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from autograder.results import SubmissionResult
from autograder.spec import Deadline

MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Lateness:
    late_minutes: float
    penalty_percent: float
    note: str  # in words for the student and the instructor; "" when on time


def assess(deadline: Deadline | None, submitted_at: datetime | None) -> Lateness:
    """Lateness and penalty of a submission made at `submitted_at` (aware datetime)."""
    if deadline is None or submitted_at is None:
        return Lateness(0.0, 0.0, "")
    late = max(0.0, (submitted_at - deadline.due).total_seconds() / 60)
    late = round(late, 2)
    if deadline.cutoff is not None and submitted_at > deadline.cutoff:
        return Lateness(
            late, 100.0, f"submitted after the cutoff ({deadline.cutoff.isoformat()}): score 0"
        )
    if late == 0:
        return Lateness(0.0, 0.0, "")
    if late <= deadline.grace_minutes:
        return Lateness(late, 0.0, f"{describe_minutes(late)} late, within the grace period")
    days = math.ceil(late / MINUTES_PER_DAY)
    penalty = min(100.0, deadline.percent_per_day * days)
    return Lateness(
        late,
        penalty,
        f"{describe_minutes(late)} late ({days} started day(s) at "
        f"{deadline.percent_per_day:g}% each): {penalty:g}% off",
    )


def apply(
    result: SubmissionResult, deadline: Deadline | None, submitted_at: datetime | None
) -> None:
    """Record the submission time, lateness and penalty on `result` (in place)."""
    if submitted_at is not None:
        result.submitted_at = submitted_at.astimezone(UTC).isoformat(timespec="seconds")
    lateness = assess(deadline, submitted_at)
    result.late_minutes = lateness.late_minutes
    result.penalty_percent = lateness.penalty_percent
    if lateness.penalty_percent:
        result.message = "; ".join(filter(None, [result.message, lateness.note]))


def describe_minutes(minutes: float) -> str:
    """`2 d 3 h 5 min`, `45 min`: a lateness as people say it."""
    whole = round(minutes)
    if whole < 1:
        return f"{minutes * 60:.0f} s"
    days, rest = divmod(whole, MINUTES_PER_DAY)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(p for p in parts if p)


def file_time(timestamp: float) -> datetime:
    """A file's mtime as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)
