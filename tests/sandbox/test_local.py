"""The local sandbox, spoken to directly over the wire protocol as the grader does.

Each test starts a runtime (or shares one where the test only looks around), runs a
cell in it and reads back what the cell found. Isolation tests need bubblewrap or
cgroups; where the machine lacks them they are skipped (failed under
AUTOGRADER_REQUIRE_ISOLATION=1, see tests/conftest.py).
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autograder.runtime import wire
from autograder.sandbox import LaunchConfig, LocalSandbox
from autograder.sandbox import local as local_module
from autograder.sandbox.local import ETC_FILES, bwrap_works, python_paths
from tests.conftest import require_isolation

STARTUP_S = 120.0
REPO = Path(__file__).resolve().parents[2]


class Box:
    """One runtime in a LocalSandbox, driven like the grader drives it."""

    def __init__(self, config: LaunchConfig, sandbox: LocalSandbox | None = None) -> None:
        self.config = config
        self.process = (sandbox or LocalSandbox()).start(config)
        message, _ = self._recv(time.monotonic() + STARTUP_S)
        assert message.get("event") == "ready", message

    def _recv(self, deadline: float) -> tuple[dict[str, Any], bytes]:
        return wire.recv_frame(self.process.sock, self.config.message_bytes, deadline)

    def _send(self, message: dict[str, Any]) -> None:
        wire.send_frame(self.process.sock, wire.pack(message, []), [], self.config.message_bytes)

    def run(self, source: str, timeout: float = 60.0) -> dict[str, Any]:
        """Run one cell; return the runtime's final reply (cell errors under "cells")."""
        self._send({"op": "run", "cells": [{"index": 0, "source": textwrap.dedent(source)}]})
        deadline = time.monotonic() + timeout
        while True:
            message, _ = self._recv(deadline)
            if "ok" in message:
                return message

    def get(self, name: str, timeout: float = 30.0) -> Any:
        self._send({"op": "get", "name": name})
        message, blob = self._recv(time.monotonic() + timeout)
        assert message.get("ok") is True, message
        return wire.decode(message["value"], blob, message["blobs"], lambda ref: ref)

    def value(self, source: str, name: str = "result") -> Any:
        """Run `source` (which must not fail) and read back the variable `name`."""
        reply = self.run(source)
        assert reply["cells"] == [], reply["cells"]
        return self.get(name)

    def close(self) -> None:
        self.process.kill()
        self.process.output()
        for stream in (self.process.popen.stdout, self.process.popen.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def boxes() -> Iterator[Callable[..., Box]]:
    started: list[Box] = []

    def start(config: LaunchConfig | None = None, sandbox: LocalSandbox | None = None) -> Box:
        box = Box(config or LaunchConfig(memory_mb=1024, max_processes=64), sandbox)
        started.append(box)
        return box

    yield start
    for box in started:
        box.close()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Something secret on the host, where a course would be."""
    root = tmp_path_factory.mktemp("course")
    (root / "reference_solutions").mkdir()
    (root / "reference_solutions" / "solution.py").write_text("SECRET = 42\n")
    (root / "gradebook.db").write_text("SECRET-GRADEBOOK\n")
    return root


@pytest.fixture(scope="module")
def shared(course: Path) -> Iterator[Box]:
    """One runtime for the tests that only look around."""
    config = LaunchConfig(memory_mb=1024, max_processes=64, scratch_mb=8, max_open_files=128)
    box = Box(config, LocalSandbox(mask=(course,)))
    yield box
    box.close()


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --------------------------------------------------------------------------- visibility
def test_runtime_sees_only_allow_listed_paths(needs_bwrap: None, shared: Box, course: Path) -> None:
    secret_paths = [
        str(course),
        str(course / "reference_solutions" / "solution.py"),
        str(course / "gradebook.db"),
        str(REPO),
        str(Path(__file__)),
        "/work",
        "/home",
        "/etc/passwd",
        "/etc/shadow",
        "/etc/hostname",
        "/root/.bashrc",
        "/root/.ssh",
    ]
    seen = shared.value(
        f"""
        import os
        paths = {secret_paths!r}
        result = {{
            "visible": [p for p in paths if os.path.lexists(p)],
            "top": sorted(os.listdir("/")),
            "etc": sorted(os.listdir("/etc")),
            "root": sorted(os.listdir("/root")) if os.path.isdir("/root") else [],
        }}
        """
    )
    assert seen["visible"] == []
    needed = {p.parts[1] for p in python_paths()}
    system = {
        "usr",
        "bin",
        "sbin",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "proc",
        "dev",
        "tmp",
        "etc",
        "opt",
    }
    assert set(seen["top"]) <= system | needed, seen["top"]
    assert set(seen["etc"]) <= set(ETC_FILES), seen["etc"]
    # /root shows only the way to the interpreter (pyenv), never the host's home.
    interpreter_dirs = {p.parts[2] for p in python_paths() if p.parts[1] == "root"}
    assert set(seen["root"]) <= interpreter_dirs, seen["root"]


def test_mask_hides_a_folder_inside_a_mounted_path(
    needs_bwrap: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, boxes: Callable[..., Box]
) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "course").mkdir(parents=True)
    (prefix / "visible.txt").write_text("fine")
    (prefix / "course" / "solution.py").write_text("SECRET = 42\n")
    mounted = python_paths()
    monkeypatch.setattr(local_module, "python_paths", lambda: [*mounted, prefix])
    box = boxes(sandbox=LocalSandbox(mask=(prefix / "course",)))
    seen = box.value(
        f"""
        import os
        result = [os.path.exists({str(prefix / "visible.txt")!r}),
                  os.listdir({str(prefix / "course")!r})]
        """
    )
    assert seen == [True, []]


def test_runtime_cannot_see_or_signal_host_processes(needs_bwrap: None, shared: Box) -> None:
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


# --------------------------------------------------------------------------- network
def test_no_network(needs_bwrap: None, shared: Box) -> None:
    token = uuid.uuid4().hex
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0autograder-test-{token}")
    abstract.listen()
    port = listener.getsockname()[1]
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

            def tcp():
                s = socket.socket()
                s.settimeout(3)
                s.connect(("127.0.0.1", {port}))

            def unix():
                s = socket.socket(socket.AF_UNIX)
                s.connect("\\0autograder-test-{token}")

            def udp():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.sendto(b"x", ("1.1.1.1", 53))

            result = {{
                "tcp": attempt(tcp),
                "unix": attempt(unix),
                "udp": attempt(udp),
                "dns": attempt(lambda: socket.getaddrinfo("example.com", 443)),
                "interfaces": [name for _, name in socket.if_nameindex()],
            }}
            """
        )
        assert seen["tcp"] != "succeeded", seen
        assert seen["unix"] != "succeeded", seen
        assert seen["udp"] != "succeeded", seen
        assert seen["dns"] == "gaierror", seen
        assert set(seen["interfaces"]) <= {"lo"}, seen
        for server in (listener, abstract):
            server.settimeout(0.5)
            with pytest.raises(TimeoutError):
                server.accept()
    finally:
        listener.close()
        abstract.close()


