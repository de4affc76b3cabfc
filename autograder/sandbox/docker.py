"""The Docker sandbox: a container per submission run, or per worker in the warm pool.

The container runs the same student runtime as the local sandbox, from an image that
holds only the runtime and what student code may import (see docker/ and `image`).
It has no network, a read-only root, a size-capped tmpfs /tmp, a non-root user, no
capabilities, no-new-privileges, memory (swap equal to it), CPU, pids, nofile and fsize
limits. The grader talks to it over a Unix socket in a host folder mounted read-only.
Containers carry a label with the grading process's id; `kill` removes them, and a new
sandbox removes those a killed grader left behind. Started with `mode="zygote"`, the
container's runtime is the warm zygote of `warm.WarmSandbox`: one container per worker, a
forked runtime per submission, everything of a submission killed and wiped before the next.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.sandbox import cgroups
from autograder.sandbox.base import (
    BOOT,
    RUNTIME_MOUNT,
    RUNTIME_PACKAGE,
    LaunchConfig,
    pid_alive,
    runtime_env,
)

try:  # the Docker SDK is only needed for this sandbox
    import docker.errors
    import docker.types

    import docker
except ImportError:  # pragma: no cover - docker is a declared dependency
    docker = None  # type: ignore[assignment]

IMAGE_REPOSITORY = "autograder-sandbox"
LABEL = "io.autograder.sandbox"
OWNER_LABEL = "io.autograder.owner"
SOCKET_DIR = "/run/autograder"
PYTHON = "/opt/venv/bin/python"
CONNECT_TIMEOUT = 120.0


class DockerUnavailable(Exception):
    """No Docker daemon answers, or the sandbox image is missing; the message says why."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def client() -> Any:
    if docker is None:
        raise DockerUnavailable("the Docker SDK for Python is not installed (pip install docker)")
    try:
        c = docker.from_env(timeout=60)
        c.ping()
        return c
    except Exception as exc:
        raise DockerUnavailable(
            f"no Docker daemon answers ({type(exc).__name__}); start dockerd or use --sandbox local"
        ) from None


def default_image() -> str:
    return f"{IMAGE_REPOSITORY}:latest"


def image_exists(c: Any, image: str) -> bool:
    try:
        c.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


