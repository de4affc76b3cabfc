"""Scores set by people, the audit trail, and what a regrade keeps of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autograder.gradebook import Gradebook
from autograder.gradebook.changes import ChangeKind, ScoresRefused, SetScore
from autograder.results import QuestionResult, Status, SubmissionResult


def attempt(
    student: str = "alice", content_hash: str = "h1", why: str = "Because XOR is not linear",
    code: float = 3.0,
) -> SubmissionResult:
    return SubmissionResult(
        student, f"{student}.ipynb", content_hash, Status.PENDING,
        questions=[
            QuestionResult("linear", "code", code, 3.0),
            QuestionResult("why", "text", None, 2.0, "waiting for manual grading", why),
        ],
    )


@pytest.fixture
def book(tmp_path: Path) -> Iterator[Gradebook]:
    with Gradebook.open(tmp_path / "gradebook.db") as gb:
        yield gb


def manual(book: Gradebook, points: float, student: str = "alice", **kw: str) -> list:
    return book.set_scores(
        "hw1", [SetScore(student, "why", points, **kw)], kind=ChangeKind.MANUAL,
        grader="ta-kim", reason="sheet week 3",
    )


def test_manual_score_flips_pending_to_graded_and_is_audited(book: Gradebook) -> None:
    book.record("hw1", attempt(), 5.0)
    [change] = manual(book, 1.5, comment="half right")
    [stored] = book.current("hw1")
    assert stored.result.status is Status.GRADED
    assert stored.result.score == 4.5
    why = stored.result.questions[1]
    assert (why.score, why.feedback, why.graded_by) == (1.5, "half right", "ta-kim")
    [row] = book.score_changes("hw1", "alice")
    assert row == change
    assert (row.kind, row.old_score, row.new_score, row.grader, row.reason) == (
        ChangeKind.MANUAL, None, 1.5, "ta-kim", "sheet week 3"
    )


def test_importing_the_same_score_twice_changes_nothing(book: Gradebook) -> None:
    book.record("hw1", attempt(), 5.0)
    manual(book, 2.0, comment="ok")
    assert manual(book, 2.0, comment="ok") == []
    assert len(book.score_changes("hw1", "alice")) == 1


def test_bad_requests_are_refused_whole(book: Gradebook) -> None:
    book.record("hw1", attempt(), 5.0)
    book.record("hw1", attempt("bob"), 5.0)
    requests = [
        SetScore("bob", "why", 1.0),  # fine on its own
        SetScore("alice", "why", 2.5),  # above max
        SetScore("carol", "why", 1.0),  # never graded
        SetScore("alice", "nope", 1.0),  # no such question
        SetScore("bob", "why", 1.0),  # twice
        SetScore("alice", "linear", 1.0, answer="something else"),
    ]
    with pytest.raises(ScoresRefused) as info:
        book.set_scores("hw1", requests, kind=ChangeKind.MANUAL, grader="x", reason="")
    assert len(info.value.problems) == 5
    assert "alice / why: 2.5 points is outside 0..2" in str(info.value)
    assert "nothing was changed" in str(info.value)
    assert all(s.result.status is Status.PENDING for s in book.current("hw1"))
    assert book.score_changes("hw1", "bob") == []


def test_stale_sheet_is_refused(book: Gradebook) -> None:
    book.record("hw1", attempt(why="new text"), 5.0)
    with pytest.raises(ScoresRefused, match="the answer changed"):
        manual(book, 1.0, answer="old text")
    manual(book, 1.0, answer="new text\r\n")  # line endings from a spreadsheet do not matter


def test_regrade_keeps_manual_score_when_answer_unchanged(book: Gradebook) -> None:
    book.record("hw1", attempt(content_hash="h1", code=1.0), 5.0)
    manual(book, 2.0, comment="good")
    new = attempt(content_hash="h2", code=3.0)  # code changed, same answer text
    book.record("hw1", new, 5.0)
    assert new.status is Status.GRADED and new.questions[1].score == 2.0  # written back
    [stored] = book.current("hw1")
    why = stored.result.questions[1]
    assert (why.score, why.feedback, why.graded_by) == (2.0, "good", "ta-kim")
    assert stored.result.status is Status.GRADED and stored.result.score == 5.0
    kinds = [(c.kind, c.question_id, c.old_score, c.new_score) for c in
             book.score_changes("hw1", "alice")]
    assert kinds == [
        (ChangeKind.MANUAL, "why", None, 2.0),
        (ChangeKind.REGRADE, "linear", 1.0, 3.0),
        (ChangeKind.CARRIED, "why", None, 2.0),
    ]


def test_regrade_with_a_new_answer_needs_a_new_manual_grade(book: Gradebook) -> None:
    book.record("hw1", attempt(content_hash="h1"), 5.0)
    manual(book, 2.0)
    book.record("hw1", attempt(content_hash="h2", why="I changed my mind"), 5.0)
    [stored] = book.current("hw1")
    assert stored.result.status is Status.PENDING
    assert stored.result.questions[1].score is None
    # The old attempt keeps its grade: history is never rewritten.
    first = book.history("hw1", "alice")[0]
    assert first.result.questions[1].score == 2.0


def test_override_survives_a_regrade_of_the_same_notebook_only(book: Gradebook) -> None:
    book.record("hw1", attempt(content_hash="h1", code=1.0), 5.0)
    book.set_scores("hw1", [SetScore("alice", "linear", 3.0)], kind=ChangeKind.OVERRIDE,
                    grader="prof", reason="hidden test was wrong")
    book.record("hw1", attempt(content_hash="h1", code=1.0), 5.0)  # --regrade, same file
    assert book.current("hw1")[0].result.questions[0].score == 3.0
    book.record("hw1", attempt(content_hash="h2", code=1.0), 5.0)  # a new notebook
    assert book.current("hw1")[0].result.questions[0].score == 1.0


def test_manual_score_on_an_error_attempt_keeps_the_status(book: Gradebook) -> None:
    result = attempt()
    result.status = Status.TIMEOUT
    book.record("hw1", result, 5.0)
    manual(book, 1.0)
    assert book.current("hw1")[0].result.status is Status.TIMEOUT
