"""Fixtures shared by the whole suite: isolation requirements and grading in a subprocess.

Isolation tests need bubblewrap and writable cgroups. Where the machine lacks them the
tests are skipped, except when `AUTOGRADER_REQUIRE_ISOLATION=1` (CI sets it): there a
missing isolation feature is a failure, so a broken runner cannot pass silently.
Docker tests need a daemon that answers and the sandbox image; likewise skipped where
they are missing, failed under `AUTOGRADER_REQUIRE_DOCKER=1`.

`Grader.grade` runs pytest in-process, so our tests never call it from inside pytest:
`grade_notebooks` runs a fresh interpreter that grades a batch with one `Grader` (in
order, so one notebook can be checked not to affect the next) and returns plain dicts.
`sandbox_kind` parametrises a module's batches over both sandboxes (local, docker).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.sandbox import docker as docker_sandbox
from autograder.sandbox.local import bwrap_works, cgroups_work

REQUIRE_ISOLATION_ENV = "AUTOGRADER_REQUIRE_ISOLATION"
REQUIRE_DOCKER_ENV = "AUTOGRADER_REQUIRE_DOCKER"
SANDBOXES = ("local", "docker")
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


def quiet_client() -> Any:
    """`docker_sandbox.client()`, without the warning of the SDK's failed connection.

    Where no daemon answers, the SDK leaves the socket of its failed connect unclosed; its
    ResourceWarning would surface, as an error, in whichever test collects it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return docker_sandbox.client()
        except docker_sandbox.DockerUnavailable as exc:
            message = str(exc)  # the exception's frames hold the socket: let them go
        gc.collect()
    raise docker_sandbox.DockerUnavailable(message)


@functools.cache
def docker_problem() -> str | None:
    """Why the Docker sandbox cannot run here (None: a daemon answers and the image exists)."""
    try:
        c = quiet_client()
    except docker_sandbox.DockerUnavailable as exc:
        return str(exc)
    try:
        if not docker_sandbox.image_exists(c, docker_sandbox.default_image()):
            return f"the image {docker_sandbox.default_image()} does not exist"
    finally:
        c.close()
    return None


def require_docker() -> None:
    """Skip the calling test (or fixture) without a Docker engine and image; fail in CI."""
    problem = docker_problem()
    if problem is None:
        return
    message = (
        f"no Docker daemon answers / image {docker_sandbox.default_image()} missing: "
        f"run `autograder image build --offline` ({problem})"
    )
    if os.environ.get(REQUIRE_DOCKER_ENV) == "1":
        pytest.fail(f"{message}, but {REQUIRE_DOCKER_ENV}=1 requires it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def needs_docker() -> None:
    require_docker()


@pytest.fixture(scope="module", params=SANDBOXES)
def sandbox_kind(request: pytest.FixtureRequest) -> str:
    """The sandbox a module's graded batches use; every test using it runs on both."""
    if request.param == "docker":
        request.getfixturevalue("needs_docker")
    return str(request.param)


def sandbox_containers(owner_pid: int | None = None) -> list[str]:
    """Ids of sandbox containers (all, or those of one grading process) the engine still has.

    Filtering by owner keeps the check true when other graders share the Docker engine.
    """
    labels = [docker_sandbox.LABEL]
    if owner_pid is not None:
        labels.append(f"{docker_sandbox.OWNER_LABEL}={socket.gethostname()}:{owner_pid}")
    command = ["docker", "ps", "-a", "-q", "--no-trunc"]
    for label in labels:
        command += ["--filter", f"label={label}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.split()


def host_addresses() -> list[str]:
    """Where a sandbox could reach this machine: loopback, its own address, its gateway."""
    found = ["127.0.0.1"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:  # no packet is sent: this only picks the interface of the default route
            probe.connect(("192.0.2.254", 9))
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000" and fields[2] != "00000000":
                found.append(socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little")))
    except (OSError, IndexError, ValueError):
        pass
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------- notebooks
Cells = Sequence[str | tuple[str, str]]


def hello_class(root: Path, relu_bodies: Sequence[str]) -> Path:
    """`autograder init root` plus one submission `sNN.ipynb` per body of `relu` (the last
    line of the function; extra lines may precede it with `; `)."""
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "init", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reference = nbformat.read(root / "reference_solutions/hello/hello.ipynb", as_version=4)
    (root / "submissions").mkdir(exist_ok=True)
    for i, body in enumerate(relu_bodies):
        nb = nbformat.from_dict(reference)
        nb.cells[2].source = f"def relu(x):\n    # student {i}\n    {body}"
        nbformat.write(nb, root / "submissions" / f"s{i:02d}.ipynb")
    return root


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
# A hidden test that breaks the grader's scoring for the notebook being graded (its
# `INTERNAL_ERROR` and `STUDENT` variables): the worker's `grade` raises. "once": only in
# the first worker that grades it (a file named STUDENT in the folder `marker` says so).
INTERNAL_ERROR_HOOK = """\
from pathlib import Path

import autograder.grader.run as run


def test_zz_internal_error_hook(student):
    try:
        mode = student.INTERNAL_ERROR
    except Exception:
        return
    marker = Path({marker!r}) / student.STUDENT
    if mode == "once" and marker.exists():
        return
    marker.write_text(mode)
    real = run.score_code_questions

    def broken(*args):
        run.score_code_questions = real
        raise RuntimeError("a bug in the grader")

    run.score_code_questions = broken
"""


_GRADE_SCRIPT = r"""
import dataclasses, json, os, sys
from pathlib import Path

from autograder.course import Course
from autograder.grader.run import Grader
from autograder.sandbox import LocalSandbox

root, name, jobs_file, out_file, kind = sys.argv[1:6]
course = Course.at(Path(root))
if kind == "docker":
    from autograder.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox()
else:
    sandbox = LocalSandbox(mask=(course.root,))
grader = Grader.hidden(course.assignment(name), sandbox)
results = {}
for student_id, path in json.loads(Path(jobs_file).read_text()):
    result = grader.grade(student_id, Path(path), "hash-" + student_id)
    data = dataclasses.asdict(result)
    data["score"] = result.score
    data["max_score"] = result.max_score
    data["grader_pid"] = os.getpid()  # the owner label of its docker containers
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
    sandbox: str = "local",
) -> dict[str, dict[str, Any]]:
    """Grade each batch with its own Grader in its own subprocess (batches run concurrently).

    `sandbox` is "local" (LocalSandbox masking the course) or "docker" (DockerSandbox).
    A notebook is given as a list of cell sources (written to `<course>/submissions/`),
    a Path, or a str holding the file's raw content. Returns `{student_id: result}`,
    where a result is `dataclasses.asdict(SubmissionResult)` plus `score`, `max_score`,
    `utf8_clean` and `grader_pid` (the grading process); a student whose grading never
    finished maps to `{"grader_crash": <the grader's stderr>}`.
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
            sandbox,
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
    """`grade_notebooks(course_root, assignment, notebooks, *more, cwd=None, sandbox="local")`."""
    return _grade_batches
