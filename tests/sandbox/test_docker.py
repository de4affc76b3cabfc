"""The Docker sandbox against a real Docker engine, spoken to over the wire protocol.

As in tests/sandbox/test_local.py, each test starts a runtime (one container), or shares
one where it only looks around, runs a cell in it and reads back what the cell found;
some tests look at the engine from the host too (`docker ps`, the socket folder, host
processes). Without a Docker daemon or the image `autograder-sandbox:latest` these tests
are skipped, and fail under AUTOGRADER_REQUIRE_DOCKER=1 (see tests/conftest.py). The
tests of the image's build inputs need no engine.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import socket
import subprocess
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import autograder.runtime as runtime_package
from autograder import image as image_module
from autograder.runtime import wire
from autograder.sandbox import LaunchConfig
from autograder.sandbox.docker import (
    LABEL,
    OWNER_LABEL,
    DockerProcess,
    DockerSandbox,
    DockerUnavailable,
    remove_orphans,
)
from tests.conftest import host_addresses, quiet_client, sandbox_containers
from tests.sandbox.test_local import Box, host_processes_with, wait_for

REPO = Path(__file__).resolve().parents[2]
RUNTIME_DIR = Path(runtime_package.__file__).parent
IMAGE_RUNTIME = "/opt/autograder/autograder_runtime"


class DockerBox(Box):
    """One runtime in a DockerSandbox's container, driven like the grader drives it."""

    process: DockerProcess

    def close(self) -> None:
        self.process.kill()
        self.process.output()


@pytest.fixture(scope="module")
def sandbox(needs_docker: None) -> Iterator[DockerSandbox]:
    box = DockerSandbox()
    yield box
    box.client.close()


@pytest.fixture
def boxes(sandbox: DockerSandbox) -> Iterator[Callable[..., DockerBox]]:
    started: list[DockerBox] = []

    def start(config: LaunchConfig | None = None) -> DockerBox:
        box = DockerBox(config or LaunchConfig(memory_mb=1024, max_processes=64), sandbox)
        started.append(box)
        return box

    yield start
    for box in started:
        box.close()


@pytest.fixture(scope="module")
def shared(sandbox: DockerSandbox) -> Iterator[DockerBox]:
    """One container for the tests that only look around."""
    config = LaunchConfig(memory_mb=1024, max_processes=64, scratch_mb=8, max_open_files=128)
    box = DockerBox(config, sandbox)
    yield box
    box.close()


# --------------------------------------------------------------------------- the image
def test_the_image_runs_the_runtime_of_this_source_tree(shared: DockerBox) -> None:
    inside = shared.value(
        f"""
        import hashlib, os
        folder = {IMAGE_RUNTIME!r}
        result = {{name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
                  for name in os.listdir(folder) if name.endswith(".py")}}
        """
    )
    here = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in RUNTIME_DIR.glob("*.py")}
    assert inside == here, (
        "the sandbox image holds another version of autograder/runtime: "
        "rebuild it with `autograder image build --offline`"
    )


def test_the_image_holds_no_grader_reference_or_hidden_tests(shared: DockerBox) -> None:
    course = REPO / "assignments" / "perceptron"
    secrets = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in [
            *course.glob("hidden_tests/*.py"),
            *(REPO / "reference_solutions" / "perceptron").iterdir(),
            course / "assignment.toml",
        ]
        if p.is_file()
    }
    assert "test_perceptron.py" in secrets
    seen = shared.value(
        f"""
        import hashlib, importlib.util, os, subprocess

        names = {sorted(secrets)!r}
        # Every file named like the course's secret files, anywhere in the container.
        expr = ["("]
        for name in names + ["*perceptron*", "hidden_tests", "reference_solutions",
                             "gradebook.db", "autograder"]:
            expr += ["-name", name, "-o"]
        expr[-1] = ")"
        find = subprocess.run(
            ["find", "/", "(", "-path", "/proc", "-o", "-path", "/sys", ")", "-prune", "-o",
             *expr, "-print"],
            capture_output=True, text=True,
        )
        found = find.stdout.split()
        digests = {{}}
        for path in found:
            if os.path.isfile(path) and os.path.basename(path) in names:
                digests[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
        try:
            import autograder
            imported = "imported"
        except ImportError as exc:
            imported = type(exc).__name__
        result = {{
            "found": found,
            "digests": digests,
            "imported": imported,
            "spec": importlib.util.find_spec("autograder") is not None,
            "host_paths": [p for p in {[str(REPO), str(course), "/work"]!r}
                           if os.path.lexists(p)],
            "opt": sorted(os.listdir("/opt")),
            "runtime_parent": sorted(os.listdir("/opt/autograder")),
            "find_ran": find.returncode in (0, 1) and "/opt/venv" not in find.stderr,
        }}
        """
    )
    assert seen["find_ran"], seen
    assert seen["imported"] == "ModuleNotFoundError" and seen["spec"] is False, seen
    assert seen["host_paths"] == [], seen
    assert seen["opt"] == ["autograder", "venv"] and seen["runtime_parent"] == [
        "autograder_runtime"
    ]
    leaked = [p for p, digest in seen["digests"].items() if digest in secrets.values()]
    assert leaked == [], f"the image holds the course's secret files: {leaked}"
    # What may carry such names: our own runtime's folder and scikit-learn's own perceptron.
    site = "/opt/venv/lib/python3.11/site-packages/"
    allowed = ("/opt/autograder", "/run/autograder", site + "sklearn/")
    unexpected = [p for p in seen["found"] if not p.startswith(allowed)]
    assert unexpected == [], f"unexpected course-like files in the image: {unexpected}"


