"""`grade --backend ray` on a real two-node cluster: a grader crash, a killed driver.

The cluster (head + one node, one CPU each, on this machine) outlives both tests; neither
kills a node (tests/ray/test_node_loss.py does, on a cluster of its own).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder import scaffold
from tests.conftest import INTERNAL_ERROR_HOOK
from tests.ray.clusters import (
    RayCluster,
    attempts,
    cli_env,
    grade_command,
    graded_count,
    grader_actors,
    run_grade,
    wait_until,
)

pytestmark = pytest.mark.slow

# An instructor's hidden test that kills the grader's own process (as a segfault in the
# trusted side would) for one notebook. Student code cannot do this: it runs in a sandbox.
CRASHING_TEST = '''

def test_relu_grader_survives(student, reference):
    """the grader survives this notebook"""
    import os
    import signal

    try:
        crash = student.CRASH_THE_GRADER
    except Exception:
        crash = False
    if crash:
        os.kill(os.getpid(), signal.SIGKILL)
'''


def hello_class(root: Path, students: dict[str, tuple[str, str]]) -> tuple[Path, Path]:
    """The `hello` course of `autograder init`, and a class: student -> (relu body, extra)."""
    course = scaffold.create_course(root / "course")
    reference = nbformat.read(course / "reference_solutions/hello/hello.ipynb", as_version=4)
    folder = root / "class"
    folder.mkdir()
    for student, (body, extra) in students.items():
        nb = nbformat.from_dict(reference)
        nb.cells[2].source = f"def relu(x):\n    # {student}\n    {body}\n{extra}"
        nbformat.write(nb, folder / f"{student}.ipynb")
    return course, folder


def test_a_grader_crash_is_an_error_not_retried_forever(
    two_nodes: RayCluster, tmp_path: Path
) -> None:
    course, folder = hello_class(
        tmp_path,
        {
            "ok": ("return torch.clamp(x, min=0)", ""),
            "wrong": ("return x", ""),
            "crasher": ("return torch.clamp(x, min=0)", "CRASH_THE_GRADER = True"),
        },
    )
    with (course / "assignments/hello/hidden_tests/test_hello.py").open("a") as f:
        f.write(CRASHING_TEST)
    # Through the Ray client (ray://), as a driver off the cluster would connect.
    address = f"ray://127.0.0.1:{two_nodes.client_port}"
    options = ("--sandbox", "local", "--backend", "ray", "--address", address, "--jobs", "2")
    done = run_grade(course, "hello", [folder], *options)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # one submission could not be graded
    book = attempts(course / "gradebook.db")
    assert {s: n for s, (n, _, _) in book.items()} == {"ok": 1, "wrong": 1, "crasher": 1}
    # Each grader grades one submission at a time: a crash is charged to its own only.
    assert book["ok"][2] == 3.0 and book["crasher"][2] == 0.0
    assert 0 < book["wrong"][2] < 3.0
    assert "crashed on this submission twice" in done.stdout, out
    assert "the grader's worker process died 2 time(s) grading crasher" in done.stdout, out
    assert "was lost" not in done.stdout, "a crash on a live node is not a lost node"
    assert two_nodes.alive_nodes() == 2
    wait_until(lambda: not grader_actors(two_nodes), 30, "the graders to end")


def test_an_internal_error_gets_a_second_try_on_a_fresh_grader(
    two_nodes: RayCluster, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    relu = "return torch.clamp(x, min=0)"
    course, folder = hello_class(
        tmp_path,
        {
            "ok": (relu, ""),
            "once": (relu, "INTERNAL_ERROR = 'once'\nSTUDENT = 'once'"),
            "always": (relu, "INTERNAL_ERROR = 'always'\nSTUDENT = 'always'"),
        },
    )
    hook = INTERNAL_ERROR_HOOK.format(marker=str(markers))
    (course / "assignments/hello/hidden_tests/test_error_hook.py").write_text(hook)
    address = f"ray://127.0.0.1:{two_nodes.client_port}"
    options = ("--sandbox", "local", "--backend", "ray", "--address", address, "--jobs", "2")
    done = run_grade(course, "hello", [folder], *options)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # "always" failed twice
    book = attempts(course / "gradebook.db")
    assert book == {"ok": (1, 1, 3.0), "once": (1, 1, 3.0), "always": (1, 1, 0.0)}, out
    assert "once: graded on a second try after an internal error (RuntimeError" in out, out
    assert sorted(p.name for p in markers.iterdir()) == ["always", "once"]
    wait_until(lambda: not grader_actors(two_nodes), 30, "the graders to end")


def test_a_killed_driver_resumes_and_grades_nothing_twice(two_nodes: RayCluster, tmp_path: Path):
    students = {
        f"s{i:02d}": (
            "return x" if i % 3 == 0 else "return torch.clamp(x, min=0)",
            "import time; time.sleep(0.5)",  # slow enough for the kill to land mid-batch
        )
        for i in range(14)
    }
    course, folder = hello_class(tmp_path, students)
    gradebook = course / "gradebook.db"
    options = ("--sandbox", "local", "--backend", "ray", "--address", two_nodes.address)
    options += ("--jobs", "2")
    driver = subprocess.Popen(
        grade_command(course, "hello", [folder], *options),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
        start_new_session=True,
    )
    try:
        wait_until(lambda: graded_count(gradebook) >= 3, 180, "3 committed results")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver only: the graders live in Ray
        driver.wait()
    before = graded_count(gradebook)
    assert before < len(students), "the batch finished before the kill; make it longer"
    # Ray ends the actors of a driver that died, sandboxes included.
    wait_until(lambda: not grader_actors(two_nodes), 60, "the dead driver's graders to end")

    again = run_grade(course, "hello", [folder], *options)
    assert again.returncode == 0, again.stdout + again.stderr
    left = len(students) - before
    assert f"{left} graded now, {before} unchanged" in again.stdout, again.stdout
    book = attempts(gradebook)
    assert sorted(book) == sorted(students)
    assert all(n == 1 and current == 1 for n, current, _ in book.values()), book
    for student, (_, _, score) in book.items():
        full = students[student][0] != "return x"
        assert (score == 3.0) is full, (student, score)
    wait_until(lambda: not grader_actors(two_nodes), 30, "the graders to end")


SNOOP = r"""
import os
import re
found, walked = [], 0
for top, dirs, files in os.walk("/"):
    if top == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    walked += 1
    for name in dirs + files:
        if name.startswith("autograder-ray-") or name in ("test_hello.py", "assignment.toml"):
            found.append(os.path.join(top, name))
print("WALKED", walked, "FOUND", found)
"""


def test_a_sandbox_on_a_node_sees_nothing_of_the_course(
    two_nodes: RayCluster, needs_bwrap: None, tmp_path: Path
) -> None:
    course, folder = hello_class(tmp_path, {"snoop": ("return torch.clamp(x, min=0)", SNOOP)})
    options = ("--sandbox", "local", "--backend", "ray", "--address", two_nodes.address)
    done = run_grade(course, "hello", [folder], *options)
    assert done.returncode == 0, done.stdout + done.stderr
    db = sqlite3.connect(course / "gradebook.db")
    (stdout,) = db.execute("SELECT stdout FROM attempts WHERE student_id = 'snoop'").fetchone()
    db.close()
    walked = re.search(r"WALKED (\d+) FOUND (.*)", stdout)
    assert walked, stdout
    # The node's copy of the assignment (hidden tests, reference) exists while it grades,
    # but nothing of it is visible from the sandbox.
    assert int(walked.group(1)) > 100 and walked.group(2) == "[]", stdout