# --------------------------------------------------------------------------- privileges
def test_runs_as_an_unprivileged_user(needs_bwrap: None, shared: Box) -> None:
    seen = shared.value(
        """
        import os
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        try:
            os.setuid(0)
            setuid = "succeeded"
        except OSError:
            setuid = "refused"
        result = [os.getuid(), os.geteuid(), os.getgid(), status["CapEff"].strip(), setuid]
        """
    )
    uid, euid, gid, cap_eff, setuid = seen
    assert 0 not in (uid, euid, gid), seen
    assert int(cap_eff, 16) == 0, seen
    assert setuid == "refused"


def test_filesystem_is_read_only_outside_the_scratch_space(needs_bwrap: None, shared: Box) -> None:
    name = f"written-{uuid.uuid4().hex}"
    runtime_dir = "/opt/autograder/autograder_runtime"
    seen = shared.value(
        f"""
        import os, sys
        name = {name!r}
        targets = ["/", "/root", "/etc", "/usr", "/usr/lib", "/opt", {runtime_dir!r},
                   sys.prefix, os.path.dirname(os.__file__), "/dev", "/proc"]
        written = []
        for folder in targets:
            try:
                with open(os.path.join(folder, name), "w") as f:
                    f.write("x")
                written.append(folder)
            except OSError:
                pass
        try:
            open({runtime_dir!r} + "/wire.py", "a").close()
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
    host_dirs = [
        Path(local_module.__file__).parents[1] / "runtime",
        Path(sys.prefix),
        Path(os.__file__).parent,
        Path("/tmp"),
        Path("/"),
    ]
    assert not [d for d in host_dirs if (d / name).exists()]


def test_scratch_space_is_size_capped(needs_bwrap: None, boxes: Callable[..., Box]) -> None:
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


def test_each_sandbox_has_its_own_scratch_space(
    needs_bwrap: None, boxes: Callable[..., Box]
) -> None:
    name = f"note-{uuid.uuid4().hex}"
    first, second = boxes(), boxes()
    assert first.run(f"open('/tmp/{name}', 'w').write('from the first student')")["cells"] == []
    assert second.value(f"import os\nresult = os.path.exists('/tmp/{name}')") is False
    assert not (Path("/tmp") / name).exists()


def test_open_files_are_capped(shared: Box) -> None:
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


def test_threads_are_held_to_the_configured_number(shared: Box) -> None:
    seen = shared.value(
        """
        import os, torch
        result = [torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")]
        """
    )
    assert seen == [1, "1"]


def test_host_environment_does_not_leak_in(
    monkeypatch: pytest.MonkeyPatch, boxes: Callable[..., Box]
) -> None:
    monkeypatch.setenv("AUTOGRADER_TEST_SECRET", "hunter2")
    box = boxes()
    seen = box.value(
        """
        import os
        result = [sorted(os.environ), os.environ.get("HOME")]
        """
    )
    names, home = seen
    assert "AUTOGRADER_TEST_SECRET" not in names
    assert home != os.environ.get("HOME")


# --------------------------------------------------------------------------- limits
def test_output_beyond_the_cap_is_cut_with_a_note(boxes: Callable[..., Box]) -> None:
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
    assert "more bytes of output not kept]" in err
    assert len(out) < 4096 + 100


def test_memory_beyond_the_cap_kills_the_runtime_with_a_reason(
    needs_cgroups: None, boxes: Callable[..., Box]
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


def test_cpu_time_is_capped(boxes: Callable[..., Box]) -> None:
    box = boxes(LaunchConfig(memory_mb=1024, max_processes=64, cpu_seconds=4))
    started = time.monotonic()
    with pytest.raises(wire.PeerClosed):
        box.run("while True:\n    pass\n", timeout=60)
    assert time.monotonic() - started < 30
    assert "SIGXCPU" in box.process.exit_reason() or "SIGKILL" in box.process.exit_reason()


def test_fork_bomb_is_capped_and_gone_after_kill(
    needs_cgroups: None, boxes: Callable[..., Box]
) -> None:
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
    assert wait_for(lambda: len(host_processes_with(marker)) > 0), "the children never started"
    box.process.kill()
    assert wait_for(lambda: not host_processes_with(marker), timeout=10)


def test_double_forked_daemon_does_not_survive_kill(
    needs_teardown: None, boxes: Callable[..., Box]
) -> None:
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
        "a daemon started by student code outlived its sandbox"
    )


def test_cgroup_folders_are_removed_after_kill(
    needs_cgroups: None, boxes: Callable[..., Box]
) -> None:
    box = boxes()
    group = box.process.group
    assert group is not None and group.dirs
    assert all(d.is_dir() for d in group.dirs)
    assert box.process.popen.pid in group.pids_inside()
    box.process.kill()
    assert not [d for d in group.dirs if d.exists()]


def test_exit_reason_and_idempotent_kill(boxes: Callable[..., Box]) -> None:
    box = boxes()
    with pytest.raises(wire.PeerClosed):
        box.run("import os\nos._exit(3)\n")
    assert box.process.exit_reason() == "exited with status 3"
    box.process.kill()
    box.process.kill()
    assert not box.process.alive()


def test_isolation_report_when_everything_works(needs_bwrap: None, needs_cgroups: None) -> None:
    sandbox = LocalSandbox()
    assert sandbox.missing() == []
    assert "bubblewrap" in sandbox.isolation() and "cgroup" in sandbox.isolation()


def test_isolation_report_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_module, "bwrap_path", lambda: None)
    monkeypatch.setattr(local_module, "bwrap_works", lambda: False)
    monkeypatch.setattr(local_module, "cgroups_work", lambda: False)
    gaps = LocalSandbox().missing()
    assert len(gaps) == 2
    assert "bubblewrap is not installed" in gaps[0] and "cgroups are not writable" in gaps[1]
    assert "NO namespace isolation" in LocalSandbox().isolation()


def test_bwrap_works_is_true_where_bubblewrap_is_installed_and_usable() -> None:
    # Guards the skip rule: a regression in bwrap_works() would silently skip every test above.
    require_isolation(local_module.bwrap_path() is not None, "bubblewrap")
    probe = subprocess.run(
        [local_module.bwrap_path(), "--unshare-all", "--ro-bind", "/", "/", "true"],
        capture_output=True,
        check=False,
    )
    assert bwrap_works() == (probe.returncode == 0)


def test_values_that_cannot_cross_are_an_error_not_the_end_of_the_runtime(shared: Box) -> None:
    assert (
        shared.run("import torch\nmeta = torch.empty(3, device='meta')\nfine = 7\n")["cells"] == []
    )
    shared._send({"op": "get", "name": "meta"})
    reply, _ = shared._recv(time.monotonic() + 30)
    assert reply["ok"] is False and reply["error"]["kind"] == "encode", reply
    assert shared.get("fine") == 7  # the same process still answers
