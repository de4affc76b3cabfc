"""A real Ray cluster on this machine, and the CLI, for the `--backend ray` tests.

`ray_cluster()` starts a head node and more nodes, each one `ray start --block` process in
its own process group (its raylet, object store and workers are in that group), with its
own temporary folder and explicit ports, all on 127.0.0.1 (Ray itself advertises the
machine's own address). Killing a node's group is a node failure; teardown kills every
node, so no test leaves Ray running, whatever happened. Ray itself is never imported into
the pytest process: the cluster is driven through `ray start` and the `autograder` CLI.

Without Ray installed the tests are skipped, unless `AUTOGRADER_REQUIRE_RAY=1` (CI).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_RAY_ENV = "AUTOGRADER_REQUIRE_RAY"
START_TIMEOUT_S = 120
MARKER = "AUTOGRADER_RAY_TEST"  # in the environment of our nodes and everything they start

_COUNT_NODES = """
import json, logging, sys
import ray
ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False)
print(json.dumps(sum(1 for n in ray.nodes() if n["Alive"])))
"""


def require_ray() -> None:
    """Skip the calling test without Ray; fail instead under AUTOGRADER_REQUIRE_RAY=1."""
    if importlib.util.find_spec("ray") is not None:
        return
    message = "Ray is not installed: pip install 'autograder[ray]'"
    if os.environ.get(REQUIRE_RAY_ENV) == "1":
        pytest.fail(f"{message}, but {REQUIRE_RAY_ENV}=1 requires it", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_command() -> list[str]:
    script = Path(sys.executable).parent / "ray"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]


def processes_with(marker: str) -> dict[int, str]:
    """pid -> command line of every process whose environment holds `marker`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found[int(entry.name)] = cmd.strip()
        except OSError:
            continue
    return found


def grader_actors(cluster: RayCluster) -> list[int]:
    """pids of the cluster's grader actors still running."""
    return [pid for pid, cmd in processes_with(cluster.marker).items() if "GraderActor" in cmd]


def wait_until(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RayCluster:
    """Nodes of one local Ray cluster; `address` is the head's GCS address."""

    def __init__(self) -> None:
        # Short: Ray's Unix sockets live below it, and socket paths are capped at 107 bytes.
        self.base = Path(tempfile.mkdtemp(prefix="agray-"))
        # Every process of node N has MARKER=<id>-N in its environment: Ray's workers run in
        # process groups of their own, so a node's group alone does not hold all of it.
        self.marker = f"{MARKER}={uuid.uuid4().hex}-"
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.address = ""
        self.client_port = 0

    def node_marker(self, index: int) -> str:
        return f"{self.marker}{index}\0"

    def env(self, index: int) -> dict[str, str]:
        name, value = self.node_marker(index).rstrip("\0").split("=", 1)
        env = {**os.environ, name: value, "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        return env

    def _start(self, name: str, args: list[str], cpus: int, resources: dict[str, float]) -> None:
        folder = self.base / name
        folder.mkdir()
        command = [
            *_ray_command(),
            "start",
            *args,
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={cpus}",
            "--num-gpus=0",
            f"--resources={json.dumps(resources)}",
            "--object-store-memory=200000000",
            f"--temp-dir={folder}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            "--disable-usage-stats",
            "--block",
        ]
        with open(folder / "ray-start.log", "wb") as log:
            node = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(len(self.nodes)),
                start_new_session=True,
            )
        self.nodes.append(node)

    def start_head(self, cpus: int = 1) -> None:
        port, self.client_port = free_port(), free_port()
        args = [
            "--head",
            f"--port={port}",
            f"--ray-client-server-port={self.client_port}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
        ]
        self._start("head", args, cpus, {"head": 1})
        self.address = f"127.0.0.1:{port}"
        self.wait_for(1)

    def add_node(self, cpus: int = 1) -> None:
        n = len(self.nodes)
        self._start(f"node{n}", [f"--address={self.address}"], cpus, {f"node{n}": 1})
        self.wait_for(len(self.nodes))

    def alive_nodes(self) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _COUNT_NODES, self.address],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env(0),
            check=False,
        )
        return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.poll() is not None:
                    raise RuntimeError(f"`ray start` exited with {node.returncode}: {self.logs()}")
            if self.alive_nodes() >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the cluster has not got {count} nodes: {self.logs()}")

    def kill_node(self, index: int) -> None:
        """A node failure: its raylet, object store and workers die at once (SIGKILL)."""
        node = self.nodes[index]
        workers = processes_with(self.node_marker(index))
        _kill_group(node.pid)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        node.wait()

    def logs(self) -> str:
        parts = [p.read_text(errors="replace")[-1500:] for p in self.base.glob("*/ray-start.log")]
        return " | ".join(parts)

    def stop(self) -> None:
        for node in self.nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
        # `ray start --block` of a head may not return on SIGTERM: a short grace, then SIGKILL.
        deadline = time.monotonic() + 5
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=max(0.1, deadline - time.monotonic()))
            _kill_group(node.pid)
            node.wait()
        # Whatever the nodes started outside their groups (none expected) goes too.
        for pid in processes_with(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def ray_cluster(nodes: int) -> Iterator[RayCluster]:
    """A cluster of `nodes` nodes with one CPU each; stopped whatever happens."""
    require_ray()
    cluster = RayCluster()
    try:
        cluster.start_head()
        for _ in range(nodes - 1):
            cluster.add_node()
        yield cluster
    finally:
        cluster.stop()


# --------------------------------------------------------------------------- the CLI
def grade_command(course: Path, assignment: str, paths: list[Path], *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        assignment,
        *(str(p) for p in paths),
        "--course",
        str(course),
        *options,
    ]


def cli_env() -> dict[str, str]:
    """A wide terminal, so that rich does not wrap the lines the tests look for."""
    env = {**os.environ, "COLUMNS": "250", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    return env


def run_grade(
    course: Path, assignment: str, paths: list[Path], *options: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        grade_command(course, assignment, paths, *options),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        check=False,
    )


def attempts(gradebook: Path) -> dict[str, tuple[int, int, float]]:
    """student -> (attempts, current attempts, current score) in a gradebook."""
    db = sqlite3.connect(f"file:{gradebook}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT student_id, COUNT(*), SUM(current), SUM(CASE WHEN current THEN score END) "
            "FROM attempts GROUP BY student_id"
        ).fetchall()
    finally:
        db.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def graded_count(gradebook: Path) -> int:
    """Attempts committed so far (0 while the gradebook does not exist yet)."""
    if not gradebook.exists():
        return 0
    try:
        return sum(n for n, _, _ in attempts(gradebook).values())
    except sqlite3.Error:  # created but its schema not written yet
        return 0
