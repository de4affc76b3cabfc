"""Theory answers graded on the trusted side, by COURSE.md's rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from autograder.grader.proxy import Handle
from autograder.grader.theory import NOT_ANSWERED, grade_answer
from autograder.spec import Question, QuestionKind

CHOICE = Question(id="pick", kind=QuestionKind.CHOICE, choices=["a", "b", "c", "d"], answer="b")
BOOL = Question(id="xor", kind=QuestionKind.BOOL, answer=False, points=2)
NUMERIC = Question(id="params", kind=QuestionKind.NUMERIC, answer=101770)
SMALL_INT = Question(id="width", kind=QuestionKind.NUMERIC, answer=32)
FLOAT = Question(id="lr", kind=QuestionKind.NUMERIC, answer=0.0125)
FLOAT_ATOL = Question(id="eps", kind=QuestionKind.NUMERIC, answer=0.5, rtol=0.0, atol=0.01)
TEXT = Question(id="why", kind=QuestionKind.TEXT, points=3)


def score(question: Question, value: Any) -> float | None:
    return grade_answer(question, value).score


@pytest.mark.parametrize("value", ["b", " B ", "b)", "B.", "b\n"])
def test_choice_accepts_the_letter_in_common_spellings(value: str) -> None:
    result = grade_answer(CHOICE, value)
    assert result.score == 1.0 and result.feedback == "correct"
    assert result.answer == value


@pytest.mark.parametrize(
    ("value", "feedback"),
    [
        ("a", "incorrect"),
        ("e", "expected one of a, b, c, d, got 'e'"),
        ("b and c", "expected one of"),
        ("", "expected one of"),
        (2, 'expected one letter as a string (e.g. "a"), got int'),
        (["b"], "got list"),
        (b"b", "got bytes"),
    ],
)
def test_choice_rejects(value: Any, feedback: str) -> None:
    result = grade_answer(CHOICE, value)
    assert result.score == 0.0
    assert feedback in result.feedback, result.feedback


@pytest.mark.parametrize(("value", "points"), [(False, 2.0), (True, 0.0)])
def test_bool_needs_the_right_bool(value: bool, points: float) -> None:
    assert score(BOOL, value) == points


@pytest.mark.parametrize("value", [0, 1, 0.0, "False", "false", None, [False]])
def test_bool_rejects_anything_that_is_not_a_bool(value: Any) -> None:
    result = grade_answer(BOOL, value)
    assert result.score == 0.0
    assert "expected True or False" in result.feedback or "not answered" in result.feedback


@pytest.mark.parametrize("value", [32, 32.0])
def test_numeric_integer_answer_accepts_int_and_integral_float(value: Any) -> None:
    assert score(SMALL_INT, value) == 1.0


@pytest.mark.parametrize(
    ("value", "feedback"),
    [
        ("32", "expected a number (int or float), got str"),
        (True, "expected a number (int or float), got bool"),
        (32.0001, "incorrect"),
        (31.9999999, "incorrect"),
        (33, "incorrect"),
        (math.nan, "expected a finite number"),
        (math.inf, "expected a finite number"),
        ([32], "got list"),
    ],
)
def test_numeric_integer_answer_rejects(value: Any, feedback: str) -> None:
    result = grade_answer(SMALL_INT, value)
    assert result.score == 0.0
    assert feedback in result.feedback, result.feedback


def test_numeric_large_integers_match_exactly() -> None:
    assert score(NUMERIC, 101770) == 1.0
    assert score(NUMERIC, 101770.0) == 1.0
    assert score(NUMERIC, 101771) == 0.0
    assert score(NUMERIC, 101770.5) == 0.0
    assert score(NUMERIC, 101770 * (1 + 1e-4)) == 0.0  # within rtol, but integers are exact


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**4000])
def test_numeric_huge_integers_are_wrong_not_a_crash(value: int) -> None:
    for question in (NUMERIC, FLOAT):
        result = grade_answer(question, value)
        assert result.score == 0.0 and result.feedback == "incorrect"


@pytest.mark.parametrize(
    ("question", "value", "points"),
    [
        (FLOAT, 0.0125, 1.0),
        (FLOAT, 0.0125 * (1 + 9e-4), 1.0),  # within the default rtol 1e-3
        (FLOAT, 0.0125 * (1 - 9e-4), 1.0),
        (FLOAT, 0.0125 * (1 + 2e-3), 0.0),
        (FLOAT, 0.0126, 0.0),
        (FLOAT, 0, 0.0),
        (FLOAT_ATOL, 0.505, 1.0),
        (FLOAT_ATOL, 0.52, 0.0),
        (FLOAT_ATOL, 1, 0.0),
    ],
)
def test_numeric_float_answer_uses_the_tolerance(
    question: Question, value: Any, points: float
) -> None:
    assert score(question, value) == points


@pytest.mark.parametrize("question", [CHOICE, BOOL, NUMERIC, FLOAT])
def test_not_answered(question: Question) -> None:
    for value in (NOT_ANSWERED, None):
        result = grade_answer(question, value)
        assert result.score == 0.0
        assert result.feedback == f"not answered: the notebook does not set answer_{question.id}"
    assert grade_answer(question, NOT_ANSWERED).answer is None


def test_text_answers_wait_for_a_human() -> None:
    result = grade_answer(TEXT, "Because XOR is not linearly separable.")
    assert result.score is None and result.feedback == "waiting for manual grading"
    assert result.answer == "Because XOR is not linearly separable."
    assert result.max_score == 3


@pytest.mark.parametrize("value", ["", "   \n", NOT_ANSWERED, None, 42, b"text", ["a"]])
def test_text_empty_or_not_text_scores_zero(value: Any) -> None:
    result = grade_answer(TEXT, value)
    assert result.score == 0.0
    assert result.feedback == "no answer: set answer_why to a string"


def test_handles_are_never_answers() -> None:
    """An object that stayed in the sandbox (e.g. a str subclass) is not a str."""

    class NoSession:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("grading an answer must not call the sandbox")

    liar = Handle(NoSession(), 3, "LiarStr", False, 1)  # type: ignore[arg-type]
    for question in (CHOICE, BOOL, NUMERIC, TEXT):
        result = grade_answer(question, liar)
        assert result.score == 0.0, question.id
        assert result.answer == "<student LiarStr object>"


def test_shown_answer_is_capped() -> None:
    assert len(grade_answer(TEXT, "x" * 100_000).answer or "") == 5000
    assert len(grade_answer(NUMERIC, list(range(10_000))).answer or "") == 2000
