"""assignment.toml: validation errors name the file and the field; tests map to questions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autograder.course import Assignment
from autograder.errors import SpecError
from autograder.grader.run import launch_config
from autograder.sandbox.base import LaunchConfig, runtime_env
from autograder.spec import AssignmentSpec, QuestionKind, load_spec

VALID = """\
name = "hw1"
notebook = "hw1.ipynb"
seed = 3

[limits]
call_timeout = 5
memory_mb = 2048

[[questions]]
id = "linear"
kind = "code"
points = 3
tests = ["test_linear*", "test_forward"]

[[questions]]
id = "pick"
kind = "choice"
choices = ["a", "b", "c"]
answer = "b"

[[questions]]
id = "xor"
kind = "bool"
answer = false

[[questions]]
id = "params"
kind = "numeric"
answer = 101770

[[questions]]
id = "lr"
kind = "numeric"
answer = 0.01
rtol = 0.05

[[questions]]
id = "why"
kind = "text"
points = 2
"""


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assignment.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> str:
    path = spec_file(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_a_valid_spec_loads(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path, VALID))
    assert [q.id for q in spec.questions] == ["linear", "pick", "xor", "params", "lr", "why"]
    assert spec.limits.call_timeout == 5 and spec.limits.memory_mb == 2048
    assert spec.limits.notebook_timeout == 120  # defaults kept
    assert spec.question("xor").answer is False
    assert spec.question("params").answer == 101770
    assert spec.question("why").variable == "answer_why" and not spec.question("why").auto
    assert spec.max_score == 3 + 1 + 1 + 1 + 1 + 2
    assert spec.missing_answers() == []
    assert all("answer" not in q for q in spec.without_answers()["questions"])


QUESTION_HEAD = 'name = "hw1"\nnotebook = "hw1.ipynb"\n'


@pytest.mark.parametrize(
    ("questions", "fragments"),
    [
        (
            '[[questions]]\nid = "a"\nkind = "text"\n[[questions]]\nid = "a"\nkind = "text"\n',
            ["questions", "question id 'a' appears twice"],
        ),
        (
            '[[questions]]\nid = "pick"\nkind = "choice"\nchoices = ["a", "b"]\nanswer = "e"\n',
            ["questions.0", "answer 'e' of 'pick' is not among its choices"],
        ),
        (
            '[[questions]]\nid = "pick"\nkind = "choice"\n',
            ["questions.0", "choice question 'pick' needs `choices`"],
        ),
        (
            '[[questions]]\nid = "lin"\nkind = "code"\n',
            ["questions.0", "code question 'lin' needs `tests`"],
        ),
        (
            '[[questions]]\nid = "lin"\nkind = "code"\ntests = ["t*"]\nanswer = 1\n',
            ["questions.0", "code question 'lin' cannot have an `answer`"],
        ),
        (
            '[[questions]]\nid = "why"\nkind = "text"\ntests = ["t*"]\n',
            ["questions.0", "only code questions have `tests`"],
        ),
        (
            '[[questions]]\nid = "xor"\nkind = "bool"\nanswer = 1\n',
            ["questions.0", "bool question 'xor' needs answer = true or false"],
        ),
        (
            '[[questions]]\nid = "xor"\nkind = "bool"\nanswer = "false"\n',
            ["questions.0", "bool question 'xor' needs answer = true or false"],
        ),
        (
            '[[questions]]\nid = "n"\nkind = "numeric"\nanswer = "32"\n',
            ["questions.0", "numeric question 'n' needs a number as answer"],
        ),
        (
            '[[questions]]\nid = "n"\nkind = "numeric"\nanswer = true\n',
            ["questions.0", "numeric question 'n' needs a number as answer"],
        ),
        (
            '[[questions]]\nid = "Bad-Id"\nkind = "text"\n',
            ["questions.0.id", "pattern"],
        ),
        (
            '[[questions]]\nid = "q"\nkind = "essay"\n',
            ["questions.0.kind"],
        ),
        (
            '[[questions]]\nid = "q"\nkind = "text"\npoints = -1\n',
            ["questions.0.points"],
        ),
        (
            '[[questions]]\nid = "q"\nkind = "text"\nweight = 2\n',
            ["questions.0.weight", "Extra inputs are not permitted"],
        ),
        ("questions = []\n", ["questions", "at least one question"]),
        (
            '[limits]\ncall_timeout = 0\n[[questions]]\nid = "q"\nkind = "text"\n',
            ["limits.call_timeout", "greater than 0"],
        ),
        (
            '[limits]\nmemory = 10\n[[questions]]\nid = "q"\nkind = "text"\n',
            ["limits.memory", "Extra inputs are not permitted"],
        ),
        (
            '[limits]\npreload = ["os; import x"]\n[[questions]]\nid = "q"\nkind = "text"\n',
            ["limits.preload", "is not a module name"],
        ),
    ],
    ids=[
        "duplicate ids",
        "choice answer not a choice",
        "choice without choices",
        "code without tests",
        "code with answer",
        "tests on text",
        "bool answer int",
        "bool answer string",
        "numeric answer string",
        "numeric answer bool",
        "bad id",
        "unknown kind",
        "negative points",
        "unknown question field",
        "no questions",
        "zero timeout",
        "unknown limit",
        "preload not a module",
    ],
)
def test_validation_errors_name_the_file_and_field(
    tmp_path: Path, questions: str, fragments: list[str]
) -> None:
    message = error_for(tmp_path, QUESTION_HEAD + questions)
    for fragment in fragments:
        assert fragment in message, message


def test_missing_name_is_reported(tmp_path: Path) -> None:
    message = error_for(tmp_path, 'notebook = "a.ipynb"\n[[questions]]\nid = "q"\nkind = "text"\n')
    assert "name: Field required" in message


def test_bad_toml(tmp_path: Path) -> None:
    message = error_for(tmp_path, 'name = "hw1"\nnotebook = \n')
    assert "not valid TOML" in message and "line 2" in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "assignment.toml"
    path.write_bytes('name = "é"\n'.encode("latin-1"))
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no such file; every assignment needs assignment\.toml"):
        load_spec(tmp_path / "assignment.toml")


def test_missing_answer_keys_are_listed() -> None:
    spec = AssignmentSpec.model_validate(
        {
            "name": "hw",
            "notebook": "hw.ipynb",
            "questions": [
                {"id": "a", "kind": "choice", "choices": ["a"]},
                {"id": "b", "kind": "numeric"},
                {"id": "c", "kind": "text"},
            ],
        }
    )
    assert spec.missing_answers() == ["a", "b"]


# --------------------------------------------------------------------------- test mapping
@pytest.fixture
def spec(tmp_path: Path) -> AssignmentSpec:
    return load_spec(spec_file(tmp_path, VALID))


@pytest.mark.parametrize(
    ("test_name", "question"),
    [
        ("test_linear", "linear"),
        ("test_linear_backward", "linear"),
        ("test_linear_backward[3-float64]", "linear"),
        ("test_linear[a*b]", "linear"),
        ("test_forward", "linear"),
        ("test_forward[1]", "linear"),
        ("test_forward_extra", None),
        ("test_forwar", None),
        ("test_line", None),
        ("xtest_linear", None),
        ("test_pick", None),  # theory questions own no tests
    ],
)
def test_question_for_test_globs_on_the_name_without_parameters(
    spec: AssignmentSpec, test_name: str, question: str | None
) -> None:
    found = spec.question_for_test(test_name)
    assert (found.id if found else None) == question


def test_first_matching_question_wins() -> None:
    spec = AssignmentSpec.model_validate(
        {
            "name": "hw",
            "notebook": "hw.ipynb",
            "questions": [
                {"id": "specific", "kind": "code", "tests": ["test_a_b*"]},
                {"id": "general", "kind": "code", "tests": ["test_a*"]},
            ],
        }
    )
    assert spec.question_for_test("test_a_b[1]").id == "specific"
    assert spec.question_for_test("test_a_c").id == "general"
    assert spec.question("general").kind is QuestionKind.CODE


def test_preload_modules_reach_the_launch_config(tmp_path: Path) -> None:
    text = VALID.replace("memory_mb = 2048", 'memory_mb = 2048\npreload = ["matplotlib.pyplot"]')
    spec = load_spec(spec_file(tmp_path, text))
    assert spec.limits.preload == ["matplotlib.pyplot"]
    config = launch_config(Assignment(spec, tmp_path, tmp_path))
    assert config.preload == ("matplotlib.pyplot",)
    assert runtime_env(config, home="/tmp")["AUTOGRADER_PRELOAD"] == "matplotlib.pyplot"
    assert "AUTOGRADER_PRELOAD" not in runtime_env(LaunchConfig(), home="/tmp")
