"""The `init` verb: a new course folder with the fixed layout and one small assignment."""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.errors import CourseError

SPEC = """\
name = "hello"
title = "Hello, autograder: a ReLU"
notebook = "hello.ipynb"
seed = 0

[limits]
notebook_timeout = 60   # seconds to run the whole notebook
call_timeout = 10       # seconds for one call into student code
test_timeout = 30       # seconds for one hidden test

[[questions]]
id = "relu"
kind = "code"
points = 2
title = "relu(x)"
tests = ["test_relu_*"]

[[questions]]
id = "relu_range"
kind = "choice"
points = 1
choices = ["a", "b", "c"]
answer = "b"
"""

HIDDEN_TESTS = '''\
"""Hidden tests of `hello`: `student` runs in the sandbox, `reference` is the solution."""

import pytest
import torch

from autograder.testing import assert_close


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_relu_matches_reference(student, reference, shape):
    """relu(x) equals max(x, 0) elementwise, for any shape"""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(len(shape)))
    assert_close(student.relu(x.clone()), reference.relu(x), what="relu(x)")


@pytest.mark.weight(2)
def test_relu_zero_and_negative(student, reference):
    """relu maps negative numbers and zero to zero"""
    x = torch.tensor([-3.0, -0.0, 0.0, 2.5])
    assert_close(student.relu(x.clone()), reference.relu(x), what="relu(x)")
'''

PUBLIC_TESTS = '''\
"""Public tests of `hello`: run them with `autograder check hello.ipynb`."""

import torch

from autograder.testing import assert_close


def test_relu_small_example(student):
    """relu([-1, 0, 2]) is [0, 0, 2]"""
    assert_close(student.relu(torch.tensor([-1.0, 0.0, 2.0])), torch.tensor([0.0, 0.0, 2.0]))
'''

INTRO = """\
# Hello, autograder

Implement `relu(x)`, which returns `max(x, 0)` elementwise for a tensor `x` of any shape,
then answer the question below. Check your work with `autograder check hello.ipynb`.
"""

QUESTION = """\
**Question** (`answer_relu_range`): what is the range of ReLU?
a) (-1, 1)  b) [0, inf)  c) (0, 1). Answer with one letter as a string, e.g. `"a"`.
"""


def _notebook(path: Path, relu_body: str, answer: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(INTRO),
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_code_cell(f"def relu(x):\n    {relu_body}"),
        nbformat.v4.new_markdown_cell(QUESTION),
        nbformat.v4.new_code_cell(f"answer_relu_range = {answer}"),
    ]
    nbformat.write(nb, path)


def create_course(root: Path) -> Path:
    """Write a course skeleton into `root` (which must be empty or new)."""
    root = root.resolve()
    if root.exists() and any(root.iterdir()):
        raise CourseError(f"{root} is not empty; choose a new folder for the course")
    assignment = root / "assignments" / "hello"
    (assignment / "hidden_tests").mkdir(parents=True)
    (assignment / "public_tests").mkdir()
    reference = root / "reference_solutions" / "hello"
    reference.mkdir(parents=True)
    (root / "submissions").mkdir()
    (assignment / "assignment.toml").write_text(SPEC)
    (assignment / "hidden_tests" / "test_hello.py").write_text(HIDDEN_TESTS)
    (assignment / "public_tests" / "test_public.py").write_text(PUBLIC_TESTS)
    _notebook(assignment / "hello.ipynb", "raise NotImplementedError", "None")
    _notebook(reference / "hello.ipynb", "return torch.clamp(x, min=0)", '"b"')
    (root / ".gitignore").write_text("gradebook.db*\nreports/\nexports/\nrelease/\n")
    return root
