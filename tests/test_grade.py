"""The batch verb's pure parts: GPU slots and sandbox choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder import grade
from autograder.course import Course
from autograder.errors import AutograderError
from autograder.sandbox import docker as docker_sandbox
from autograder.sandbox.warm import WarmSandbox


def test_gpu_slots_repeat_each_gpu_per_gpu_times() -> None:
    assert grade.gpu_slots(None, 3) == []
    assert grade.gpu_slots("0,2", 2) == ["0", "0", "2", "2"]
    uuid = "MIG-4f2c1b9e-0000-1111-2222-333344445555"
    assert grade.gpu_slots(uuid, 1) == [uuid]


def test_gpu_slots_all_needs_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        stdout = "GPU 0: A (UUID: x)\nGPU 1: B (UUID: y)\n"

    monkeypatch.setattr(grade.subprocess, "run", lambda *a, **k: Done())
    assert grade.gpu_slots("all", 2) == ["0", "0", "1", "1"]
    Done.stdout = ""
    with pytest.raises(AutograderError, match="lists no GPU"):
        grade.gpu_slots("all", 1)


def test_unknown_sandbox_is_refused() -> None:
    with pytest.raises(AutograderError, match="choose one of: auto, local, docker"):
        grade.resolve_sandbox("vm")


def test_auto_falls_back_to_local_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_daemon() -> None:
        raise docker_sandbox.DockerUnavailable("no daemon")

    monkeypatch.setattr(docker_sandbox, "client", no_daemon)
    assert grade.resolve_sandbox("auto") == "local"
    assert grade.resolve_sandbox("local") == "local"
    assert grade.resolve_sandbox("docker") == "docker"


def test_docker_is_warm_unless_told_otherwise(tmp_path: Path) -> None:
    course = Course(tmp_path)
    box = grade.make_sandbox("docker", course)
    assert isinstance(box, WarmSandbox) and isinstance(box.base, docker_sandbox.DockerSandbox)
    assert box.name == "docker"  # what results and the gradebook record
    assert isinstance(
        grade.make_sandbox("docker", course, warm=False), docker_sandbox.DockerSandbox
    )
    # The batch process starts spare zygotes for local sandboxes only: a worker adopts a
    # spare's descriptors, which a container's zygote has none of.
    pools = grade._Pools(None, course, None, grade.WorkerOptions("docker"), [])  # type: ignore[arg-type]
    assert pools.spare_zygotes(2) is None