def test_only_the_socket_folder_comes_from_the_host(shared: DockerBox) -> None:
    seen = shared.value(
        """
        import os
        mounts = [line.split()[1] for line in open("/proc/mounts")]
        socket_dir = sorted(os.listdir("/run/autograder"))
        try:
            open("/run/autograder/written", "w").close()
            writable = True
        except OSError:
            writable = False
        result = [mounts, socket_dir, writable]
        """
    )
    mounts, socket_dir, writable = seen
    kernel = ("/proc", "/sys", "/dev")
    others = {m for m in mounts if m not in ("/", "/tmp") and not m.startswith(kernel)}
    # The engine's generated /etc files, and our socket folder (read-only).
    assert others <= {"/run/autograder", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"}, mounts
    assert socket_dir == ["sock"] and writable is False, seen


def test_data_dir_is_mounted_read_only_at_tmp_data(
    tmp_path: Path, boxes: Callable[..., DockerBox]
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as in a checkout: readable by the sandbox's unprivileged user
    (data / "points.csv").write_text("x,y\n1,2\n")
    box = boxes(LaunchConfig(memory_mb=1024, max_processes=64, data_dir=data))
    seen = box.value(
        """
        import os
        try:
            open("/tmp/data/new.csv", "w").close()
            write = "written"
        except OSError as exc:
            write = exc.errno
        result = [open("/tmp/data/points.csv").read(), sorted(os.listdir("/tmp/data")), write]
        """
    )
    assert seen == ["x,y\n1,2\n", ["points.csv"], errno.EROFS], seen
    assert sorted(p.name for p in data.iterdir()) == ["points.csv"]


def test_no_data_dir_without_one(shared: DockerBox) -> None:
    assert shared.value("import os\nresult = os.path.lexists('/tmp/data')") is False


# --------------------------------------------------------------------------- privileges
def test_runs_as_nobody_with_no_capabilities_and_no_new_privileges(shared: DockerBox) -> None:
    seen = shared.value(
        """
        import os
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        try:
            os.setuid(0)
            setuid = "succeeded"
        except OSError:
            setuid = "refused"
        result = {
            "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()],
            "groups": os.getgroups(),
            "caps": {k: int(status[k].strip(), 16)
                     for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
            "no_new_privs": status["NoNewPrivs"].strip(),
            "setuid": setuid,
        }
        """
    )
    assert seen["ids"] == [65534] * 4, seen
    assert 0 not in seen["groups"], seen
    assert seen["caps"] == dict.fromkeys(seen["caps"], 0), seen
    assert seen["no_new_privs"] == "1", seen
    assert seen["setuid"] == "refused"


def test_root_filesystem_is_read_only_and_tmp_is_the_scratch_space(shared: DockerBox) -> None:
    name = f"written-{uuid.uuid4().hex}"
    seen = shared.value(
        f"""
        import os, sys
        name = {name!r}
        targets = ["/", "/etc", "/opt", "/opt/venv", "/opt/autograder", {IMAGE_RUNTIME!r},
                   sys.prefix, os.path.dirname(os.__file__), "/usr", "/usr/lib", "/var",
                   "/var/tmp", "/root", "/home", "/run", "/dev", "/proc", "/sys"]
        written = []
        for folder in targets:
            try:
                with open(os.path.join(folder, name), "w") as f:
                    f.write("x")
                written.append(folder)
            except OSError:
                pass
        try:
            open({IMAGE_RUNTIME!r} + "/wire.py", "a").close()
            written.append("wire.py")
        except OSError:
            pass
        scratch = []
        for folder in ("/tmp", "/dev/shm", os.path.expanduser("~"), os.getcwd()):
            with open(os.path.join(folder, name), "w") as f:
                f.write("x")
            scratch.append(folder)
            os.remove(os.path.join(folder, name))
        result = [written, scratch]
        """
    )
    written, scratch = seen
    assert written == [], f"the runtime could write into {written}"
    assert scratch == ["/tmp", "/dev/shm", "/tmp", "/tmp"]
    assert not (Path("/tmp") / name).exists()


def test_scratch_space_is_size_capped(boxes: Callable[..., DockerBox]) -> None:
    box = boxes(LaunchConfig(memory_mb=1024, max_processes=64, scratch_mb=8))
    seen = box.value(
        """
        import os

        def fill(folder):
            written, error = 0, None
            try:
                for i in range(32):  # 32 MB, four times the cap
                    with open(f"{folder}/fill-{i}", "wb") as f:
                        f.write(b"x" * 2**20)
                    written += 1
            except OSError as exc:
                error = exc.errno
            for name in os.listdir(folder):
                if name.startswith("fill-"):
                    os.remove(f"{folder}/{name}")
            return written, error

        def one_big_file():
            try:
                with open("/tmp/big", "wb") as f:
                    f.write(b"x" * (12 * 2**20))
                return None
            except OSError as exc:
                return exc.errno
            finally:
                os.remove("/tmp/big")

        result = [fill("/tmp"), fill("/dev/shm"), one_big_file()]
        """
    )
    (tmp_written, tmp_error), (shm_written, shm_error), big_error = seen
    assert tmp_written <= 8 and tmp_error == errno.ENOSPC, seen
    assert shm_written <= 8 and shm_error == errno.ENOSPC, seen
    assert big_error in (errno.ENOSPC, errno.EFBIG), seen


def test_each_container_has_its_own_scratch_space(boxes: Callable[..., DockerBox]) -> None:
    name = f"note-{uuid.uuid4().hex}"
    first, second = boxes(), boxes()
    assert first.run(f"open('/tmp/{name}', 'w').write('from the first student')")["cells"] == []
    assert second.value(f"import os\nresult = os.path.exists('/tmp/{name}')") is False
    assert not (Path("/tmp") / name).exists()


def test_host_environment_does_not_leak_in(
    monkeypatch: pytest.MonkeyPatch, boxes: Callable[..., DockerBox]
) -> None:
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", "hunter2")
    box = boxes()
    seen = box.value(
        """
        import os, socket, torch
        result = [dict(os.environ), socket.gethostname(), torch.get_num_threads()]
        """
    )
    env, hostname, threads = seen
    assert "AUTOGRADER_TEST_SECRET" not in env
    assert env["HOME"] == "/tmp" and env["OMP_NUM_THREADS"] == "1" and threads == 1, seen
    assert env["CUDA_VISIBLE_DEVICES"] == ""  # no GPU unless asked for
    assert hostname == "sandbox"


# --------------------------------------------------------------------------- network
def _docker_gateways(sandbox: DockerSandbox) -> list[str]:
    """Gateways of the engine's networks (none with --bridge=none)."""
    found = []
    for network in sandbox.client.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            if config.get("Gateway"):
                found.append(config["Gateway"].split("/")[0])
    return found


def test_no_network(shared: DockerBox, sandbox: DockerSandbox) -> None:
    token = uuid.uuid4().hex
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))  # every address of the host, loopback included
    listener.listen()
    listener.setblocking(False)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0autograder-test-{token}")
    abstract.listen()
    abstract.setblocking(False)
    port = listener.getsockname()[1]
    hosts = list(dict.fromkeys([*host_addresses(), *_docker_gateways(sandbox)]))
    try:
        seen = shared.value(
            f"""
            import socket

            def attempt(action):
                try:
                    action()
                    return "succeeded"
                except OSError as exc:
                    return type(exc).__name__

            def tcp(host):
                s = socket.socket()
                s.settimeout(3)
                s.connect((host, {port}))

            def unix():
                s = socket.socket(socket.AF_UNIX)
                s.connect("\\0autograder-test-{token}")

            def udp():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.sendto(b"x", ("1.1.1.1", 53))

            result = {{
                "tcp": {{host: attempt(lambda: tcp(host)) for host in {hosts!r}}},
                "unix": attempt(unix),
                "udp": attempt(udp),
                "dns": attempt(lambda: socket.getaddrinfo("example.com", 443)),
                "interfaces": [name for _, name in socket.if_nameindex()],
            }}
            """
        )
        assert "succeeded" not in seen["tcp"].values(), seen
        assert seen["unix"] != "succeeded" and seen["udp"] != "succeeded", seen
        assert seen["dns"] == "gaierror", seen
        assert seen["interfaces"] == ["lo"], seen
        for server in (listener, abstract):
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        listener.close()
        abstract.close()


