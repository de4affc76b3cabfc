"""A toy competition in a temporary course, and a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from autograder.competition import compete
from autograder.course import Course
from autograder.roster import load_roster

OPENS = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLOSES = datetime(2026, 1, 20, 18, 0, tzinfo=UTC)
DURING = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)
AFTER = CLOSES + timedelta(hours=1)

# 10 test rows: 4 public, 5 private, 1 ignored.
SOLUTION = """id,label,Usage
1,0,Public
2,1,Public
3,2,Public
4,0,Public
5,1,Private
6,2,Private
7,0,Private
8,1,Private
9,2,Private
10,0,Ignored
"""
TRUTH = {1: 0, 2: 1, 3: 2, 4: 0, 5: 1, 6: 2, 7: 0, 8: 1, 9: 2, 10: 0}
ROSTER = """id,name,email,team
ann,Ann Lee,ann@uni.example,red
bob,Bob Chen,bob@uni.example,red
cy,Cy Ode,cy@uni.example,blue
dee,Dee Park,dee@uni.example,blue
eve,Eve Stone,eve@uni.example,
"""


def spec_text(name: str = "toy", metric: str = "accuracy", **extra: object) -> str:
    """A competition.toml; `extra` adds or replaces top-level keys (TOML values as text)."""
    values = {
        "name": f'"{name}"',
        "metric": f'"{metric}"',
        "target_columns": '["label"]',
        "opens": OPENS.isoformat(),
        "closes": CLOSES.isoformat(),
        "daily_cap": 3,
        **extra,
    }
    return "".join(f"{key} = {value}\n" for key, value in values.items())


class Clock:
    """An injectable "now" the test moves by hand."""

    def __init__(self, now: datetime = DURING) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_course(
    root: Path,
    spec: str | None = None,
    solution: str = SOLUTION,
    roster: str = ROSTER,
    name: str = "toy",
    tail: str = "",
) -> Course:
    """A course with no assignments and one competition `name`."""
    (root / "assignments").mkdir(parents=True, exist_ok=True)
    folder = root / "competitions" / name
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "competition.toml").write_text((spec or spec_text(name)) + tail)
    (folder / "solution.csv").write_text(solution)
    (root / "roster.csv").write_text(roster)
    return Course.at(root)


def context(course: Course, name: str = "toy") -> compete.Context:
    return compete.open_competition(course, name, load_roster(course.root / "roster.csv"))


def predictions(labels: dict[int, int | str], header: str = "id,label") -> str:
    return header + "\n" + "".join(f"{i},{v}\n" for i, v in labels.items())


def with_wrong(rows: list[int]) -> dict[int, int | str]:
    """The truth, except the given rows predict a wrong class."""
    return {i: (v + 1) % 3 if i in rows else v for i, v in TRUTH.items()}


@pytest.fixture
def course(tmp_path: Path) -> Course:
    return make_course(tmp_path / "course")


@pytest.fixture
def ctx(course: Course) -> compete.Context:
    return context(course)


@pytest.fixture
def clock() -> Clock:
    return Clock()


Submit = Callable[..., compete.Receipt]


@pytest.fixture
def submit(ctx: compete.Context, clock: Clock, tmp_path: Path) -> Submit:
    """`submit(team, text_or_labels, name="sub.csv")`: one file through the real intake."""
    count = [0]

    def run(team: str, content: str | dict[int, int | str], name: str = "") -> compete.Receipt:
        count[0] += 1
        path = tmp_path / "files" / str(count[0]) / (name or "submission.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else predictions(content))
        return compete.submit_file(ctx, path, team, clock=clock)

    return run
