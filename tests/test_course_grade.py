"""The combined course grade: weights, normalisation, missing work, the competition CSV and
the grades of the course's competitions."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograder.cli import app
from autograder.competition import compete
from autograder.course import Course
from autograder.course_grade import course_grade, load_weights
from autograder.errors import AutograderError
from autograder.gradebook import Gradebook
from autograder.results import QuestionResult, Status, SubmissionResult
from autograder.roster import load_roster


def spec(name: str, points: int) -> str:
    return f"""name = "{name}"\nnotebook = "{name}.ipynb"\n
[[questions]]\nid = "q"\nkind = "code"\npoints = {points}\ntests = ["test_*"]\n"""


def graded(student: str, score: float, points: float, **extra: object) -> SubmissionResult:
    result = SubmissionResult(student, f"{student}.ipynb", "h", Status.GRADED,
                              questions=[QuestionResult("q", "code", score, points)])
    for key, value in extra.items():
        setattr(result, key, value)
    return result


@pytest.fixture
def course(tmp_path: Path) -> Course:
    root = tmp_path / "course"
    for name, points in (("perceptron", 10), ("backprop", 20)):
        (root / "assignments" / name).mkdir(parents=True)
        (root / "assignments" / name / "assignment.toml").write_text(spec(name, points))
    (root / "roster.csv").write_text("id,name,email\nann,Ann,ann@x\nben,Ben,ben@x\ncy,Cy,cy@x\n")
    c = Course.at(root)
    with Gradebook.open(c.gradebook) as book:
        book.record("perceptron", graded("ann", 10, 10), 10)
        book.record("perceptron", graded("ben", 5, 10, penalty_percent=20.0), 10)  # final 4
        book.record("backprop", graded("ann", 15, 20), 20)
        book.record("backprop", graded("dee", 20, 20), 20)  # not on the roster
    return c


def weights_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "weights.toml"
    path.write_text(text)
    return path


def read(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


def test_weighted_mean_of_final_scores(course: Course, tmp_path: Path) -> None:
    (tmp_path / "comp.csv").write_text("student_id,score\nann,80\nben,120\n")
    weights = weights_file(tmp_path, """
[weights]
perceptron = 0.1
backprop = 0.4
competition = 0.5

