"""The Ray backend's parts that need no cluster: the missing extra, options, shipping files,
and the outcome contract both backends share. None of these imports Ray."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest

from autograder import grade, scaffold
from autograder.backends import WorkerCrashed, ray_node
from autograder.backends import ray as ray_backend
from autograder.course import Course
from autograder.errors import AutograderError, CourseError, SandboxError
from autograder.results import Status, SubmissionResult
from autograder.submissions import Submission
from tests.ray.clusters import cli_env, free_port, require_ray

INSTALL = "pip install 'autograder[ray]'"
NO_RAY = "import sys; sys.modules['ray'] = None  # `import ray` raises ImportError\n"


@pytest.fixture
def course(tmp_path: Path) -> Course:
    return Course.at(scaffold.create_course(tmp_path / "course"))


@pytest.fixture
def without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)


@pytest.fixture
def fake_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """An importable `ray` for option checks that never reach the cluster."""
    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))


def test_the_package_imports_without_ray() -> None:
    code = NO_RAY + "import autograder.cli, autograder.grade, autograder.backends.ray; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_grade_with_ray_backend_but_no_ray_says_how_to_install(
    course: Course, without_ray: None
) -> None:
    with pytest.raises(AutograderError, match=r"pip install 'autograder\[ray\]'"):
        grade.grade(course, "hello", [course.root], backend="ray")
    assert not course.gradebook.exists(), "it must stop before touching the gradebook"


def test_cli_backend_ray_without_ray_exits_with_usage_error(course: Course) -> None:
    code = NO_RAY + "from autograder.cli import main; main()"
    argv = ["grade", "hello", str(course.root), "--course", str(course.root), "--backend", "ray"]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert INSTALL in done.stderr, done.stderr


def test_without_ray_the_local_backend_is_unchanged(
    course: Course, without_ray: None, tmp_path: Path
) -> None:
    # The local path never imports Ray: a batch (here one file that is not a notebook,
    # settled without starting workers) goes through the gradebook as before.
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "bob.py").write_text("print('hi')")
    summary = grade.grade(course, "hello", [tmp_path / "subs"], sandbox="local")
    assert summary.total == 1 and summary.results[0].status is Status.ERROR
    assert "not a Jupyter notebook" in summary.results[0].message
    assert summary.notes == [] and course.gradebook.exists()


def test_an_address_nothing_listens_at_fails_fast(course: Course, tmp_path: Path) -> None:
    require_ray()
    (tmp_path / "subs").mkdir()
    shutil.copy(course.root / "assignments/hello/hello.ipynb", tmp_path / "subs/alice.ipynb")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    argv = ["grade", "hello", str(tmp_path / "subs"), "--course", str(course.root)]
    done = subprocess.run(
        [sys.executable, "-m", "autograder", *argv, "--backend", "ray", "--address", address],
        capture_output=True,
        text=True,
        env=cli_env(),
        check=False,
        timeout=120,  # Ray itself would keep trying for minutes
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"cannot reach the Ray cluster at {address} (Connection refused)" in done.stderr


def test_unknown_backend_is_refused(course: Course) -> None:
    with pytest.raises(AutograderError, match="choose one of: local, ray"):
        grade.grade(course, "hello", [course.root], backend="spark")


def test_gpus_on_ray_are_all_or_none_and_per_gpu_is_a_share(fake_ray: None) -> None:
    with pytest.raises(AutograderError, match="use --gpus all"):
        ray_backend.RayBackend(None, 2, "0,2", 1)
    assert ray_backend.RayBackend(None, 4, "all", 2).gpu_share == 0.5
    assert ray_backend.RayBackend(None, 4, "all", 1).gpu_share == 1.0
    assert ray_backend.RayBackend(None, 1).gpu_share == 0.0


def test_pack_ships_the_assignment_and_its_reference_only(course: Course, tmp_path: Path) -> None:
    root = course.root
    (root / "assignments/hello/hidden_tests/__pycache__").mkdir()
    (root / "assignments/hello/hidden_tests/__pycache__/x.pyc").write_bytes(b"junk")
    (root / "gradebook.db").write_bytes(b"grades")
    (root / "roster.csv").write_text("id\nalice\n")
    other = root / "assignments/other"
    other.mkdir()
    (other / "secret.txt").write_text("another assignment")
    (root / "submissions").mkdir(exist_ok=True)
    (root / "submissions/alice.ipynb").write_text("{}")

    bundle = ray_node.pack(course.assignment("hello"))
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        names = tar.getnames()
    assert names and all(
        n.startswith(("assignments/hello", "reference_solutions/hello")) for n in names
    ), names
    assert not any("__pycache__" in n for n in names)

    node = tmp_path / "node"
    ray_node.unpack(bundle, node)
    unpacked = Course.at(node).assignment("hello")
    original = course.assignment("hello")
    assert unpacked.spec == original.spec
    for folder in ("hidden_tests", "public_tests"):
        for f in (original.folder / folder).glob("*.py"):
            assert (unpacked.folder / folder / f.name).read_bytes() == f.read_bytes()
    assert sorted(p.name for p in unpacked.reference_folder.iterdir()) == sorted(
        p.name for p in original.reference_folder.iterdir()
    )


@pytest.mark.parametrize("name", ["../escape.txt", "link"])
def test_unpack_refuses_what_would_land_outside_its_folder(tmp_path: Path, name: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        if name == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    dest = tmp_path / "node" / "course"
    with pytest.raises(tarfile.TarError):
        ray_node.unpack(buffer.getvalue(), dest)
    assert not (tmp_path / "node" / "escape.txt").exists()


def test_unpack_keeps_absolute_names_inside_its_folder(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    outside = tmp_path / "outside.txt"
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(str(outside))
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    dest = tmp_path / "node"
    ray_node.unpack(buffer.getvalue(), dest)
    assert not outside.exists()
    assert (dest / str(outside).lstrip("/")).read_bytes() == b"bad"


def test_a_submission_is_written_under_its_file_name_never_a_path() -> None:
    assert ray_node._file_name("alice.ipynb") == "alice.ipynb"
    assert ray_node._file_name("../../etc/alice.ipynb") == "alice.ipynb"
    assert ray_node._file_name("..") == "submission.ipynb"


def test_exceptions_that_do_not_pickle_cross_as_their_message() -> None:
    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:  # pickling loses b: unpickling fails
            super().__init__(a)

    crossed = ray_node._portable(Odd(1, 2))
    assert isinstance(crossed, RuntimeError) and "Odd" in str(crossed)
    plain = SandboxError("the sandbox broke")
    assert ray_node._portable(plain) is plain


# --------------------------------------------------------------------------- shared contract
def _sub(tmp_path: Path) -> Submission:
    return Submission("alice", tmp_path / "alice.ipynb", "hash")


def test_outcomes_become_results_or_stop_the_batch(course: Course, tmp_path: Path) -> None:
    spec = course.assignment("hello").spec
    sub = _sub(tmp_path)
    ok = SubmissionResult("alice", str(sub.path), "hash", Status.GRADED)
    assert grade._outcome_result(spec, sub, "local", ok) is ok

    crashed = grade._outcome_result(spec, sub, "local", WorkerCrashed())
    assert crashed.status is Status.ERROR and "crashed on this submission twice" in crashed.message
    assert crashed.score == 0 and len(crashed.questions) == len(spec.questions)

    internal = grade._outcome_result(spec, sub, "local", KeyError("x"))
    assert internal.status is Status.ERROR and "internal error" in internal.message

    for broken in (CourseError("no answer key"), SandboxError("no docker")):
        with pytest.raises(type(broken), match=r"while grading .*alice\.ipynb"):
            grade._outcome_result(spec, sub, "local", broken)
