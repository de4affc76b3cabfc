"""From hidden-test outcomes to points per code question (partial credit by weight)."""

from __future__ import annotations

from autograder.results import Outcome, QuestionResult, TestResult
from autograder.spec import AssignmentSpec, QuestionKind


def score_code_questions(spec: AssignmentSpec, tests: list[TestResult]) -> list[QuestionResult]:
    """Points = question points × passed weight / total weight of the question's tests."""
    results = []
    for question in spec.questions:
        if question.kind is not QuestionKind.CODE:
            continue
        mine = [t for t in tests if t.question_id == question.id]
        total = sum(t.weight for t in mine)
        passed = sum(t.weight for t in mine if t.outcome is Outcome.PASSED)
        if total <= 0:
            results.append(
                QuestionResult(
                    question.id,
                    question.kind.value,
                    0.0,
                    question.points,
                    "no hidden test ran for this question",
                )
            )
            continue
        forbidden = [t for t in mine if t.outcome is Outcome.FORBIDDEN]
        if forbidden:
            results.append(
                QuestionResult(
                    question.id,
                    question.kind.value,
                    0.0,
                    question.points,
                    f"zero: {forbidden[0].message}",
                )
            )
            continue
        failed = [t for t in mine if t.outcome is not Outcome.PASSED]
        feedback = (
            "all checks passed" if not failed else f"{len(failed)} of {len(mine)} checks failed"
        )
        score = round(question.points * passed / total, 6)
        results.append(
            QuestionResult(question.id, question.kind.value, score, question.points, feedback)
        )
    return results