# --------------------------------------------------------------------------- processes
def test_runtime_cannot_see_or_signal_host_processes(shared: DockerBox) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        seen = shared.value(
            f"""
            import os
            pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
            cmdlines = []
            for pid in pids:
                try:
                    cmdlines.append(open(f"/proc/{{pid}}/cmdline", "rb").read())
                except OSError:
                    pass
            try:
                os.kill({sleeper.pid}, 9)
                signalled = "delivered"
            except OSError as exc:
                signalled = type(exc).__name__
            result = [len(pids), any(b"pytest" in c for c in cmdlines), signalled]
            """
        )
        assert seen[0] <= 4 and seen[1] is False, seen
        assert seen[2] in ("ProcessLookupError", "PermissionError")
        assert sleeper.poll() is None, "the sandbox killed a host process"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_fork_bomb_is_capped_and_gone_after_kill(boxes: Callable[..., DockerBox]) -> None:
    marker = f"forkbomb-{uuid.uuid4().hex}"
    box = boxes(LaunchConfig(memory_mb=1024, max_processes=24))
    seen = box.value(
        f"""
        import os, sys
        count, error = 0, None
        for _ in range(60):  # bounded, in case the cap does not hold
            try:
                pid = os.fork()
            except OSError as exc:
                error = exc.errno
                break
            if pid == 0:
                try:
                    os.execv(sys.executable,
                             [sys.executable, "-c", "import time; time.sleep(600)", {marker!r}])
                finally:
                    os._exit(1)
            count += 1
        result = [count, error]
        """
    )
    count, error = seen
    assert error == errno.EAGAIN and count < 24, seen
    # The container's processes are the host's too (in the engine's pid namespace).
    assert wait_for(lambda: len(host_processes_with(marker)) > 0), "the children never started"
    box.process.kill()
    assert wait_for(lambda: not host_processes_with(marker), timeout=10)