[competition]
csv = "comp.csv"
max_score = 100
""")
    done = course_grade(course, weights, tmp_path / "final.csv")
    rows = read(done.out)
    assert list(rows["ann"]) == ["student_id", "name", "email", "perceptron_percent",
                                 "backprop_percent", "competition_percent", "final_percent",
                                 "notes"]
    # ann: 0.1 * 100% + 0.4 * 75% + 0.5 * 80% = 80%
    assert (rows["ann"]["perceptron_percent"], rows["ann"]["backprop_percent"],
            rows["ann"]["competition_percent"], rows["ann"]["final_percent"]) == (
        "100.00", "75.00", "80.00", "80.00")
    # ben: late penalty counts (4 / 10), backprop missing = 0, competition capped at 100%
    assert rows["ben"]["perceptron_percent"] == "40.00"
    assert rows["ben"]["final_percent"] == "54.00"
    assert "no score (0) for backprop" in rows["ben"]["notes"]
    assert rows["cy"]["final_percent"] == "0.00"  # on the roster, nothing at all
    assert rows["dee"]["name"] == "" and "not on the roster" in rows["dee"]["notes"]
    assert rows["dee"]["final_percent"] == "40.00"


def test_weights_need_not_sum_to_one(course: Course, tmp_path: Path) -> None:
    weights = weights_file(tmp_path, "[weights]\nperceptron = 1\nbackprop = 3\n")
    rows = read(course_grade(course, weights, tmp_path / "f.csv").out)
    assert rows["ann"]["final_percent"] == "81.25"  # (100 + 3 * 75) / 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "needs a \\[weights\\] table"),
        ("[weights]\nperceptron = -1\n", "must be a number >= 0"),
        ("[weights]\nperceptron = 0\n", "all weights are 0"),
        ("[weights]\nperceptron = true\n", "must be a number"),
        ("[weights]\nperceptron = 1\n[competition]\nmax_score = 0\n", "max_score must be"),
        ("weights = [", "not valid TOML"),
    ],
)
def test_bad_weight_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(AutograderError, match=message):
        load_weights(weights_file(tmp_path, text))


def test_unknown_parts_and_missing_competition_scores(course: Course, tmp_path: Path) -> None:
    with pytest.raises(AutograderError, match="gans is no assignment of this course"):
        course_grade(course, weights_file(tmp_path, "[weights]\ngans = 1\n"), tmp_path / "f.csv")
    with pytest.raises(AutograderError, match="pass --competition FILE"):
        course_grade(course, weights_file(tmp_path, "[weights]\ncompetition = 1\n"),
                     tmp_path / "f.csv")


def test_cli(course: Course, tmp_path: Path) -> None:
    (tmp_path / "scores.csv").write_text("student_id,score\nann,0.5\n")
    weights = weights_file(tmp_path, "[weights]\nperceptron = 0.5\ncompetition = 0.5\n")
    out = tmp_path / "final.csv"
    done = CliRunner().invoke(app, ["course-grade", "--weights", str(weights), "--out", str(out),
                                    "--competition", str(tmp_path / "scores.csv"),
                                    "--course", str(course.root)])
    assert done.exit_code == 0, done.output
    assert "Wrote the final grades of 3 students" in done.output  # dee: backprop only
    assert read(out)["ann"]["final_percent"] == "75.00"


# --------------------------------------------------------------------------- the competition
COMPETITION_SPEC = """name = "digits"
metric = "accuracy"
target_columns = ["label"]
opens = 2026-01-05T09:00:00+00:00
closes = 2026-01-20T18:00:00+00:00
"""
AFTER_CLOSING = datetime(2026, 1, 21, tzinfo=UTC)


def add_competition(course: Course, tmp_path: Path) -> None:
    """Competition `digits`, closed: ann is first (private 1.0), ben second (0.5), cy absent.
    The roster has no team column: everyone competes alone."""
    folder = course.root / "competitions" / "digits"
    folder.mkdir(parents=True)
    (folder / "competition.toml").write_text(COMPETITION_SPEC)
    (folder / "solution.csv").write_text(
        "id,label,Usage\n1,a,Public\n2,b,Public\n3,a,Private\n4,b,Private\n"
    )
    ctx = compete.open_competition(course, "digits", load_roster(course.root / "roster.csv"))
    for student, labels in (("ann", "abab"), ("ben", "abaa")):
        path = tmp_path / f"{student}.csv"
        path.write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in enumerate(labels, 1)))
        moment = datetime(2026, 1, 6, tzinfo=UTC)
        assert compete.submit_file(ctx, path, student, clock=lambda m=moment: m).scored


def test_competition_grades_feed_the_course_grade(course: Course, tmp_path: Path) -> None:
    add_competition(course, tmp_path)
    weights = weights_file(tmp_path, "[weights]\nperceptron = 0.5\ndigits = 0.5\n")
    done = course_grade(course, weights, tmp_path / "f.csv", now=AFTER_CLOSING)
    rows = read(done.out)
    # By rank (the default): 1st of 2 teams 100%, 2nd 50%, no submission 0%.
    got = [(s, rows[s]["digits_percent"], rows[s]["final_percent"]) for s in ("ann", "ben", "cy")]
    assert got == [("ann", "100.00", "100.00"), ("ben", "50.00", "45.00"), ("cy", "0.00", "0.00")]
    assert "digits: no scored submission" in rows["cy"]["notes"]
    # The part named `competition` takes the course's only competition, or the one named.
    for text in ("[weights]\ncompetition = 1\n",
                 '[weights]\ncompetition = 1\n[competition]\nname = "digits"\n'):
        rows = read(course_grade(course, weights_file(tmp_path, text), tmp_path / "g.csv",
                                 now=AFTER_CLOSING).out)
        assert rows["ben"]["competition_percent"] == "50.00"


def test_an_open_competition_has_no_grades_yet(course: Course, tmp_path: Path) -> None:
    add_competition(course, tmp_path)
    weights = weights_file(tmp_path, "[weights]\nperceptron = 0.5\ndigits = 0.5\n")
    with pytest.raises(AutograderError, match="digits is open until 2026-01-20T18:00:00"):
        course_grade(course, weights, tmp_path / "f.csv", now=datetime(2026, 1, 10, tzinfo=UTC))
    with pytest.raises(AutograderError, match="either name"):
        load_weights(weights_file(tmp_path, '[weights]\ncompetition = 1\n[competition]\n'
                                  'name = "digits"\ncsv = "x.csv"\n'))
