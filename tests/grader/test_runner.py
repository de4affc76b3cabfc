"""The pytest session a grader keeps between submissions: nothing of one reaches the next."""

from __future__ import annotations

import types
import uuid
from pathlib import Path
from typing import Any

import pytest

from autograder.grader.plugin import TestRunner
from autograder.results import Outcome
from autograder.spec import load_spec
from tests.grader.toy import SPEC

# Fixtures of every scope count their set-ups; each test records what it saw, and the
# `student` fixture tells which submission it is graded for.
HIDDEN = """\
import pytest

SETUPS = {"session": 0, "module": 0}


@pytest.fixture(scope="session")
def per_session():
    SETUPS["session"] += 1
    value = []
    yield value
    value.append("torn down")


@pytest.fixture(scope="module")
def per_module():
    SETUPS["module"] += 1
    return {}


def test_double_first(student, per_session, per_module):
    per_session.append(student.name)
    per_module["who"] = student.name
    assert per_session == [student.name], per_session


def test_double_second(student, per_session, per_module):
    assert per_module == {"who": student.name}, per_module
    assert student.name != "bob", "bob fails this one"


@pytest.mark.parametrize("n", [1, 2])
def test_lin_counts(student, n):
    assert SETUPS["session"] == SETUPS["module"] == student.number, SETUPS
"""


class FakeSession:
    """Stands in for a StudentSession: the plugin only sets these attributes on it."""

    def __init__(self, name: str, number: int) -> None:
        self.name, self.number = name, number
        self.deadline: float | None = None
        self.pending_seed: int | None = None
        self.forbid: list[str] = []


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    tests_dir = tmp_path / "hidden_tests"
    tests_dir.mkdir()
    # A module name of its own: test modules stay imported for the life of the process.
    (tests_dir / f"test_scopes_{uuid.uuid4().hex}.py").write_text(HIDDEN)
    (tmp_path / "assignment.toml").write_text(SPEC)
    spec = load_spec(tmp_path / "assignment.toml")
    # The proxy is the session itself here: tests read .name and .number from it.
    monkeypatch.setattr("autograder.grader.plugin.StudentProxy", lambda session: session)
    r = TestRunner(tests_dir, spec, types.ModuleType("reference"))
    yield r
    r.close()


def outcomes(results: list[Any]) -> dict[str, Outcome]:
    return {t.test_id: t.outcome for t in results}


def test_every_submission_gets_fresh_fixtures_of_every_scope(runner: Any) -> None:
    for number, name in enumerate(["alice", "bob", "carol"], start=1):
        results = runner.run(FakeSession(name, number))
        assert len(results) == 4, [t.test_id for t in results]
        failed = [t for t in results if t.outcome is not Outcome.PASSED]
        if name == "bob":
            assert [t.test_id for t in failed] == ["test_double_second"], failed
            assert "bob fails this one" in failed[0].message
        else:
            assert failed == [], [(t.test_id, t.message) for t in failed]
    assert runner.collection_errors == []


def test_results_belong_to_one_run(runner: Any) -> None:
    first = runner.run(FakeSession("alice", 1))
    second = runner.run(FakeSession("bob", 2))
    assert [t.test_id for t in first] == [t.test_id for t in second]
    assert outcomes(first)["test_double_second"] is Outcome.PASSED
    assert outcomes(second)["test_double_second"] is Outcome.FAILED


def test_collection_errors_are_reported_on_every_run(tmp_path: Path) -> None:
    tests_dir = tmp_path / "broken"
    tests_dir.mkdir()
    (tests_dir / f"test_broken_{uuid.uuid4().hex}.py").write_text("import no_such_module_here\n")
    (tmp_path / "assignment.toml").write_text(SPEC)
    r = TestRunner(tests_dir, load_spec(tmp_path / "assignment.toml"), None)
    try:
        for number in (1, 2):
            assert r.run(FakeSession("x", number)) == []
            assert any("no_such_module_here" in e for e in r.collection_errors)
    finally:
        r.close()


def test_a_closed_runner_starts_again(runner: Any) -> None:
    assert len(runner.run(FakeSession("alice", 1))) == 4
    runner.close()
    # A new pytest session; the test module stays imported, so its counters go on.
    results = runner.run(FakeSession("carol", 2))
    assert len(results) == 4
