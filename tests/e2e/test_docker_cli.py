"""The example class graded through the CLI in Docker and locally: the same grades.

Two copies of the example course's perceptron assignment and sample class are graded,
one with `--sandbox docker`, one with `--sandbox local` (both `--jobs 2`); their CSV
exports must agree row for row. The wall times of both runs are printed (run pytest
with -s to see them) to quote the Docker sandbox's overhead per submission.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.attempts import note

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("assignments/perceptron", "reference_solutions/perceptron", "examples/perceptron")

pytestmark = pytest.mark.slow


def autograder(*args: str, course: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args, "--course", str(course)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "COLUMNS": "400"},  # one line per summary sentence
    )


def copy_course(root: Path) -> Path:
    for part in PARTS:
        shutil.copytree(ROOT / part, root / part)
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def grade_and_export(root: Path, sandbox: str) -> tuple[list[dict[str, str]], str, float]:
    started = time.monotonic()
    done = autograder(
        "grade",
        "perceptron",
        str(root / "examples/perceptron"),
        "--sandbox",
        sandbox,
        "--jobs",
        "2",
        course=root,
    )
    wall = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr  # some samples are broken on purpose
    out = root / "grades.csv"
    exported = autograder("export", "perceptron", "--out", str(out), course=root)
    assert exported.returncode == 0, exported.stderr
    return read_csv(out), done.stdout, wall


@pytest.fixture(scope="module")
def graded(
    needs_docker: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[list[dict[str, str]], str, float, Path]]:
    runs = {}
    for sandbox in ("docker", "local"):
        root = copy_course(tmp_path_factory.mktemp(f"course-{sandbox}"))
        rows, stdout, wall = grade_and_export(root, sandbox)
        runs[sandbox] = (rows, stdout, wall, root)
    count = len(runs["local"][0])
    docker_wall, local_wall = runs["docker"][2], runs["local"][2]
    print(
        f"\nexample class ({count} submissions, --jobs 2): "
        f"docker {docker_wall:.1f} s, local {local_wall:.1f} s wall; "
        f"docker overhead {(docker_wall - local_wall) / count:+.2f} s per submission"
    )
    for sandbox, (_, stdout, _, _) in runs.items():
        median = re.search(r"Median time per submission ([0-9.]+) s", stdout)
        print(f"{sandbox}: median time per submission {median.group(1) if median else '?'} s")
    return runs


def test_docker_and_local_sandboxes_give_the_same_grades(
    graded: dict[str, tuple[list[dict[str, str]], str, float, Path]],
) -> None:
    docker_rows, local_rows = graded["docker"][0], graded["local"][0]
    assert len(local_rows) == len(list((ROOT / "examples/perceptron").iterdir()))
    by_student = {r["student_id"]: r for r in local_rows}
    assert {r["student_id"] for r in docker_rows} == set(by_student)
    differences = {
        row["student_id"]: {
            column: (value, by_student[row["student_id"]][column])
            for column, value in row.items()
            if value != by_student[row["student_id"]][column]
        }
        for row in docker_rows
        if row != by_student[row["student_id"]]
    }
    notes = [
        note(graded[sandbox][3], "perceptron", student)
        for student in differences
        for sandbox in ("docker", "local")
    ]
    assert differences == {}, (
        f"docker vs local (column: (docker, local)): {differences}; gradebooks (docker, then "
        f"local): {notes}"
    )
    # Not a trivially equal pair of failures: the class has full, partial and broken work.
    statuses = {r["status"] for r in local_rows}
    scores = {float(r["score"]) for r in local_rows if r["score"]}
    assert "graded" in statuses and len(statuses) > 1 and len(scores) > 2, local_rows


def test_each_run_says_which_sandbox_it_used(
    graded: dict[str, tuple[list[dict[str, str]], str, float, Path]],
) -> None:
    for sandbox in ("docker", "local"):
        stdout = graded[sandbox][1]
        assert f"Sandbox: {sandbox} (" in stdout, stdout


def test_auto_uses_docker_when_the_image_exists(
    graded: dict[str, tuple[list[dict[str, str]], str, float, Path]],
) -> None:
    root = graded["local"][3]  # graded locally: one submission is graded again with auto
    done = autograder(
        "grade",
        "perceptron",
        str(root / "examples/perceptron/alice.ipynb"),
        "--sandbox",
        "auto",
        "--regrade",
        course=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Sandbox: docker (" in done.stdout, done.stdout
    assert "1 graded now" in done.stdout, done.stdout
    with sqlite3.connect(root / "gradebook.db") as db:
        used = {row[0] for row in db.execute("SELECT sandbox FROM attempts")}
    assert used == {"docker", "local"}, used
