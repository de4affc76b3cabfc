"""Grading by hand: the sheet (grouping, round trip), imports, overrides and the history."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograder import manual
from autograder.cli import app
from autograder.course import Course
from autograder.errors import AutograderError
from autograder.gradebook import Gradebook
from autograder.gradebook.changes import ChangeKind, ScoresRefused
from autograder.results import QuestionResult, Status, SubmissionResult
from autograder.similarity import group_similar, jaccard, normalise, shingles

SPEC = """\
name = "hw1"
notebook = "hw1.ipynb"

[[questions]]
id = "linear"
kind = "code"
points = 3
tests = ["test_linear*"]

[[questions]]
id = "why"
kind = "text"
points = 2
title = "Why can a perceptron not learn XOR?"

[[questions]]
id = "pick"
kind = "choice"
points = 1
choices = ["a", "b"]
answer = "a"
"""

ANSWERS = {
    "ann": "XOR is not linearly separable, so no single line splits the classes.",
    "ben": "Because XOR isn't linearly separable: no single line splits the classes!",
    "cat": "The learning rate is too small.",
    "dov": "xor is NOT linearly separable so no single line splits the classes",
    "eli": "=HYPERLINK(\"http://evil.example\")",
    "fay": "",  # unanswered: 0 automatically, not on the sheet
}


def result(student: str, answer: str, content_hash: str = "h1") -> SubmissionResult:
    why = (
        QuestionResult("why", "text", None, 2.0, "waiting for manual grading", answer)
        if answer
        else QuestionResult("why", "text", 0.0, 2.0, "no answer", None)
    )
    return SubmissionResult(
        student, f"{student}.ipynb", content_hash,
        Status.PENDING if answer else Status.GRADED,
        questions=[QuestionResult("linear", "code", 3.0, 3.0), why,
                   QuestionResult("pick", "choice", 1.0, 1.0, "correct", "a")],
    )


@pytest.fixture
def course(tmp_path: Path) -> Course:
    folder = tmp_path / "course" / "assignments" / "hw1"
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC)
    c = Course.at(tmp_path / "course")
    with Gradebook.open(c.gradebook) as book:
        for student, answer in ANSWERS.items():
            book.record("hw1", result(student, answer), 6.0)
    return c


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------- similarity
def test_normalise_and_shingles() -> None:
    assert normalise("  Ça   N'EST pas\tlinéaire! ") == "ca n est pas lineaire"
    assert jaccard(shingles("Linear!"), shingles("linear")) == 1.0
    assert jaccard(shingles("abc def"), shingles("xyz uvw")) == 0.0


def test_similar_answers_end_up_together() -> None:
    texts = [ANSWERS[s] for s in ("ann", "cat", "ben", "eli", "dov")]
    groups = group_similar(texts)
    assert sorted(groups[0]) == [0, 2, 4]  # the three "not linearly separable" answers first
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    assert group_similar([]) == []


# --------------------------------------------------------------------------- the sheet
def test_sheet_groups_by_question_and_similarity(course: Course, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    done = manual.export_sheet(course, "hw1", sheet)
    assert (done.rows, done.to_grade) == (5, 5)
    rows = read_rows(sheet)
    assert list(rows[0]) == ["question", "student", "answer", "max_points", "points",
                             "comment", "group"]
    students = [r["student"] for r in rows]
    assert set(students[:3]) == {"ann", "ben", "dov"}  # the similar ones next to each other
    assert {r["group"] for r in rows[:3]} == {"1"}
    assert "fay" not in students
    assert all(r["question"] == "why" and r["max_points"] == "2" for r in rows)
    eli = next(r for r in rows if r["student"] == "eli")
    assert eli["answer"].startswith("'=")  # a spreadsheet shows it, never runs it


def test_import_scores_flip_pending_and_keep_an_audit_trail(course: Course, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    manual.export_sheet(course, "hw1", sheet)
    rows = read_rows(sheet)
    points = {"ann": "2", "ben": "1,5", "dov": "2", "eli": "0"}  # cat left for later
    for r in rows:
        r["points"] = points.get(r["student"], "")
        if r["student"] == "ben":
            r["comment"] = "=say why"  # formula-looking comment stays text
    write_rows(sheet, rows)

    done = manual.import_sheet(course, "hw1", sheet, "ta-kim")
    assert len(done.changes) == 4 and done.skipped == 1
    assert done.still_pending == ["cat"]
    with Gradebook.open(course.gradebook) as book:
        current = {r.result.student_id: r.result for r in book.current("hw1")}
        [change] = book.score_changes("hw1", "ben")
    assert current["ben"].status is Status.GRADED and current["ben"].score == 5.5
    assert current["ben"].questions[1].feedback == "=say why"
    assert current["eli"].status is Status.GRADED  # the formula answer matched on import
    assert current["cat"].status is Status.PENDING
    assert (change.kind, change.grader, change.reason, change.new_score) == (
        ChangeKind.MANUAL, "ta-kim", "grading sheet sheet.csv", 1.5)

    # Importing the same sheet again changes nothing; a second export keeps the points.
    assert manual.import_sheet(course, "hw1", sheet, "ta-kim").changes == []
    manual.export_sheet(course, "hw1", sheet)
    again = {r["student"]: r["points"] for r in read_rows(sheet)}
    assert again == {"ann": "2", "ben": "1.5", "dov": "2", "eli": "0", "cat": ""}


def test_a_bad_sheet_imports_nothing(course: Course, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    write_rows(sheet, [
        {"question": "why", "student": "ann", "points": "2", "answer": ANSWERS["ann"]},
        {"question": "why", "student": "ben", "points": "lots", "answer": ANSWERS["ben"]},
        {"question": "linear", "student": "cat", "points": "1", "answer": ""},
        {"question": "nope", "student": "cat", "points": "1", "answer": ""},
    ])
    with pytest.raises(ScoresRefused) as info:
        manual.import_sheet(course, "hw1", sheet, "ta-kim")
    text = str(info.value)
    assert "line 3: points 'lots' is not a number" in text
    assert "line 4: 'linear' is graded automatically; change its score with `autograder " \
           "override`" in text
    assert "line 5: hw1 has no question 'nope'" in text
    with Gradebook.open(course.gradebook) as book:
        assert book.score_changes("hw1", "ann") == []


def test_a_sheet_for_an_old_answer_is_refused(course: Course, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    manual.export_sheet(course, "hw1", sheet)
    with Gradebook.open(course.gradebook) as book:  # ann resubmits with a new answer
        book.record("hw1", result("ann", "I changed my answer", "h2"), 6.0)
    rows = read_rows(sheet)
    for r in rows:
        r["points"] = "2"
    write_rows(sheet, rows)
    with pytest.raises(ScoresRefused, match="ann / why: the answer changed"):
        manual.import_sheet(course, "hw1", sheet, "ta-kim")


def test_sheet_without_manual_questions_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "c" / "assignments" / "hw1"
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC.split("[[questions]]\nid = \"why\"")[0])
    with pytest.raises(AutograderError, match="no free-text"):
        manual.export_sheet(Course.at(tmp_path / "c"), "hw1", tmp_path / "s.csv")


# --------------------------------------------------------------------------- overrides
def test_override_and_history(course: Course) -> None:
    change = manual.override(course, "hw1", "cat", "linear", 2, "prof", "test 3 was wrong")
    assert change is not None and (change.old_score, change.new_score) == (3.0, 2.0)
    assert manual.override(course, "hw1", "cat", "linear", 2, "prof", "again") is None
    attempts, changes = manual.history(course, "hw1", "cat")
    assert [a.attempt for a in attempts] == [1]
    assert [(c.kind, c.grader, c.reason) for c in changes] == [
        (ChangeKind.OVERRIDE, "prof", "test 3 was wrong")]
    with pytest.raises(AutograderError, match="needs a reason"):
        manual.override(course, "hw1", "cat", "linear", 1, "prof", "  ")
    with pytest.raises(AutograderError, match="no question 'nope'"):
        manual.override(course, "hw1", "cat", "nope", 1, "prof", "x")
    with pytest.raises(ScoresRefused, match=r"outside 0\.\.3"):
        manual.override(course, "hw1", "cat", "linear", 4, "prof", "bonus")
    with pytest.raises(AutograderError, match="no attempt of 'zoe'"):
        manual.history(course, "hw1", "zoe")


# --------------------------------------------------------------------------- the CLI
def test_cli_round_trip(course: Course, tmp_path: Path) -> None:
    runner = CliRunner()
    sheet = tmp_path / "sheet.csv"
    root = str(course.root)
    done = runner.invoke(app, ["manual", "hw1", "export", "--out", str(sheet), "--course", root])
    assert done.exit_code == 0, done.output
    assert "Wrote 5 answers (5 to grade)" in done.output
    rows = read_rows(sheet)
    for r in rows:
        r["points"] = "1"
    write_rows(sheet, rows)
    done = runner.invoke(app, ["manual", "hw1", "import", str(sheet), "--grader", "Kim Lee",
                               "--reason", "week 3", "--course", root])
    assert done.exit_code == 0, done.output
    assert "5 score(s) changed" in done.output and "0 submission(s) still wait" in done.output
    done = runner.invoke(app, ["override", "hw1", "ann", "why", "2", "--grader", "prof",
                               "--reason", "regraded on appeal", "--course", root])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["history", "hw1", "ann", "--course", root])
    assert done.exit_code == 0, done.output
    for text in ("manual", "Kim", "week 3", "override", "prof", "regraded", "appeal"):
        assert text in done.output  # (table cells may wrap)
    done = runner.invoke(app, ["override", "hw1", "ann", "why", "2", "--course", root])
    assert done.exit_code != 0  # --grader and --reason are required
