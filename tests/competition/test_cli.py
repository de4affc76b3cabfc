"""`autograder compete ...` through typer's runner: parsing, messages and exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from autograder import cli_compete
from autograder.cli import app
from autograder.competition import compete
from autograder.course import Course
from autograder.errors import ExitCode
from tests.competition.conftest import (
    TRUTH,
    Clock,
    context,
    make_course,
    predictions,
    spec_text,
    with_wrong,
)

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner is no terminal: rich would wrap and cut tables at 80 columns.
    monkeypatch.setattr(cli_compete, "out", Console(width=200))
    monkeypatch.setattr(cli_compete, "err", Console(stderr=True, width=200))


def run(course: Course, *args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["compete", *args, "--course", str(course.root)])
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        return -1, f"{type(done.exception).__name__}: {done.exception}"
    return done.exit_code, done.output


@pytest.fixture
def open_course(tmp_path: Path) -> Course:
    spec = spec_text(
        opens=(NOW - timedelta(days=1)).isoformat(), closes=(NOW + timedelta(days=10)).isoformat()
    )
    return make_course(tmp_path / "open", spec)


@pytest.fixture
def closed_course(tmp_path: Path) -> Course:
    """A competition that closed an hour ago, after red and blue submitted."""
    spec = spec_text(
        opens=(NOW - timedelta(days=10)).isoformat(), closes=(NOW - timedelta(hours=1)).isoformat()
    )
    course = make_course(tmp_path / "closed", spec)
    ctx = context(course)
    clock = Clock(NOW - timedelta(days=2))
    for team, labels in [("red", with_wrong([5, 6])), ("blue", with_wrong([1]))]:
        path = tmp_path / f"{team}.csv"
        path.write_text(predictions(labels))
        clock.tick(minutes=1)
        assert compete.submit_file(ctx, path, team, clock=clock).scored
    return course


def test_submit_scored_and_rejected(open_course: Course, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(predictions(TRUTH))
    bad.write_text(predictions(TRUTH).replace("3,2", "3,2\n3,1"))
    code, output = run(open_course, "submit", "toy", str(good), "--team", "ann")
    assert code == 0, output
    assert (
        "scored good.csv of team red: public accuracy 1.00000 (submission 1; 1 of 3 today)"
        in output
    )
    code, output = run(open_course, "submit", "toy", str(bad), "--team", "red")
    assert code == ExitCode.SUBMISSIONS_FAILED
    assert (
        "rejected bad.csv: 2 problems: the file has 11 data rows; the test set has 10; "
        "line 5: id '3' again (first on line 4)" in output
    )
    code, output = run(open_course, "submit", "toy", str(good), "--team", "nobody")
    assert code == -1 and "no team or student 'nobody' on the roster" in output


def test_submit_a_folder_prints_a_table(open_course: Course, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "cy.csv").write_text(predictions(TRUTH))
    (folder / "stranger.csv").write_text(predictions(TRUTH))
    code, output = run(open_course, "submit", "toy", str(folder))
    assert code == ExitCode.SUBMISSIONS_FAILED
    assert "2 file(s): 1 scored, 1 rejected" in output
    code, output = run(open_course, "submissions", "toy")
    assert code == 0 and "blue" in output and "cy.csv" in output and "private" not in output


def test_public_leaderboard_and_html(open_course: Course, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(predictions(with_wrong([1])))
    run(open_course, "submit", "toy", str(path), "--team", "eve")
    code, output = run(open_course, "leaderboard", "toy", "--html")
    assert code == 0, output
    assert "public leaderboard" in output and "eve" in output and "0.75000" in output
    page = open_course.root / "reports" / "competitions" / "toy" / "public.html"
    assert page.is_file() and "eve" in page.read_text()
    code, output = run(open_course, "leaderboard", "toy", "--private")
    assert code == -1 and "hidden until it closes" in output
    code, output = run(open_course, "grades", "toy")
    assert code == -1 and "its grades come from the private leaderboard" in output


def test_select_then_list(open_course: Course, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(predictions(TRUTH))
    for _ in range(2):
        run(open_course, "submit", "toy", str(path), "--team", "red")
    code, output = run(open_course, "select", "toy", "--team", "bob", "2")
    assert code == 0 and "team red selected: 2" in output
    code, output = run(open_course, "select", "toy", "--team", "red")
    assert code == 2 and "give submission ids, or --clear" in output
    code, output = run(open_course, "select", "toy", "--team", "red", "--clear")
    assert code == 0 and "its 2 best public submissions will count" in output


def test_private_leaderboard_and_grades_after_closing(
    closed_course: Course, tmp_path: Path
) -> None:
    code, output = run(
        closed_course, "leaderboard", "toy", "--private", "--out", str(tmp_path / "final.html")
    )
    assert code == 0, output
    lines = [line for line in output.splitlines() if "red" in line or "blue" in line]
    # Public: red 1.0 (first), blue 0.75. Private: blue 1.0, red 0.6.
    assert "blue" in lines[0] and "▲1" in lines[0] and "▼1" in lines[1]
    assert (tmp_path / "final.html").is_file()
    code, output = run(closed_course, "grades", "toy", "--out", str(tmp_path / "g.csv"))
    assert code == 0, output
    assert "Wrote the grades of 5 students (2 ranked teams; by rank: 100% to 50%)" in output
    assert "1 student(s) in teams without a scored submission get 0%" in output
    rows = (tmp_path / "g.csv").read_text().splitlines()
    assert "cy,blue,1,1.00000,100.00," in rows and "eve,eve,,,0.00,no scored submission" in rows
    code, output = run(closed_course, "submissions", "toy", "--team", "red")
    assert code == 0 and "private" in output and "0.60000" in output