def test_double_forked_daemon_does_not_survive_kill(boxes: Callable[..., DockerBox]) -> None:
    marker = f"daemon-{uuid.uuid4().hex}"
    box = boxes()
    reply = box.run(
        f"""
        import os, sys
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                os.closerange(0, 1024)
                code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                        "signal.signal(signal.SIGHUP, signal.SIG_IGN); time.sleep(600)")
                os.execv(sys.executable, [sys.executable, "-c", code, {marker!r}])
            os._exit(0)
        os.waitpid(pid, 0)
        """
    )
    assert reply["cells"] == []
    assert wait_for(lambda: len(host_processes_with(marker)) == 1), "the daemon never started"
    box.process.kill()
    assert wait_for(lambda: not host_processes_with(marker), timeout=10), (
        "a daemon started by student code outlived its container"
    )


# --------------------------------------------------------------------------- limits
def test_open_files_are_capped(shared: DockerBox) -> None:
    seen = shared.value(
        """
        files, error = [], None
        try:
            for _ in range(500):
                files.append(open("/dev/null"))
        except OSError as exc:
            error = exc.errno
        for f in files:
            f.close()
        result = [len(files), error]
        """
    )
    assert seen[0] < 128 and seen[1] == errno.EMFILE, seen


def test_output_beyond_the_cap_is_cut_with_a_note(boxes: Callable[..., DockerBox]) -> None:
    box = boxes(LaunchConfig(memory_mb=1024, max_processes=64, output_bytes=4096))
    reply = box.run(
        """
        import sys
        print("o" * 100_000)
        print("e" * 50_000, file=sys.stderr)
        """
    )
    assert reply["cells"] == []
    box.process.kill()
    out, err = box.process.output()
    assert out.startswith("o" * 4096) and "o" * 4097 not in out
    assert out.endswith("[... 95905 more bytes of output not kept]"), out[-100:]
    assert err.startswith("e" * 4096) and "e" * 4097 not in err
    assert err.endswith("[... 45905 more bytes of output not kept]"), err[-100:]


