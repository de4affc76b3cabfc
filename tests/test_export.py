"""Exports: the CSV columns DESIGN.md fixes, numbers without float noise, atomic writes;
the roster join, the late policy columns, and what Moodle, Canvas and Gradescope expect."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from autograder import export as export_module
from autograder.export import (
    FORMATS,
    export_canvas,
    export_csv,
    export_gradescope,
    export_moodle,
)
from autograder.gradebook import StoredResult
from autograder.results import Outcome, QuestionResult, Status, SubmissionResult, TestResult
from autograder.roster import Roster, load_roster
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


# --- the roster, the late policy and the LMS formats ------------------------------------

ROSTER_CSV = """id,name,email,team,lms_id,login,section
alice,Alice Martin,alice@uni.example,t1,101,amartin,A
bob,Bob Chen,bob@uni.example,t1,102,,B
zed,Zed Null,zed@uni.example,t2,103,,B
"""


def roster(tmp_path: Path) -> Roster:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER_CSV, encoding="utf-8")
    return load_roster(path)


def late_spec() -> AssignmentSpec:
    data = SPEC.model_dump(mode="json")
    data["title"] = "Lab 1"
    data["deadline"] = {"due": "2025-03-14T23:59:00+01:00", "percent_per_day": 10}
    data["lms"] = {"canvas_assignment_id": 4242}
    return AssignmentSpec.model_validate(data)


def class_rows() -> list[StoredResult]:
    alice = stored("alice", [
        QuestionResult("linear", "code", 3.0, 3.0),
        QuestionResult("why_relu", "text", 1.5, 2.0),
        QuestionResult("pick", "choice", 1.0, 1.0),
    ])
    alice.result.submitted_at = "2025-03-15T12:00:00+00:00"
    alice.result.late_minutes = 721.0
    alice.result.penalty_percent = 10.0
    bob = stored("bob", [
        QuestionResult("linear", "code", 2.5, 3.0),
        QuestionResult("why_relu", "text", None, 2.0),
        QuestionResult("pick", "choice", 0.0, 1.0),
    ], status=Status.PENDING)
    return [alice, bob, stored("eve", [], status=Status.ERROR)]


def test_csv_with_roster_and_late_policy(tmp_path: Path) -> None:
    out = export_csv(late_spec(), class_rows(), tmp_path / "g.csv", roster(tmp_path))
    columns, records = read(out)
    assert columns == [
        "student_id", "name", "email", "team", "linear", "why_relu", "pick", "score",
        "max_score", "status", "submitted_at", "late_minutes", "penalty_percent", "final_score",
    ]
    by_id = {r["student_id"]: r for r in records}
    assert list(by_id) == ["alice", "bob", "eve", "zed"]
    assert by_id["alice"]["name"] == "Alice Martin"
    assert (by_id["alice"]["score"], by_id["alice"]["penalty_percent"],
            by_id["alice"]["final_score"]) == ("5.5", "10", "4.95")
    assert by_id["bob"]["status"] == "pending" and by_id["bob"]["why_relu"] == ""
    assert by_id["eve"]["name"] == ""  # graded, but not on the roster: kept
    assert by_id["zed"] == {
        "student_id": "zed", "name": "Zed Null", "email": "zed@uni.example", "team": "t2",
        "linear": "", "why_relu": "", "pick": "", "score": "0", "max_score": "6",
        "status": "missing", "submitted_at": "", "late_minutes": "0", "penalty_percent": "0",
        "final_score": "0",
    }


def test_moodle_import_csv(tmp_path: Path) -> None:
    out = export_moodle(late_spec(), class_rows(), tmp_path / "moodle.csv", roster(tmp_path))
    columns, records = read(out)
    # Moodle's import maps a user by "ID number" or "Email address"; every other column
    # is mapped to a grade item (or ignored) in the import form.
    assert columns == ["ID number", "Email address", "Full name", "Lab 1", "linear",
                       "why_relu", "pick", "Raw score", "Late penalty (%)", "Status"]
    alice = records[0]
    assert (alice["ID number"], alice["Email address"], alice["Lab 1"]) == (
        "alice", "alice@uni.example", "4.95")
    assert (alice["Raw score"], alice["Late penalty (%)"]) == ("5.5", "10")
    for record in records:  # numbers Moodle parses: digits and a dot, nothing else
        for key in ("Lab 1", "linear", "Raw score"):
            assert record[key] == "" or float(record[key]) >= 0
            assert "," not in record[key]
    assert records[-1]["Status"] == "missing" and records[-1]["Lab 1"] == "0"


def test_canvas_gradebook_csv(tmp_path: Path) -> None:
    out = export_canvas(late_spec(), class_rows(), tmp_path / "canvas.csv", roster(tmp_path))
    with out.open(encoding="utf-8", newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 1 (4242)"]
    assert lines[1][0].strip() == "Points Possible" and lines[1][5] == "6"
    students = {line[2]: line for line in lines[2:]}
    assert students["alice"] == ["Alice Martin", "101", "alice", "amartin", "A", "4.95"]
    assert students["bob"] == ["Bob Chen", "102", "bob", "bob@uni.example", "B", "2.5"]
    assert students["zed"][5] == "0"
    assert students["eve"][:2] == ["eve", ""]  # no roster line: the id stands in for the name


def test_canvas_without_assignment_id_uses_the_title(tmp_path: Path) -> None:
    out = export_canvas(SPEC, class_rows(), tmp_path / "canvas.csv")
    assert out.read_text(encoding="utf-8").splitlines()[0].endswith(",Section,hw1")


def test_gradescope_results_per_student(tmp_path: Path) -> None:
    rows = class_rows()
    rows[0].result.tests.append(TestResult("test_linear_big", "linear", Outcome.FAILED,
                                           "expected 1, got 2", "Big inputs"))
    out = export_gradescope(late_spec(), rows, tmp_path / "gs", roster(tmp_path))
    folders = sorted(p.name for p in out.iterdir())
    assert folders == ["alice", "bob", "eve", "zed"]
    alice = json.loads((out / "alice" / "results.json").read_text(encoding="utf-8"))
    assert alice["score"] == 4.95
    assert [t["name"] for t in alice["tests"]] == ["linear", "why_relu", "pick"]
    for test in alice["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output"}
        assert test["status"] in ("passed", "failed")
    assert alice["tests"][0] | {"output": ""} == {
        "name": "linear", "number": "1", "score": 3.0, "max_score": 3.0, "status": "passed",
        "output": "", "visibility": "visible"}
    assert "failed: Big inputs\n  expected 1, got 2" in alice["tests"][0]["output"]
    assert "late penalty 10%" in alice["output"] and "Final score: 4.95" in alice["output"]
    bob = json.loads((out / "bob" / "results.json").read_text(encoding="utf-8"))
    assert bob["tests"][1]["output"] == "waiting for manual grading"
    zed = json.loads((out / "zed" / "results.json").read_text(encoding="utf-8"))
    assert zed["score"] == 0 and zed["extra_data"]["status"] == "missing"


def test_gradescope_folders_never_escape(tmp_path: Path) -> None:
    out = export_gradescope(SPEC, [stored("../../etc", []), stored("summary", [])], tmp_path / "gs")
    names = sorted(p.name for p in out.iterdir())
    assert all("/" not in n and not n.startswith(".") for n in names)
    assert len(names) == 2
    assert not (tmp_path / "etc").exists()


def test_every_format_is_registered() -> None:
    assert set(FORMATS) == {"csv", "moodle", "canvas", "gradescope"}
