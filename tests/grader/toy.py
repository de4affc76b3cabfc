"""A toy course for end-to-end grading tests: spec, reference, hidden tests, notebooks.

The hidden tests deliberately compare with many different tools (torch.allclose,
torch.equal, torch.testing, numpy, math.isclose, pytest.approx, unittest, plain `==`,
isinstance, abs), so that a notebook monkeypatching any of them in its own process is
shown to change nothing: comparisons run on the trusted side.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

SPEC = """\
name = "toy"
title = "Toy assignment for the grader's own tests"
notebook = "toy.ipynb"
seed = 7

[limits]
notebook_timeout = 15
call_timeout = 3
test_timeout = 8
memory_mb = 1024
max_processes = 64
scratch_mb = 16
output_bytes = 65536
message_mb = 4
max_restarts = 3

[[questions]]
id = "double"
kind = "code"
points = 2
tests = ["test_double_*"]

[[questions]]
id = "lin"
kind = "code"
points = 2
tests = ["test_lin_*"]

[[questions]]
id = "mean"
kind = "code"
points = 2
tests = ["test_mean_*"]

[[questions]]
id = "positive"
kind = "code"
points = 1
tests = ["test_positive_*"]

[[questions]]
id = "q"
kind = "choice"
choices = ["a", "b", "c"]
answer = "b"

[[questions]]
id = "n"
kind = "numeric"
answer = 32

[[questions]]
id = "flag"
kind = "bool"
answer = false

[[questions]]
id = "note"
kind = "text"
points = 0
"""

REFERENCE = """\
import torch


def double(x):
    return x * 2


class Lin:
    def __init__(self, n):
        self.w = torch.linspace(-1, 1, n)

    def forward(self, x):
        return x @ self.w


def mean(xs):
    return sum(xs) / len(xs)


def positive(x):
    return x > 0