def test_memory_beyond_the_cap_kills_the_runtime_with_a_reason(
    boxes: Callable[..., DockerBox],
) -> None:
    box = boxes(LaunchConfig(memory_mb=400, max_processes=64))
    with pytest.raises(wire.PeerClosed):
        box.run(
            """
            blocks = []
            for _ in range(40):
                blocks.append(b"x" * (50 * 2**20))  # 2 GB in all
            """
        )
    reason = box.process.exit_reason()
    assert reason == "killed: out of memory (limit 400 MB)", reason
    assert not box.process.alive()
    box.process.kill()
    assert box.process.exit_reason() == reason  # still known once the container is gone


def test_cpu_time_is_capped(boxes: Callable[..., DockerBox]) -> None:
    box = boxes(LaunchConfig(memory_mb=1024, max_processes=64, cpu_seconds=3))
    started = time.monotonic()
    with pytest.raises(wire.PeerClosed):
        box.run("while True:\n    pass\n", timeout=60)
    assert time.monotonic() - started < 30
    reason = box.process.exit_reason()
    assert "SIGXCPU" in reason or "SIGKILL" in reason, reason


def test_exit_reasons_and_idempotent_kill(boxes: Callable[..., DockerBox]) -> None:
    exits = boxes()
    with pytest.raises(wire.PeerClosed):
        exits.run("import os\nos._exit(3)\n")
    assert exits.process.exit_reason() == "exited with status 3"
    crashes = boxes()
    with pytest.raises(wire.PeerClosed):
        crashes.run("import ctypes\nctypes.string_at(0)\n")
    assert crashes.process.exit_reason() == "killed by signal SIGSEGV"
    running = boxes()
    assert running.process.alive() and running.process.exit_reason() == "still running"
    for box in (exits, crashes, running):
        box.process.kill()
        box.process.kill()
        assert not box.process.alive()
    assert exits.process.exit_reason() == "exited with status 3"
    # kill() closes the socket first, so the runtime may have ended by itself before the
    # container was removed; either way it is not running any more.
    assert running.process.exit_reason() in ("killed by signal SIGKILL", "exited with status 0")


def test_peak_memory_is_known_where_the_engine_cgroup_is_visible(
    boxes: Callable[..., DockerBox],
) -> None:
    box = boxes()
    assert box.value("import torch\nx = torch.ones(2**23)\nresult = float(x.sum())") == 2**23
    cid = box.process.container.id
    visible = any(
        p.exists()
        for p in (
            Path(f"/sys/fs/cgroup/memory/docker/{cid}"),
            Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope"),
            Path(f"/sys/fs/cgroup/docker/{cid}"),
        )
    )
    box.process.kill()
    peak = box.process.peak_memory_mb()
    if not visible:
        pytest.skip("the engine's cgroups are not visible from this process")
    assert peak is not None and peak > 32, peak  # 32 MB of tensor, plus torch itself


# --------------------------------------------------------------------------- teardown
def test_kill_removes_the_container_and_the_socket_folder(
    boxes: Callable[..., DockerBox],
) -> None:
    box = boxes()
    cid = box.process.container.id
    folder = box.process.socket_dir
    assert folder.is_dir() and (folder / "sock").exists()
    owner = box.process.container.labels[OWNER_LABEL]
    assert owner == f"{socket.gethostname()}:{os.getpid()}"
    assert cid in sandbox_containers(owner_pid=os.getpid())
    box.process.kill()
    assert cid not in sandbox_containers()
    assert not folder.exists()


def _container(sandbox: DockerSandbox, owner: str) -> Any:
    container = sandbox.client.containers.create(
        sandbox.image,
        command=["sleep", "600"],
        labels={LABEL: "1", OWNER_LABEL: owner},
        network_mode="none",
        user="65534:65534",
    )
    container.start()
    return container


def _remove(*containers: Any) -> None:
    left = set(sandbox_containers())
    for container in containers:
        if container.id in left:
            container.remove(force=True)


def _dead_owner() -> str:
    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # never a live process
    return f"{socket.gethostname()}:{pid}"


