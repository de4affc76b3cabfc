"""The late policy: the `[deadline]` table, lateness, and the penalty kept apart from scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autograder.deadline import apply, assess, describe_minutes
from autograder.errors import SpecError
from autograder.results import QuestionResult, Status, SubmissionResult
from autograder.spec import AssignmentSpec, Deadline, load_spec

DUE = datetime(2025, 3, 14, 23, 59, tzinfo=UTC)
POLICY = Deadline(due=DUE, grace_minutes=10, percent_per_day=10,
                  cutoff=DUE + timedelta(days=5))


@pytest.mark.parametrize(
    ("after", "late", "penalty"),
    [
        (timedelta(minutes=-30), 0, 0),  # early
        (timedelta(0), 0, 0),  # on the dot
        (timedelta(minutes=10), 10, 0),  # within the grace period, lateness still recorded
        (timedelta(minutes=11), 11, 10),  # one started day
        (timedelta(hours=24), 1440, 10),
        (timedelta(hours=24, minutes=1), 1441, 20),
        (timedelta(days=4, hours=1), 5820, 50),
        (timedelta(days=5), 7200, 50),  # the cutoff itself still counts
        (timedelta(days=5, seconds=1), 7200.02, 100),  # after the cutoff: nothing
    ],
)
def test_penalty_per_started_day(after: timedelta, late: float, penalty: float) -> None:
    result = assess(POLICY, DUE + after)
    assert result.late_minutes == pytest.approx(late, abs=0.01)
    assert result.penalty_percent == penalty


def test_penalty_never_exceeds_100() -> None:
    steep = Deadline(due=DUE, percent_per_day=60)
    assert assess(steep, DUE + timedelta(days=3)).penalty_percent == 100


def test_no_policy_or_no_time_means_no_penalty() -> None:
    assert assess(None, DUE + timedelta(days=9)).penalty_percent == 0
    assert assess(POLICY, None).penalty_percent == 0


def test_other_time_zones_compare_as_instants() -> None:
    paris = datetime(2025, 3, 15, 0, 30, tzinfo=UTC).astimezone()  # 31 minutes late anywhere
    assert assess(POLICY, paris).late_minutes == pytest.approx(31)


def test_apply_records_time_and_penalty_apart_from_the_scores() -> None:
    result = SubmissionResult("ada", "ada.ipynb", "h", Status.GRADED,
                              questions=[QuestionResult("relu", "code", 2.0, 2.0)])
    apply(result, POLICY, DUE + timedelta(days=2))
    assert result.submitted_at == "2025-03-16T23:59:00+00:00"
    assert (result.score, result.penalty_percent, result.final_score) == (2.0, 20.0, 1.6)
    assert "2 d late (2 started day(s) at 10% each): 20% off" in result.message


def test_describe_minutes() -> None:
    assert describe_minutes(0.5) == "30 s"
    assert describe_minutes(45) == "45 min"
    assert describe_minutes(1441) == "1 d 1 min"
    assert describe_minutes(3 * 1440 + 125) == "3 d 2 h 5 min"


BASE = """\
name = "hw1"
notebook = "hw1.ipynb"

[[questions]]
id = "why"
kind = "text"
"""


def test_spec_reads_the_deadline_table(tmp_path: Path) -> None:
    path = tmp_path / "assignment.toml"
    path.write_text(BASE + """
[deadline]
due = 2025-03-14T23:59:00+01:00
grace_minutes = 15
percent_per_day = 10
cutoff = "2025-03-21T23:59:00+01:00"

[feedback]
show_answers = "after_deadline"
""")
    spec = load_spec(path)
    assert spec.deadline is not None
    assert spec.deadline.due == datetime(2025, 3, 14, 22, 59, tzinfo=UTC)
    assert spec.deadline.closes == datetime(2025, 3, 21, 22, 59, tzinfo=UTC)
    assert spec.feedback.show_answers == "after_deadline"
    assert [q.id for q in spec.manual_questions] == ["why"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("due = 2025-03-14T23:59:00", "due needs a UTC offset"),
        ('due = "2025-03-14T23:59:00+00:00"\ncutoff = "2025-03-01T00:00:00+00:00"',
         "cutoff is before due"),
        ('due = "2025-03-14T23:59:00+00:00"\npercent_per_day = 120', "percent_per_day"),
        ('due = "2025-03-14T23:59:00+00:00"\nlate = 1', "deadline.late"),
    ],
)
def test_bad_deadlines_name_the_field(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "assignment.toml"
    path.write_text(BASE + "\n[deadline]\n" + table + "\n")
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_specs_without_the_new_tables_still_load() -> None:
    spec = AssignmentSpec.model_validate(
        {"name": "a", "notebook": "a.ipynb", "questions": [{"id": "x", "kind": "text"}]}
    )
    assert spec.deadline is None and spec.feedback.show_answers == "never"
