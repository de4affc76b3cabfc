"""CSV export: the columns DESIGN.md fixes, numbers without float noise, atomic writes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from autograder import export as export_module
from autograder.export import FORMATS, export_csv
from autograder.gradebook import StoredResult
from autograder.results import QuestionResult, Status, SubmissionResult
from autograder.spec import AssignmentSpec

SPEC = AssignmentSpec.model_validate(
    {
        "name": "hw1",
        "notebook": "hw1.ipynb",
        "questions": [
            {"id": "linear", "kind": "code", "points": 3, "tests": ["test_linear*"]},
            {"id": "why_relu", "kind": "text", "points": 2},
            {"id": "pick", "kind": "choice", "points": 1, "choices": ["a", "b"], "answer": "a"},
        ],
    }
)


def stored(
    student_id: str,
    questions: list[QuestionResult],
    status: Status = Status.GRADED,
    max_score: float = 6.0,
) -> StoredResult:
    result = SubmissionResult(student_id, f"{student_id}.ipynb", "h", status, questions=questions)
    return StoredResult(result, attempt_id=1, attempt=1, graded_at="2024-05-01T10:00:00+00:00",
                        max_score=max_score)


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_columns_and_values(tmp_path: Path) -> None:
    rows = [
        stored("alice", [
            QuestionResult("linear", "code", 0.1 + 0.2, 3.0),  # 0.30000000000000004
            QuestionResult("why_relu", "text", 2.0, 2.0),
            QuestionResult("pick", "choice", 1.0, 1.0),
        ]),
        stored("bob", [
            QuestionResult("linear", "code", 2.5, 3.0),
            QuestionResult("why_relu", "text", None, 2.0),  # waits for a human
            QuestionResult("pick", "choice", 0.0, 1.0),
        ]),
        stored("carol", [QuestionResult("linear", "code", 1 / 3, 3.0)]),
    ]
    out = export_csv(SPEC, rows, tmp_path / "hw1.csv")

    columns, records = read(out)
    assert columns == ["student_id", "linear", "why_relu", "pick", "score", "max_score", "status"]
    assert records[0] == {"student_id": "alice", "linear": "0.3", "why_relu": "2", "pick": "1",
                          "score": "3.3", "max_score": "6", "status": "graded"}
    assert records[1] == {"student_id": "bob", "linear": "2.5", "why_relu": "", "pick": "0",
                          "score": "2.5", "max_score": "6", "status": "graded"}
    assert records[2]["linear"] == "0.3333"
    assert records[2]["why_relu"] == records[2]["pick"] == ""


def test_error_and_timeout_rows(tmp_path: Path) -> None:
    rows = [
        stored("dave", [
            QuestionResult("linear", "code", 0.0, 3.0),
            QuestionResult("why_relu", "text", 0.0, 2.0),
            QuestionResult("pick", "choice", 0.0, 1.0),
        ], status=Status.TIMEOUT),
        stored("erin", [], status=Status.ERROR, max_score=5.0),
    ]
    _, records = read(export_csv(SPEC, rows, tmp_path / "hw1.csv"))
    assert records[0] == {"student_id": "dave", "linear": "0", "why_relu": "0", "pick": "0",
                          "score": "0", "max_score": "6", "status": "timeout"}
    assert records[1] == {"student_id": "erin", "linear": "", "why_relu": "", "pick": "",
                          "score": "0", "max_score": "5", "status": "error"}


def test_plain_newlines_and_utf8(tmp_path: Path) -> None:
    out = export_csv(SPEC, [stored("zoë", []), stored("émile", [])], tmp_path / "hw1.csv")
    data = out.read_bytes()
    assert b"\r" not in data
    assert data.decode("utf-8").splitlines()[1].startswith("zoë,")


def test_ids_never_become_spreadsheet_formulas(tmp_path: Path) -> None:
    _, records = read(export_csv(SPEC, [stored("=HYPERLINK(1)", [])], tmp_path / "x.csv"))
    assert records[0]["student_id"] == "'=HYPERLINK(1)"


def test_creates_folder_and_replaces_atomically(tmp_path: Path) -> None:
    out = tmp_path / "exports" / "hw1.csv"
    export_csv(SPEC, [stored("alice", [])], out)
    export_csv(SPEC, [stored("bob", [])], out)
    _, records = read(out)
    assert [r["student_id"] for r in records] == ["bob"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["hw1.csv"]  # no temp files left


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "hw1.csv"
    export_csv(SPEC, [stored("alice", [])], out)
    before = out.read_bytes()

    def broken_row(*args: object) -> list[str]:
        raise RuntimeError("crash while writing")

    monkeypatch.setattr(export_module, "_csv_row", broken_row)
    with pytest.raises(RuntimeError):
        export_csv(SPEC, [stored("bob", [])], out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["hw1.csv"]


def test_formats_registry() -> None:
    assert FORMATS["csv"] is export_csv
