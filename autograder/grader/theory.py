"""Grading theory answers (`answer_<id>` variables) on the trusted side.

The value was read out of the sandbox as plain data; the checks follow COURSE.md:
multiple choice is one letter, true/false a bool, numeric an int or float (never a
bool or a string), integer answers exactly, other numbers within the spec's tolerance.
"""

from __future__ import annotations

import math
from typing import Any

from autograder.results import QuestionResult
from autograder.spec import Question, QuestionKind

NOT_ANSWERED = object()


def _shown(value: Any) -> str | None:
    if value is NOT_ANSWERED:
        return None
    return repr(value)[:2000] if not isinstance(value, str) else value[:5000]


def grade_answer(question: Question, value: Any) -> QuestionResult:
    """Score one theory question from the value the notebook assigned (or NOT_ANSWERED)."""
    answer_text = _shown(value)
    if question.kind is QuestionKind.TEXT:
        if not isinstance(value, str) or not value.strip():
            return QuestionResult(
                question.id,
                question.kind.value,
                0.0,
                question.points,
                f"no answer: set {question.variable} to a string",
                answer_text,
            )
        return QuestionResult(
            question.id,
            question.kind.value,
            None,
            question.points,
            "waiting for manual grading",
            answer_text,
        )
    ok, feedback = _check(question, value)
    return QuestionResult(
        question.id,
        question.kind.value,
        question.points if ok else 0.0,
        question.points,
        feedback,
        answer_text,
    )


def _check(question: Question, value: Any) -> tuple[bool, str]:
    if value is NOT_ANSWERED or value is None:
        return False, f"not answered: the notebook does not set {question.variable}"
    kind = question.kind
    if kind is QuestionKind.CHOICE:
        if not isinstance(value, str):
            return False, f'expected one letter as a string (e.g. "a"), got {type(value).__name__}'
        letter = value.strip().lower().rstrip(").")
        if letter not in question.choices:
            return False, f"expected one of {', '.join(question.choices)}, got {value!r}"
        return letter == question.answer, "correct" if letter == question.answer else "incorrect"
    if kind is QuestionKind.BOOL:
        if type(value) is not bool:
            return False, f"expected True or False, got {type(value).__name__}"
        return value is question.answer, "correct" if value is question.answer else "incorrect"
    if kind is QuestionKind.NUMERIC:
        if type(value) not in (int, float):
            return False, f"expected a number (int or float), got {type(value).__name__}"
        if type(value) is float and not math.isfinite(value):
            return False, "expected a finite number"
        expected = question.answer
        assert isinstance(expected, int | float)
        if isinstance(expected, int) or float(expected).is_integer():
            if type(value) is int:  # exact at any size (float() of a huge int overflows)
                ok = value == int(expected)
            else:
                ok = value.is_integer() and int(value) == int(expected)
        else:
            try:
                ok = math.isclose(value, expected, rel_tol=question.rtol, abs_tol=question.atol)
            except OverflowError:  # an int too large for a float is no float's neighbour
                ok = False
        return ok, "correct" if ok else "incorrect"
    raise AssertionError(f"not a theory question: {kind}")
