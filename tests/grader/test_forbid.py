"""Forbidden APIs: disabled only while the graded function runs, whatever their name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from autograder.runtime.forbid import Blocked, ForbiddenAPIError

SPEC = """\
name = "fb"
notebook = "fb.ipynb"
[[questions]]
id = "conv"
kind = "code"
tests = ["test_conv*"]
forbid = ["torch.nn.functional.conv2d", "torch.nn.Conv2d", "torch.conv2d"]
[[questions]]
id = "lin"
kind = "code"
tests = ["test_lin*"]
forbid = ["autograd"]
[[questions]]
id = "other"
kind = "code"
tests = ["test_other*"]
"""
REFERENCE = """\
import torch
def conv(x, w):
    return torch.nn.functional.conv2d(x, w)
def lin_grad(x, w):
    return x.sum(0)
def other(x, w):
    return torch.nn.functional.conv2d(x, w)
"""
TESTS = """\
import torch
from autograder.testing import assert_close
def test_conv(student, reference):
    x, w = torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3)
    assert_close(student.conv(x, w), reference.conv(x, w), rtol=1e-3, atol=1e-4)
def test_lin(student, reference):
    x, w = torch.randn(4, 3), torch.randn(3)
    assert_close(student.lin_grad(x, w), reference.lin_grad(x, w))
def test_other(student, reference):
    x, w = torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3)
    assert_close(student.other(x, w), reference.other(x, w), rtol=1e-3, atol=1e-4)
"""
HEAD = (
    "import torch\nimport torch.nn.functional as F\ndef other(x, w):\n    return F.conv2d(x, w)\n"
)
LIN_OK = "def lin_grad(x, w):\n    return x.sum(0)\n"
MANUAL_CONV = """\
def conv(x, w):
    cols = torch.nn.functional.unfold(x, w.shape[-2:])
    out = w.reshape(w.shape[0], -1) @ cols
    h, k = x.shape[2] - w.shape[2] + 1, x.shape[3] - w.shape[3] + 1
    return out.reshape(x.shape[0], w.shape[0], h, k)
"""
ALIAS = "from torch.nn.functional import conv2d as c2d\ndef conv(x, w):\n    return c2d(x, w)\n"
DEFAULT_ARG = "def conv(x, w, _f=F.conv2d):\n    return _f(x, w)\n"
CLOSURE = """\
def make():
    f = torch.conv2d
    def conv(x, w):
        return f(x, w)
    return conv
conv = make()
"""
MODULE = """\
def conv(x, w):
    m = torch.nn.Conv2d(1, 1, 3, bias=False)
    with torch.no_grad():
        m.weight.copy_(w)
    return m(x).detach()
"""
CAUGHT = """\
def conv(x, w):
    try:
        return F.conv2d(x, w)
    except BaseException:
        return torch.zeros(1)
"""
LIN_BACKWARD = """\
def lin_grad(x, w):
    w = w.clone().requires_grad_(True)
    (x @ w).sum().backward()
    return w.grad
"""
LIN_GRAD = """\
def lin_grad(x, w):
    w = w.clone().requires_grad_(True)
    return torch.autograd.grad((x @ w).sum(), w)[0]
"""
SELF_TEST = "print(F.conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3)))"
NOTEBOOKS = {
    # F.conv2d in a self-test cell and in another question's function costs nothing.
    "honest": [HEAD, MANUAL_CONV, LIN_OK, SELF_TEST],
    "alias": [HEAD, ALIAS, LIN_BACKWARD],
    "default_arg": [HEAD, DEFAULT_ARG, LIN_GRAD],
    "closure": [HEAD, CLOSURE, LIN_OK],
    "module": [HEAD, MODULE, LIN_OK],
    "caught": [HEAD, CAUGHT, LIN_OK],
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory, grade_notebooks: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("fbcourse")
    folder = root / "assignments" / "fb"
    (folder / "hidden_tests").mkdir(parents=True)
    (folder / "assignment.toml").write_text(SPEC)
    (folder / "hidden_tests" / "test_fb.py").write_text(TESTS)
    (root / "reference_solutions" / "fb").mkdir(parents=True)
    (root / "reference_solutions" / "fb" / "sol.py").write_text(REFERENCE)
    return grade_notebooks(root, "fb", NOTEBOOKS)


def scores(result: dict[str, Any]) -> dict[str, float]:
    return {q["question_id"]: q["score"] for q in result["questions"]}


def test_honest_use_elsewhere_costs_nothing(graded: dict[str, Any]) -> None:
    assert scores(graded["honest"]) == {"conv": 1.0, "lin": 1.0, "other": 1.0}


@pytest.mark.parametrize("student", ["alias", "default_arg", "closure", "module", "caught"])
def test_forbidden_use_zeroes_only_its_question_and_names_the_api(
    graded: dict[str, Any], student: str
) -> None:
    result = graded[student]
    got = scores(result)
    assert got["conv"] == 0.0 and got["other"] == 1.0
    conv = next(q for q in result["questions"] if q["question_id"] == "conv")
    assert "forbids" in conv["feedback"]
    assert any(api in conv["feedback"] for api in ("conv2d", "Conv2d"))
    outcomes = {t["test_id"]: t["outcome"] for t in result["tests"]}
    assert outcomes["test_conv"] == "forbidden"


def test_autograd_is_forbidden_in_backprop_style_questions(graded: dict[str, Any]) -> None:
    assert scores(graded["alias"])["lin"] == 0.0
    assert scores(graded["default_arg"])["lin"] == 0.0
    lin = next(q for q in graded["alias"]["questions"] if q["question_id"] == "lin")
    assert "torch.Tensor.backward" in lin["feedback"]


def test_blocked_restores_everything() -> None:
    ns: dict[str, Any] = {"c": F.conv2d}
    original_backward = torch.Tensor.backward
    original_init = torch.nn.Conv2d.__init__
    with Blocked(["torch.nn.functional.conv2d", "torch.nn.Conv2d", "autograd"], ns) as blocked:
        with pytest.raises(ForbiddenAPIError):
            ns["c"](torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3))
        with pytest.raises(ForbiddenAPIError):
            torch.nn.Conv2d(1, 1, 3)
        with pytest.raises(ForbiddenAPIError):
            torch.ones(2, requires_grad=True).sum().backward()
    assert blocked.used[0] == "torch.nn.functional.conv2d"
    assert ns["c"] is F.conv2d is torch.conv2d
    assert torch.Tensor.backward is original_backward
    assert torch.nn.Conv2d.__init__ is original_init
    torch.nn.Conv2d(1, 1, 3)  # usable again


def test_unknown_names_are_ignored(tmp_path: Path) -> None:
    with Blocked(["torch.no_such_function", "numpy_not_imported.x"], {}) as blocked:
        pass
    assert blocked.used == []
