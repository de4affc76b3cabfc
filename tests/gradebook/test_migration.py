"""Schema version 2: an old (version 1) gradebook is migrated in place, nothing lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from autograder.gradebook import SCHEMA_VERSION, Gradebook
from autograder.gradebook.schema import MIGRATIONS
from autograder.results import Outcome, QuestionResult, Status, SubmissionResult, TestResult


def make_v1(path: Path) -> None:
    """A gradebook exactly as version 1 of the autograder wrote it, with two attempts."""
    raw = sqlite3.connect(path)
    for statement in MIGRATIONS[1]:
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO attempts (id, assignment, student_id, path, content_hash, status, score,"
        " max_score, graded_at, current) VALUES"
        " (1, 'hw1', 'alice', 'alice.ipynb', 'h1', 'graded', 1, 6, '2024-01-01T00:00:00+00:00', 0),"
        " (2, 'hw1', 'alice', 'alice.ipynb', 'h2', 'graded', 3, 6, '2024-01-02T00:00:00+00:00', 1)"
    )
    raw.execute(
        "INSERT INTO question_scores (attempt_id, position, question_id, kind, score, max_score,"
        " answer) VALUES (1, 0, 'linear', 'code', 1, 3, NULL),"
        " (2, 0, 'linear', 'code', 3, 3, NULL), (2, 1, 'why', 'text', NULL, 2, 'because')"
    )
    raw.execute(
        "INSERT INTO test_results (attempt_id, position, test_id, question_id, outcome)"
        " VALUES (2, 0, 'test_linear', 'linear', 'passed')"
    )
    raw.execute(
        "INSERT INTO cell_errors (attempt_id, position, cell_index, error)"
        " VALUES (2, 0, 3, 'NameError: x')"
    )
    raw.commit()
    raw.close()


def test_version_1_is_migrated_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "gradebook.db"
    make_v1(path)
    with Gradebook.open(path) as book:
        [current] = book.current("hw1")
        history = book.history("hw1", "alice")
    assert SCHEMA_VERSION >= 2  # migrated through version 2 to the newest
    assert [s.attempt_id for s in history] == [1, 2]
    result = current.result
    assert result.content_hash == "h2" and result.score == 3
    assert [(q.question_id, q.score, q.graded_by) for q in result.questions] == [
        ("linear", 3.0, None),
        ("why", None, None),
    ]
    assert [t.outcome for t in result.tests] == [Outcome.PASSED]
    assert [c.index for c in result.cells] == [3]
    # New columns take their neutral values.
    assert (result.submitted_at, result.late_minutes, result.penalty_percent) == (None, 0, 0)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        meta = dict(raw.execute("SELECT key, value FROM meta").fetchall())
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        # The indexes came back with the rebuilt table.
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert {"attempts_one_current", "attempts_by_student"} <= names


def test_migrated_gradebook_takes_the_new_statuses_and_cascades(tmp_path: Path) -> None:
    path = tmp_path / "gradebook.db"
    make_v1(path)
    with Gradebook.open(path) as book:
        result = SubmissionResult(
            "bob", "bob.ipynb", "h", Status.PENDING,
            questions=[QuestionResult("why", "text", None, 2.0, answer="x")],
            tests=[TestResult("test_conv", "conv", Outcome.FORBIDDEN, "used conv2d")],
            submitted_at="2024-01-03T10:00:00+00:00", late_minutes=90.0, penalty_percent=10.0,
        )
        book.record("hw1", result, 6.0)
        stored = {s.result.student_id: s.result for s in book.current("hw1")}
    assert stored["bob"] == result
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("DELETE FROM attempts WHERE id = 2")
        left = raw.execute("SELECT count(*) FROM question_scores WHERE attempt_id = 2").fetchone()
    assert left == (0,)  # ON DELETE CASCADE still points at the rebuilt attempts table


def test_penalty_outside_0_100_is_refused(tmp_path: Path) -> None:
    with Gradebook.open(tmp_path / "gradebook.db") as book:
        result = SubmissionResult("bob", "bob.ipynb", "h", Status.GRADED, penalty_percent=120)
        with pytest.raises(Exception, match="nothing was written"):
            book.record("hw1", result, 6.0)


def test_failed_migration_leaves_version_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gradebook.db"
    make_v1(path)
    broken = (*MIGRATIONS[2][:3], "THIS IS NOT SQL")
    monkeypatch.setitem(MIGRATIONS, 2, broken)
    with pytest.raises(Exception):  # noqa: B017 (any error: the point is what is left)
        Gradebook.open(path)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        assert raw.execute("SELECT count(*) FROM attempts").fetchone()[0] == 2
        assert raw.execute("SELECT count(*) FROM question_scores").fetchone()[0] == 3


def test_version_2_gains_the_competition_table(tmp_path: Path) -> None:
    """Version 3 only adds the competition's table: a version 2 gradebook keeps every row."""
    path = tmp_path / "gradebook.db"
    make_v1(path)
    with Gradebook.open(path):
        pass
    with sqlite3.connect(path) as raw:  # back to exactly what version 2 wrote
        raw.execute("DROP TABLE competition_submissions")
        raw.execute("PRAGMA user_version = 2")
    with Gradebook.open(path) as book:
        assert [s.attempt_id for s in book.history("hw1", "alice")] == [1, 2]
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
        raw.execute(
            "INSERT INTO competition_submissions (competition, team, kind, filename, content,"
            " content_hash, status, public_score, private_score, submitted_at) VALUES"
            " ('digits', 'owls', 'csv', 'a.csv', x'00', 'h', 'scored', 0.9, 0.8,"
            " '2026-11-03T09:00:00.000000+00:00')"
        )
        with pytest.raises(sqlite3.IntegrityError):  # a rejected file cannot be selected
            raw.execute(
                "INSERT INTO competition_submissions (competition, team, kind, filename, content,"
                " content_hash, status, submitted_at, selected) VALUES ('digits', 'owls', 'csv',"
                " 'b.csv', x'00', 'h', 'rejected', '2026-11-03T09:00:00.000000+00:00', 1)"
            )