"""

HIDDEN_TESTS = '''\
import math
import random
import unittest

import numpy as np
import pytest
import torch

from autograder.testing import assert_binary, assert_close, assert_shape


def _xs(n):
    return [random.uniform(-5.0, 5.0) for _ in range(n)]


def test_double_close(student, reference):
    """double() doubles a float tensor"""
    x = torch.randn(6)
    assert_close(student.double(x.clone()), reference.double(x))


def test_double_allclose(student, reference):
    x = torch.randn(3, 4)
    got = student.double(x.clone())
    assert isinstance(got, torch.Tensor), "double() should return a tensor"
    assert tuple(got.shape) == (3, 4)
    assert torch.allclose(got.to(torch.float32), reference.double(x), rtol=1e-5, atol=1e-6)


def test_double_equal(student, reference):
    x = torch.arange(-3, 4)
    expected = reference.double(x)
    got = student.double(x.clone())
    assert isinstance(got, torch.Tensor), "double() should return a tensor"
    assert torch.equal(got.to(expected.dtype), expected)
    assert bool((got == expected).all())


def test_double_testing(student, reference):
    x = torch.randn(2, 3, dtype=torch.float64)
    torch.testing.assert_close(student.double(x.clone()), reference.double(x), check_dtype=False)


def test_lin_forward(student, reference):
    x = torch.randn(4, 3)
    assert_close(student.Lin(3).forward(x.clone()), reference.Lin(3).forward(x))


def test_lin_weight(student, reference):
    w = student.Lin(5).w
    assert_shape(w, [5])
    assert_close(w, reference.Lin(5).w)


def test_mean_isclose(student, reference):
    xs = _xs(10)
    got = student.mean(list(xs))
    assert math.isclose(float(got), reference.mean(xs), rel_tol=1e-6, abs_tol=1e-9)


def test_mean_approx(student, reference):
    xs = _xs(7)
    assert student.mean(list(xs)) == pytest.approx(reference.mean(xs), rel=1e-6)


def test_mean_numpy(student, reference):
    xs = _xs(5)
    got = student.mean(list(xs))
    np.testing.assert_allclose(got, reference.mean(xs), rtol=1e-6)
    assert np.allclose(got, reference.mean(xs))


def test_mean_abs(student, reference):
    xs = _xs(4)
    got = student.mean(list(xs))
    assert isinstance(got, int | float), "mean() should return a number"
    assert abs(got - reference.mean(xs)) < 1e-6


def test_mean_unittest(student, reference):
    case = unittest.TestCase()
    case.assertAlmostEqual(student.mean([1.0, 2.0, 3.0, 6.0]), reference.mean([1.0, 2.0, 3.0, 6.0]))
    case.assertEqual(student.mean([2, 2, 2]), 2)


def test_positive_binary(student, reference):
    x = torch.randn(20)
    assert_binary(student.positive(x.clone()), reference.positive(x))


def test_positive_shape(student, reference):
    x = torch.randn(3, 4)
    got = student.positive(x.clone())
    assert_shape(got, [3, 4])
    assert_binary(got, reference.positive(x))
'''

AUTO_QUESTIONS = ("double", "lin", "mean", "positive", "q", "n", "flag")
CODE_QUESTIONS = ("double", "lin", "mean", "positive")


def make_toy_course(root: Path) -> Path:
    """Write the toy course under `root` (with a fake gradebook to be kept secret)."""
    folder = root / "assignments" / "toy"
    (folder / "hidden_tests").mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC)
    (folder / "hidden_tests" / "test_toy.py").write_text(HIDDEN_TESTS)
    ref = root / "reference_solutions" / "toy"
    ref.mkdir(parents=True)
    (ref / "solution.py").write_text(REFERENCE)
    (root / "gradebook.db").write_text("SECRET-GRADEBOOK: alice 100\n")
    return root


def cell(source: str) -> str:
    return textwrap.dedent(source).strip("\n") + "\n"


CORRECT = [
    cell("import torch"),
    cell("""
        def double(x):
            return x * 2
    """),
    cell("""
        class Lin:
            def __init__(self, n):
                self.w = torch.linspace(-1, 1, n)

            def forward(self, x):
                return x @ self.w
    """),
    cell("""
        def mean(xs):
            return sum(xs) / len(xs)
    """),
    cell("""
        def positive(x):
            return x > 0
    """),
    cell("""
        answer_q = "b"
        answer_n = 32
        answer_flag = False
        answer_note = "because"
    """),
]

# Wrong everywhere except `positive` and `answer_q`, so that its score is above zero.
WRONG = [
    cell("import torch"),
    cell("""
        def double(x):
            return x * 3
    """),
    cell("""
        class Lin:
            def __init__(self, n):
                self.w = torch.zeros(n)

            def forward(self, x):
                return x.sum(1) + 1
    """),
    cell("""
        def mean(xs):
            return max(xs) + 1.0
    """),
    cell("""
        def positive(x):
            return x > 0
    """),
    cell("""
        answer_q = "b"
        answer_n = 31
        answer_flag = True
        answer_note = "wrong"
    """),
]


def graded(batch: dict[str, dict[str, Any]], student_id: str) -> dict[str, Any]:
    """One student's result, failing clearly where the grader itself crashed."""
    result = batch[student_id]
    if "grader_crash" in result:
        pytest.fail(f"grading {student_id} crashed the grader: {result['grader_crash']}")
    return result


def scores(result: dict[str, Any]) -> dict[str, float | None]:
    return {q["question_id"]: q["score"] for q in result["questions"]}


def question(result: dict[str, Any], qid: str) -> dict[str, Any]:
    return next(q for q in result["questions"] if q["question_id"] == qid)


def question_tests(result: dict[str, Any], qid: str) -> list[dict[str, Any]]:
    return [t for t in result["tests"] if t["question_id"] == qid]


def assert_full_marks(result: dict[str, Any]) -> None:
    got = scores(result)
    wanted = {q["question_id"]: q["max_score"] for q in result["questions"]}
    lost = {qid: (got[qid], wanted[qid]) for qid in AUTO_QUESTIONS if got[qid] != wanted[qid]}
    failures = [
        (t["test_id"], t["outcome"], t["message"])
        for t in result["tests"]
        if t["outcome"] != "passed"
    ]
    assert not lost, (
        f"{result['student_id']} lost points {lost}: {failures}; cells {result['cells']}; "
        f"message {result['message']!r}; stderr {result['stderr'][-1500:]!r}"
    )
    assert len(result["tests"]) == 13, [t["test_id"] for t in result["tests"]]
