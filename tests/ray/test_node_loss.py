"""A node of the cluster killed mid-batch: its submissions are graded elsewhere, nothing is
lost or graded twice, and the scores are those of the single-machine backend."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ray.clusters import (
    RayCluster,
    attempts,
    cli_env,
    grade_command,
    graded_count,
    grader_actors,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
# The scores the single-machine backend gives the example class (tests/e2e/test_cli.py).
EXPECTED = json.loads((ROOT / "tests/e2e/perceptron_expected.json").read_text())


def example_course(root: Path) -> Path:
    for part in ("assignments/perceptron", "reference_solutions/perceptron", "examples/perceptron"):
        shutil.copytree(ROOT / part, root / part)
    return root


def exported(course: Path) -> dict[str, dict[str, str]]:
    out = course / "grades.csv"
    command = ["export", "perceptron", "--out", str(out), "--course", str(course)]
    done = subprocess.run(
        [sys.executable, "-m", "autograder", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with out.open(newline="", encoding="utf-8") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_a_node_killed_mid_batch_loses_nothing_and_scores_match(
    fresh_two_nodes: RayCluster, tmp_path: Path
) -> None:
    cluster = fresh_two_nodes
    course = example_course(tmp_path / "course")
    gradebook = course / "gradebook.db"
    options = ("--sandbox", "local", "--backend", "ray", "--address", cluster.address)
    command = grade_command(course, "perceptron", [course / "examples/perceptron"], *options)
    started = time.monotonic()
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        driver = subprocess.Popen(
            [*command, "--jobs", "2"], stdout=out, stderr=err, env=cli_env(), text=True
        )
    try:
        # gina.py is settled before grading starts; wait for 3 graded by the cluster.
        deadline = time.monotonic() + 300
        while graded_count(gradebook) < 4 and driver.poll() is None:
            assert time.monotonic() < deadline, "no results from the cluster"
            time.sleep(0.1)
        assert driver.poll() is None, "the batch ended before the kill"
        cluster.kill_node(1)  # the second node: its raylet, object store, grader, sandboxes
        killed = time.monotonic()
        code = driver.wait(timeout=600)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    ended = time.monotonic()
    stdout = (tmp_path / "out.txt").read_text()
    stderr = (tmp_path / "err.txt").read_text()
    assert code == 1, stdout + stderr  # the example class has broken files on purpose

    lost = re.search(r"was lost while grading: (\d+) submission\(s\) sent to another", stdout)
    assert lost and int(lost.group(1)) >= 1, stdout
    book = attempts(gradebook)
    students = {k for k in EXPECTED if not k.startswith("_")}
    assert set(book) == students
    assert all(n == 1 and current == 1 for n, current, _ in book.values()), book

    rows = exported(course)
    for student, want in EXPECTED.items():
        if student.startswith("_"):
            continue
        row = rows[student]
        assert row["status"] == want["status"], (student, row)
        for qid, points in want["questions"].items():
            assert float(row[qid]) == pytest.approx(points), (student, qid, row)

    # No grader is left: the head's ended with the batch, the other died with its node.
    # Ray kills actors asynchronously, so their processes may outlive the driver briefly.
    wait_until(lambda: not grader_actors(cluster), 60, "the graders to end")
    print(
        f"\nnode killed {killed - started:.1f} s into the batch, batch done "
        f"{ended - killed:.1f} s later: {stdout[lost.start() :].splitlines()[0]}"
    )
