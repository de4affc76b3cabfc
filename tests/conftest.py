"""Fixtures shared by the whole suite: isolation requirements and grading in a subprocess.

Isolation tests need bubblewrap and writable cgroups. Where the machine lacks them the
tests are skipped, except when `AUTOGRADER_REQUIRE_ISOLATION=1` (CI sets it): there a
missing isolation feature is a failure, so a broken runner cannot pass silently.

`Grader.grade` runs pytest in-process, so our tests never call it from inside pytest:
`grade_notebooks` runs a fresh interpreter that grades a batch with one `Grader` (in
order, so one notebook can be checked not to affect the next) and returns plain dicts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.sandbox.local import bwrap_works, cgroups_work

REQUIRE_ISOLATION_ENV = "AUTOGRADER_REQUIRE_ISOLATION"
GRADE_TIMEOUT_S = 900


def require_isolation(available: bool, what: str) -> None:
    """Skip the calling test when `what` is not available here; fail instead in CI."""
    if available:
        return
    message = f"{what} is not available on this machine"
    if os.environ.get(REQUIRE_ISOLATION_ENV) == "1":
        pytest.fail(f"{message}, but {REQUIRE_ISOLATION_ENV}=1 requires it", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def needs_bwrap() -> None:
    require_isolation(bwrap_works(), "bubblewrap (user, pid, network and mount namespaces)")


@pytest.fixture
def needs_cgroups() -> None:
    require_isolation(cgroups_work(), "writable cgroups (memory and pids controllers)")


@pytest.fixture
def needs_teardown() -> None:
    """Killing a sandbox reaches daemons only through a pid namespace or a cgroup."""
    require_isolation(bwrap_works() or cgroups_work(), "bubblewrap or writable cgroups")


# --------------------------------------------------------------------------- notebooks
Cells = Sequence[str | tuple[str, str]]


def write_notebook(path: Path, cells: Cells) -> Path:
    """An nbformat v4 notebook; a cell is code, or ("markdown", text)."""
    nb_cells = []
    for cell in cells:
        if isinstance(cell, tuple):
            kind, text = cell
            assert kind == "markdown", kind
            nb_cells.append(new_markdown_cell(text))
        else:
            nb_cells.append(new_code_cell(cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=nb_cells), str(path))
    return path


# --------------------------------------------------------------------------- grading
_GRADE_SCRIPT = r"""
import dataclasses, json, sys
from pathlib import Path

from autograder.course import Course
from autograder.grader.run import Grader
from autograder.sandbox import LocalSandbox

root, name, jobs_file, out_file = sys.argv[1:5]
course = Course.at(Path(root))
grader = Grader.hidden(course.assignment(name), LocalSandbox(mask=(course.root,)))
results = {}
for student_id, path in json.loads(Path(jobs_file).read_text()):
    result = grader.grade(student_id, Path(path), "hash-" + student_id)
    data = dataclasses.asdict(result)
    data["score"] = result.score
    data["max_score"] = result.max_score
    try:  # what the gradebook needs: every string encodable as UTF-8
        json.dumps(data, ensure_ascii=False).encode("utf-8")
        data["utf8_clean"] = True
    except UnicodeEncodeError:
        data["utf8_clean"] = False
    results[student_id] = data
    # After each submission, so a crash of the grader keeps what was graded before it.
    Path(out_file).write_text(json.dumps(results))
"""

Notebooks = Mapping[str, "Cells | Path | str"]


def _materialise(course_root: Path, notebooks: Notebooks) -> list[tuple[str, str]]:
    jobs = []
    folder = course_root / "submissions"
    for student_id, spec in notebooks.items():
        if isinstance(spec, Path):
            path = spec
        elif isinstance(spec, str):  # the file's raw content
            path = folder / f"{student_id}.ipynb"
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(spec, encoding="utf-8")
        else:
            path = write_notebook(folder / f"{student_id}.ipynb", spec)
        jobs.append((student_id, str(path)))
    return jobs


def _grade_batches(
    course_root: Path,
    assignment: str,
    *batches: Notebooks,
    cwd: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Grade each batch with its own Grader in its own subprocess (batches run concurrently).

    A notebook is given as a list of cell sources (written to `<course>/submissions/`),
    a Path, or a str holding the file's raw content. Returns `{student_id: result}`,
    where a result is `dataclasses.asdict(SubmissionResult)` plus `score`, `max_score`
    and `utf8_clean`; a student whose grading never finished maps to
    `{"grader_crash": <the grader's stderr>}`.
    """
    work = Path(tempfile.mkdtemp(prefix="grade-batch-"))
    running = []
    for n, batch in enumerate(batches):
        jobs = _materialise(course_root, batch)
        jobs_file, out_file = work / f"jobs{n}.json", work / f"out{n}.json"
        jobs_file.write_text(json.dumps(jobs))
        command = [
            sys.executable,
            "-c",
            _GRADE_SCRIPT,
            str(course_root),
            assignment,
            str(jobs_file),
            str(out_file),
        ]
        # stderr to a file: a pipe left unread while we wait on another batch could fill up.
        with open(work / f"err{n}.txt", "wb") as err:
            proc = subprocess.Popen(command, cwd=cwd or work, stdout=subprocess.DEVNULL, stderr=err)
        running.append((proc, jobs, out_file))
    results: dict[str, dict[str, Any]] = {}
    try:
        for n, (proc, jobs, out_file) in enumerate(running):
            try:
                proc.wait(timeout=GRADE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            graded = json.loads(out_file.read_text()) if out_file.exists() else {}
            err = (work / f"err{n}.txt").read_text(errors="replace")[-3000:]
            crash = f"grader exited with {proc.returncode}: {err}"
            for student_id, _ in jobs:
                results[student_id] = graded.get(student_id, {"grader_crash": crash})
    finally:
        for proc, _, _ in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return results


@pytest.fixture(scope="session")
def grade_notebooks() -> Callable[..., dict[str, dict[str, Any]]]:
    """`grade_notebooks(course_root, assignment, notebooks, *more_batches, cwd=None)`."""
    return _grade_batches