def remove_orphans(c: Any) -> int:
    """Remove sandbox containers whose grading process on this host is gone.

    Containers of other hosts sharing the engine (graders in CI job containers that mount
    the host's socket, a remote DOCKER_HOST) are left alone: we cannot tell from here
    whether their grader is alive, and removing a live one would fail its grading.
    """
    removed = 0
    host = socket.gethostname()
    for container in c.containers.list(all=True, filters={"label": LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        owner_host, _, pid = owner.partition(":")
        if owner_host != host or (pid.isdigit() and pid_alive(int(pid))):
            continue
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
            removed += 1
    return removed


class _Drain:
    """Collects a container's demultiplexed output, keeping the first `limit` bytes of each."""

    def __init__(self, stream: Any, limit: int) -> None:
        self.limit = limit
        self.data = {0: bytearray(), 1: bytearray()}
        self.dropped = {0: 0, 1: 0}
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        try:
            with contextlib.suppress(Exception):
                for out, err in stream:
                    for key, chunk in ((0, out), (1, err)):
                        if not chunk:
                            continue
                        room = self.limit - len(self.data[key])
                        if room > 0:
                            self.data[key] += chunk[:room]
                        self.dropped[key] += max(0, len(chunk) - max(room, 0))
        finally:
            # The attach stream ends with the container; its socket to the engine is ours
            # to close (else one leaks per container until garbage collection).
            with contextlib.suppress(Exception):
                stream.close()
            with contextlib.suppress(Exception):  # the HTTP response holds the socket too
                stream._response.close()

    def text(self, key: int, wait: float) -> str:
        if wait:
            self._thread.join(wait)
        text = self.data[key].decode("utf-8", errors="replace")
        if self.dropped[key]:
            text += f"\n[... {self.dropped[key]} more bytes of output not kept]"
        return text


@dataclass
class DockerProcess:
    container: Any
    sock: socket.socket
    drain: _Drain
    config: LaunchConfig
    socket_dir: Path
    # The container's memory cgroup, as the engine made it: its peak is read when the
    # container is removed, and per submission (reset first) by the warm pool, which counts
    # OOM kills there too; never removed by us.
    group: cgroups.ControlGroup | None = None
    _exit: dict[str, Any] = field(default_factory=dict)
    _peak_mb: float | None = None
    _removed: bool = False

    def __post_init__(self) -> None:
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        with contextlib.suppress(Exception):
            self._exit.update(self.container.wait())

    def alive(self) -> bool:
        return not self._exit and not self._removed

    def kill(self) -> None:
        if self._removed:
            return
        self._removed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        self._peak_mb = self.group.peak_memory_mb() if self.group is not None else None
        with contextlib.suppress(Exception):
            self._state = self.container.attrs  # keep OOM facts for exit_reason
            self.container.reload()
            self._state = self.container.attrs
        with contextlib.suppress(Exception):
            self.container.remove(force=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def output(self) -> tuple[str, str]:
        wait = 2.0 if not self.alive() else 0.0
        return self.drain.text(0, wait), self.drain.text(1, wait)

    def exit_reason(self) -> str:
        deadline = time.monotonic() + 1.0
        while not self._exit and not self._removed and time.monotonic() < deadline:
            time.sleep(0.02)
        state: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            if not self._removed:
                self.container.reload()
            state = (getattr(self, "_state", None) or self.container.attrs).get("State", {})
        if state.get("OOMKilled"):
            return f"killed: out of memory (limit {self.config.memory_mb} MB)"
        if state.get("Running") and self._removed:
            return "killed by signal SIGKILL"  # by kill(), which removed it running
        code = self._exit.get("StatusCode", state.get("ExitCode"))
        if code is None or state.get("Running"):
            return "still running"
        # The engine reports a process killed by signal N as 128 + N.
        if code > 128 and code - 128 in signal.Signals._value2member_map_:
            return f"killed by signal {signal.Signals(code - 128).name}"
        return f"exited with status {code}"

    def peak_memory_mb(self) -> float | None:
        return self._peak_mb


def _memory_group(container_id: str) -> cgroups.ControlGroup | None:
    """The container's memory cgroup on this host (v1, or v2 with either cgroup driver)."""
    for path, version in (
        (Path(f"/sys/fs/cgroup/memory/docker/{container_id}"), 1),
        (Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"), 2),
        (Path(f"/sys/fs/cgroup/docker/{container_id}"), 2),  # v2, cgroupfs driver
    ):
        if path.is_dir():
            # No `dirs`: the engine owns the group, we never kill through it or remove it.
            return cgroups.ControlGroup(memory=path, pids=None, version=version)
    return None


class DockerSandbox:
    """Runs the student runtime in a fresh container per submission run."""

    name = "docker"

    def __init__(self, image: str | None = None) -> None:
        self.image = image or default_image()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client()
            if not image_exists(self._client, self.image):
                raise DockerUnavailable(
                    f"the sandbox image {self.image} does not exist; "
                    "build it with `autograder image build --offline`"
                )
            remove_orphans(self._client)
        return self._client

    def missing(self) -> list[str]:
        return []  # every limit is enforced by the engine; see SECURITY notes in README

    def isolation(self) -> str:
        return (
            f"docker container from {self.image} (no network, read-only root, non-root, "
            "no capabilities, cgroup memory/pids/cpu limits)"
        )

    def start(self, config: LaunchConfig, mode: str = "single") -> DockerProcess:
        """Start a runtime's container; `mode="zygote"` starts the warm runtime of
        `warm.WarmSandbox`."""
        c = self.client
        socket_dir = Path(tempfile.mkdtemp(prefix="autograder-sock-"))
        socket_dir.chmod(0o755)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = socket_dir / "sock"
        listener.bind(str(path))
        path.chmod(0o777)  # the container's uid connects; only this folder's mount reaches it
        listener.listen(1)
        try:
            options = self._options(config, socket_dir, mode)
            container = c.containers.create(self.image, **options)
        except Exception:
            listener.close()
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise
        try:
            stream = c.api.attach(
                container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True
            )
            drain = _Drain(stream, config.output_bytes)
            container.start()
            conn = self._accept(listener, container)
        except Exception:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise
        finally:
            listener.close()
        group = _memory_group(container.id)
        return DockerProcess(container, conn, drain, config, socket_dir, group)

    @staticmethod
    def _accept(listener: socket.socket, container: Any) -> socket.socket:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        listener.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
                conn.settimeout(None)
                return conn
            except TimeoutError:
                container.reload()
                if container.status not in ("created", "running"):
                    raise OSError(
                        f"the container stopped before connecting ({container.status})"
                    ) from None
        raise OSError("the container did not connect to the grader in time")

    def _options(
        self, config: LaunchConfig, socket_dir: Path, mode: str = "single"
    ) -> dict[str, Any]:
        size = config.scratch_mb * 2**20
        volumes = {str(socket_dir): {"bind": SOCKET_DIR, "mode": "ro"}}
        if config.data_dir is not None:
            volumes[str(config.data_dir)] = {"bind": "/tmp/data", "mode": "ro"}
        options: dict[str, Any] = {
            "command": [
                PYTHON,
                "-s",
                "-E",
                "-c",
                BOOT,
                str(RUNTIME_MOUNT),
                RUNTIME_PACKAGE,
                f"unix:{SOCKET_DIR}/sock",
                str(config.message_bytes),
                mode,
            ],
            "environment": {
                **runtime_env(config, home="/tmp"),
                "PATH": "/opt/venv/bin:/usr/bin:/bin",
            },
            "user": "65534:65534",
            "working_dir": "/tmp",
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={size},mode=1777"},
            "shm_size": f"{min(config.scratch_mb, 256)}m",
            "mem_limit": f"{config.memory_mb}m",
            "memswap_limit": f"{config.memory_mb}m",
            "nano_cpus": int(config.threads * 1e9),
            "pids_limit": config.max_processes,
            "ulimits": [
                docker.types.Ulimit(
                    name="nofile", soft=config.max_open_files, hard=config.max_open_files
                ),
                docker.types.Ulimit(name="fsize", soft=size, hard=size),
                docker.types.Ulimit(name="core", soft=0, hard=0),
            ],
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "hostname": "sandbox",
            "volumes": volumes,
            "labels": {LABEL: "1", OWNER_LABEL: _owner()},
            "log_config": docker.types.LogConfig(type="none"),
        }
        if mode == "zygote":
            # The zygote must be the container's PID 1 (runtime/zygote.py), whatever init
            # the engine adds by default (`"init": true` in daemon.json).
            options["init"] = False
        if config.cpu_seconds is not None:
            options["ulimits"].append(
                docker.types.Ulimit(name="cpu", soft=config.cpu_seconds, hard=config.cpu_seconds)
            )
        if config.gpu is not None:
            ids = None if config.gpu == "all" else config.gpu.split(",")
            options["device_requests"] = [
                docker.types.DeviceRequest(
                    count=-1 if ids is None else None, device_ids=ids, capabilities=[["gpu"]]
                )
            ]
            options["environment"].pop("CUDA_VISIBLE_DEVICES", None)
        return options
