"""A term in miniature, through the CLI: grade with a late policy, grade free text by hand,
resubmit (manual scores carried over), override, read the history, report and export."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.scaffold import create_course

EXTRA_SPEC = """
[[questions]]
id = "why"
kind = "text"
points = 2
title = "Why is ReLU cheap to compute?"

[deadline]
due = 2025-03-14T23:59:00+00:00
grace_minutes = 10
percent_per_day = 10
cutoff = 2025-03-20T23:59:00+00:00

[feedback]
show_answers = "always"
"""
pytestmark = pytest.mark.slow  # grades real notebooks in sandboxes, twice

RELU = "import torch\ndef relu(x):\n    return torch.clamp(x, min=0)"
WHY = "It is a single comparison with zero: max(x, 0)."


def when(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def notebook(path: Path, cells: list[str], mtime: str) -> None:
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), str(path))
    os.utime(path, (when(mtime), when(mtime)))


def cli(*args: str, course: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args, "--course", str(course)],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    key = "student_id" if "student_id" in rows[0] else "student"
    return {row[key]: row for row in rows}


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = create_course(tmp_path_factory.mktemp("term") / "course")
    spec = root / "assignments" / "hello" / "assignment.toml"
    spec.write_text(spec.read_text() + EXTRA_SPEC)
    subs = root / "submissions"
    notebook(subs / "ada.ipynb", [RELU, 'answer_relu_range = "b"', f"answer_why = {WHY!r}"],
             "2025-03-14T20:00:00")
    notebook(subs / "bea.ipynb", [RELU, 'answer_relu_range = "b"',
                                  "answer_why = 'a single comparison with 0, max(x,0)'"],
             "2025-03-16T12:00:00")  # 1 d 12 h late: 2 started days, 20%
    notebook(subs / "cy.ipynb", [RELU, 'answer_relu_range = "a"'], "2025-03-21T08:00:00")
    notebook(subs / "dee.ipynb", [RELU, "loss = 1 / 0", 'answer_relu_range = "b"',
                                  "answer_why = 'no idea'"], "2025-03-15T00:05:00")  # grace
    done = cli("grade", "hello", str(subs), "--sandbox", "local", "--jobs", "2", course=root)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def test_late_policy_and_pending_in_the_export(course: Path) -> None:
    assert cli("export", "hello", course=course).returncode == 0
    rows = read_csv(course / "exports" / "hello.csv")
    assert {s: r["status"] for s, r in rows.items()} == {
        "ada": "pending", "bea": "pending", "cy": "graded", "dee": "pending"}
    assert rows["ada"]["submitted_at"] == "2025-03-14T20:00:00+00:00"
    assert (rows["bea"]["score"], rows["bea"]["penalty_percent"], rows["bea"]["final_score"]) \
        == ("3", "20", "2.4")
    assert (rows["cy"]["penalty_percent"], rows["cy"]["final_score"]) == ("100", "0")
    assert (rows["dee"]["late_minutes"], rows["dee"]["penalty_percent"]) == ("6", "0")


def test_manual_grading_then_a_resubmission(course: Path) -> None:
    sheet = course / "sheet.csv"
    done = cli("manual", "hello", "export", "--out", str(sheet), course=course)
    assert done.returncode == 0, done.stderr
    rows = read_csv(sheet)
    assert set(rows) == {"ada", "bea", "dee"}  # cy left it blank: 0 without a human
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(next(iter(rows.values()))))
        writer.writeheader()
        for student, row in rows.items():
            row["points"] = {"ada": "2", "bea": "1.5", "dee": "0"}[student]
            row["comment"] = "see the lecture notes" if student == "dee" else ""
            writer.writerow(row)
    done = cli("manual", "hello", "import", str(sheet), "--grader", "ta-kim", course=course)
    assert done.returncode == 0, done.stderr
    assert "3 score(s) changed" in done.stdout and "0 submission(s) still wait" in done.stdout
    assert cli("export", "hello", course=course).returncode == 0
    rows = read_csv(course / "exports" / "hello.csv")
    assert {s: r["status"] for s, r in rows.items()} == dict.fromkeys(rows, "graded")
    assert rows["bea"]["why"] == "1.5" and rows["bea"]["final_score"] == "3.6"

    # ada resubmits: new code cell, same answer; the manual score stays, the rest is regraded.
    notebook(course / "submissions" / "ada.ipynb",
             ["# resubmitted", RELU, 'answer_relu_range = "b"', f"answer_why = {WHY!r}"],
             "2025-03-14T22:00:00")
    done = cli("grade", "hello", str(course / "submissions"), "--sandbox", "local",
               course=course)
    assert done.returncode == 0 and "1 graded now" in done.stdout, done.stdout + done.stderr
    assert cli("export", "hello", course=course).returncode == 0
    ada = read_csv(course / "exports" / "hello.csv")["ada"]
    assert (ada["status"], ada["why"], ada["score"]) == ("graded", "2", "5")
    history = cli("history", "hello", "ada", course=course)
    assert history.returncode == 0, history.stderr
    for text in ("manual", "carried", "ta-kim", "answer unchanged"):
        assert text in history.stdout, history.stdout


def test_override_is_on_record(course: Path) -> None:
    done = cli("override", "hello", "cy", "relu_range", "1", "--grader", "prof",
               "--reason", "the question was ambiguous", course=course)
    assert done.returncode == 0, done.stderr
    history = cli("history", "hello", "cy", course=course)
    assert "override" in history.stdout and "the question was ambiguous" in history.stdout


def test_reports_show_penalty_answers_and_errors(course: Path) -> None:
    done = cli("report", "hello", "--no-charts", course=course)
    assert done.returncode == 0, done.stderr
    folder = course / "reports" / "hello"
    bea = (folder / "bea.md").read_text(encoding="utf-8")
    assert "Late penalty 20% (−0.9 points)" in bea and "final score **3.6**" in bea
    assert "Right answer: `b`" in bea  # show_answers = "always"
    dee = (folder / "dee.html").read_text(encoding="utf-8")
    assert "ZeroDivisionError" in dee and "loss = 1 / 0" in dee
    assert "see the lecture notes" in dee and "Feedback from ta-kim" in dee
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert "2 submission(s) penalised" in summary  # bea (20%) and cy (after the cutoff)