def test_remove_orphans_removes_containers_of_a_dead_grader_only(sandbox: DockerSandbox) -> None:
    orphan = _container(sandbox, _dead_owner())
    alive = _container(sandbox, f"{socket.gethostname()}:{os.getpid()}")
    foreign = _container(sandbox, f"another-host-{uuid.uuid4().hex[:8]}:1")
    try:
        assert remove_orphans(sandbox.client) >= 1
        left = sandbox_containers()
        assert orphan.id not in left
        # A live grader's containers, and those of graders on other hosts sharing the
        # engine (whose processes we cannot see), are not ours to remove.
        assert alive.id in left and foreign.id in left
    finally:
        _remove(orphan, alive, foreign)


def test_a_new_sandbox_removes_containers_left_by_a_killed_grader(
    sandbox: DockerSandbox,
) -> None:
    orphan = _container(sandbox, _dead_owner())
    try:
        assert orphan.id in sandbox_containers()
        fresh = DockerSandbox()
        fresh.client.close()  # its first use sweeps
        assert orphan.id not in sandbox_containers()
    finally:
        _remove(orphan)


def test_a_missing_image_is_a_clear_error(needs_docker: None) -> None:
    box = DockerSandbox(image=f"autograder-sandbox:missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(DockerUnavailable, match="autograder image build --offline"):
        box.start(LaunchConfig())
    if box._client is not None:
        box._client.close()


def test_isolation_report(sandbox: DockerSandbox) -> None:
    assert sandbox.missing() == []
    assert "no network" in sandbox.isolation() and "non-root" in sandbox.isolation()


def test_no_daemon_is_docker_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix:///nonexistent/{uuid.uuid4().hex}.sock")
    with pytest.raises(DockerUnavailable, match="no Docker daemon answers"):
        quiet_client()


def test_a_zygote_container_runs_without_the_engines_init(tmp_path: Path) -> None:
    # An engine configured to add an init by default would make the zygote PID 2, and it
    # refuses to reap outside its own pid namespace's init; single runs keep the default.
    options = DockerSandbox()._options(LaunchConfig(), tmp_path, "zygote")
    assert options["init"] is False and options["command"][-1] == "zygote"
    assert "init" not in DockerSandbox()._options(LaunchConfig(), tmp_path)


# --------------------------------------------------------------------------- image build
def _copy_runtime(tmp_path: Path) -> Path:
    copy = tmp_path / "runtime"
    shutil.copytree(RUNTIME_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_inputs_digest_follows_the_runtime_and_the_docker_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = image_module.inputs_digest()
    docker_dir = tmp_path / "docker"
    shutil.copytree(image_module.DOCKER_DIR, docker_dir)
    runtime = _copy_runtime(tmp_path)
    fake = types.SimpleNamespace(__file__=str(runtime / "__init__.py"))
    monkeypatch.setattr(image_module, "runtime_package", fake)
    assert image_module.inputs_digest(docker_dir) == original  # same content, same digest

    (runtime / "__pycache__").mkdir()
    (runtime / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"compiled")
    assert image_module.inputs_digest(docker_dir) == original  # not an input

    server = runtime / "server.py"
    server.write_text(server.read_text() + "\n# a change\n")
    changed = image_module.inputs_digest(docker_dir)
    assert changed != original

    (runtime / "extra.py").write_text("X = 1\n")
    added = image_module.inputs_digest(docker_dir)
    assert added not in (original, changed)

    (docker_dir / "requirements.txt").write_text("torch==2.13.0\nnumpy\n")
    assert image_module.inputs_digest(docker_dir) not in (original, changed, added)


def test_building_an_unchanged_image_only_retags_it(needs_docker: None, tmp_path: Path) -> None:
    tag = f"autograder-sandbox:{image_module.inputs_digest()}"
    if not image_module.image_exists(tag):
        pytest.fail(
            f"{tag} does not exist: the image is older than this source tree; "
            "run `autograder image build --offline`"
        )
    for _ in range(2):
        logs: list[str] = []
        started = time.monotonic()
        assert image_module.build_offline(tmp_path / "cache", log=logs.append) == tag
        assert time.monotonic() - started < 30, logs
        assert any("is up to date" in line for line in logs), logs
        assert not any("docker build" in line or "debootstrap" in line for line in logs), logs
    assert not (tmp_path / "cache").exists()  # nothing downloaded, nothing unpacked

    def image_id(name: str) -> str:
        return subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert image_id("autograder-sandbox:latest") == image_id(tag)
