"""The warm sandbox: runtimes forked from one zygote must be as separate as fresh sandboxes.

The tests of `warm` run on both hosts of a zygote: bubblewrap (local) and a Docker container.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from autograder import workers
from autograder.runtime import wire
from autograder.sandbox import LaunchConfig, LocalSandbox
from autograder.sandbox.docker import DockerSandbox
from autograder.sandbox.local import bwrap_works, cgroups_work
from autograder.sandbox.warm import Claimable, Spares, WarmSandbox
from tests.conftest import require_docker, require_isolation, sandbox_containers

CONFIG = LaunchConfig(memory_mb=1024, max_processes=64, scratch_mb=64, output_bytes=4096)


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.slow)])
def warm(request: pytest.FixtureRequest) -> Iterator[WarmSandbox]:
    if request.param == "docker":
        require_docker()
        box = WarmSandbox(DockerSandbox())
    else:
        require_isolation(bwrap_works(), "bubblewrap")
        require_isolation(cgroups_work(), "cgroups")
        box = WarmSandbox(LocalSandbox())
    yield box
    box.close()


def run(process: Any, source: str, name: str | None = None, timeout: float = 60.0) -> Any:
    limit = CONFIG.message_bytes
    ready, _ = wire.recv_frame(process.sock, limit, time.monotonic() + 60)
    assert ready.get("event") == "ready"
    cells = [{"index": 0, "source": textwrap.dedent(source)}]
    wire.send_frame(
        process.sock, wire.pack({"op": "run", "cells": cells, "seed": 3}, []), [], limit
    )
    deadline = time.monotonic() + timeout
    while "ok" not in (reply := wire.recv_frame(process.sock, limit, deadline)[0]):
        pass
    assert reply["cells"] == [], reply["cells"]
    if name is None:
        return None
    wire.send_frame(process.sock, wire.pack({"op": "get", "name": name}, []), [], limit)
    reply, blob = wire.recv_frame(process.sock, limit, time.monotonic() + 30)
    return wire.decode(reply["value"], blob, reply["blobs"], lambda ref: ref)


PLANT = """
import os, subprocess, sys, time, ctypes
open("/tmp/planted.py", "w").write("print('owned')")
os.makedirs("/dev/shm/stash", exist_ok=True)
open("/dev/shm/stash/x", "w").write("x")
if os.fork() == 0:                      # a daemon that detaches and sleeps on
    os.setsid()
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
libc = ctypes.CDLL(None)
shm_id = libc.shmget(0, 4096, 0o1600)    # IPC_PRIVATE segment, outlives its creator
sem_id = libc.semget(0, 1, 0o1600)       # so do semaphore sets and message queues
msg_id = libc.msgget(0, 0o1600)
mq = libc.mq_open(b"/stash", os.O_CREAT | os.O_RDWR, 0o600, None)  # so does a POSIX queue
result = [os.getpid(), min(shm_id, sem_id, msg_id), mq]
"""

LOOK = """
import ctypes, os, random, torch
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
result = {
    "tmp": sorted(os.listdir("/tmp")),
    "shm": sorted(os.listdir("/dev/shm")),
    "pids": pids,
    "sysv": [line for kind in ("shm", "sem", "msg")
             for line in open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]],
    "draw": [random.random(), float(torch.rand(1))],
    "me": os.getpid(),
    "mqueue": sorted(os.listdir("/dev/mqueue")),
    "mq_open": ctypes.CDLL(None).mq_open(b"/stash", os.O_RDWR),
}
"""


def test_nothing_of_one_submission_reaches_the_next(warm: WarmSandbox) -> None:
    first = warm.start(CONFIG)
    planted_pid, sysv_id, mq = run(first, PLANT, "result")
    assert sysv_id >= 0 and mq >= 0
    zygote = warm._zygote
    first.kill()
    second = warm.start(CONFIG)
    seen = run(second, LOOK, "result")
    second.kill()
    third = warm.start(CONFIG)
    again = run(third, LOOK, "result")
    third.kill()
    assert "planted.py" not in seen["tmp"] and seen["shm"] == []
    assert seen["sysv"] == []
    assert seen["mqueue"] == [] and seen["mq_open"] == -1
    # Only the zygote (the namespace's init) and the runtime itself are left.
    assert seen["pids"] == [1, seen["me"]] and planted_pid not in seen["pids"]
    assert seen["me"] != planted_pid and zygote is not None and warm._zygote is zygote
    # Fresh forks of the same zygote, seeded the same way: the same draws.
    assert seen["draw"] == again["draw"]


def test_student_code_cannot_reach_into_the_zygote(warm: WarmSandbox) -> None:
    process = warm.start(CONFIG)
    probe = """
    import os
    zygote = os.getppid()
    def attempt(path):
        try:
            open(path, "rb").read(16)
            return "read"
        except OSError as exc:
            return type(exc).__name__
    result = {name: attempt(f"/proc/{zygote}/{name}") for name in ("mem", "environ")}
    """
    seen = run(process, probe, "result")
    process.kill()
    assert seen == {"mem": "PermissionError", "environ": "PermissionError"}


def test_student_code_cannot_signal_or_trace_the_zygote(warm: WarmSandbox) -> None:
    process = warm.start(CONFIG)
    zygote = warm._zygote
    attack = """
    import ctypes, os, signal
    libc = ctypes.CDLL(None, use_errno=True)
    PTRACE_ATTACH = 16
    traced = libc.ptrace(PTRACE_ATTACH, 1, None, None)
    result = {"parent": os.getppid(), "ptrace": traced, "errno": ctypes.get_errno()}
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSEGV, signal.SIGSTOP):
        os.kill(1, sig)
    """
    seen = run(process, attack, "result")
    process.kill()
    assert seen["parent"] == 1 and seen["ptrace"] == -1, seen
    assert seen["errno"] == 1, seen  # EPERM
    assert zygote is not None and zygote.alive() and warm._zygote is zygote
    after = warm.start(CONFIG)
    assert run(after, "result = 41 + 1", "result") == 42
    after.kill()
    assert warm._zygote is zygote  # the same zygote served on


def test_a_dead_zygote_is_replaced(warm: WarmSandbox) -> None:
    process = warm.start(CONFIG)
    run(process, "result = 1", "result")
    assert warm._zygote is not None
    warm._zygote.kill()  # as if it had crashed
    process.kill()
    fresh = warm.start(CONFIG)
    assert run(fresh, "result = 41 + 1", "result") == 42
    fresh.kill()


def test_the_zygote_refuses_to_run_outside_a_pid_namespace() -> None:
    # Started directly on the host its reaping would kill the host's processes.
    code = textwrap.dedent("""
        import socket, sys
        from autograder.runtime import wire, zygote
        a, b = socket.socketpair()
        import threading
        threading.Thread(target=zygote.main, args=(b, 65536), daemon=True).start()
        message, _ = wire.recv_frame(a, 65536, None)
        print(message.get("event"))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "refused", done.stdout + done.stderr


def test_warm_up_starts_the_zygote_ahead_and_start_uses_it(warm: WarmSandbox) -> None:
    warm.warm_up(CONFIG)
    assert warm._starting is not None and warm._zygote is None
    pending = warm._starting[0]
    process = warm.start(CONFIG)
    assert warm._zygote is not None and warm._zygote.process is pending
    assert run(process, "result = 6 * 7", "result") == 42
    process.kill()
    warm.warm_up(CONFIG)  # already warm: nothing new is started
    assert warm._starting is None


def test_a_warm_up_for_other_limits_is_discarded(warm: WarmSandbox) -> None:
    warm.warm_up(LaunchConfig(memory_mb=512, max_processes=32, scratch_mb=32))
    pending = warm._starting[0] if warm._starting else None
    process = warm.start(CONFIG)
    assert pending is not None and not pending.alive()
    assert run(process, "result = 1", "result") == 1
    process.kill()


def test_preloaded_modules_are_inherited_and_their_scratch_files_wiped(
    warm: WarmSandbox,
) -> None:
    # matplotlib writes its font cache below MPLCONFIGDIR (in the scratch /tmp) on import.
    config = dataclasses.replace(CONFIG, preload=("matplotlib.pyplot",))
    first = warm.start(config)
    seen = run(
        first,
        """
        import os, sys
        inherited = "matplotlib.pyplot" in sys.modules
        cache = os.environ["MPLCONFIGDIR"]
        os.makedirs(cache, exist_ok=True)
        open(os.path.join(cache, "planted"), "w").write("for the next student")
        result = [inherited, cache]
        """,
        "result",
    )
    first.kill()
    assert seen[0] is True
    second = warm.start(config)
    found = run(second, f"import os\nresult = os.path.exists({seen[1]!r} + '/planted')", "result")
    second.kill()
    assert found is False


@pytest.mark.slow
def test_a_warm_docker_sandbox_keeps_one_container_and_measures_each_submission() -> None:
    require_docker()
    warm = WarmSandbox(DockerSandbox())
    assert warm.name == "docker"
    try:
        big = warm.start(CONFIG)
        run(big, "import torch\nblock = torch.ones(200 * 2**20 // 4)\nblock += 1")
        big.kill()
        peaks = [big.peak_memory_mb()]  # as the session reads it: once its runtime is gone
        small = warm.start(CONFIG)
        assert run(small, "result = 6 * 7", "result") == 42
        small.kill()
        peaks.append(small.peak_memory_mb())
        ours = sandbox_containers(os.getpid())
        assert len(ours) == 1  # the zygote's container served both submissions
        # The peak is reset per submission: 200 MB of one student is not the next one's.
        assert peaks[0] is not None and peaks[1] is not None, peaks
        assert peaks[0] - peaks[1] > 150, peaks
    finally:
        warm.close()
    assert sandbox_containers(os.getpid()) == []


# --------------------------------------------------------------------------- spare zygotes
_box: WarmSandbox | None = None


def _adopt(spares: Claimable) -> None:
    # A pool worker's initializer, as grade's: claim a spare and make it the zygote.
    global _box
    _box = WarmSandbox(LocalSandbox())
    if (zygote := spares.claim()) is not None:
        _box.adopt(zygote)


def _grade_once() -> tuple[int, int]:
    assert _box is not None
    process = _box.start(CONFIG)
    value = run(process, "result = 6 * 7", "result")
    process.kill()
    assert _box._zygote is not None
    return _box._zygote.process.popen.pid, value


def _die() -> None:
    os._exit(1)  # a worker crash: nothing is closed in an orderly way


@pytest.fixture
def context() -> Any:
    require_isolation(bwrap_works(), "bubblewrap")
    require_isolation(cgroups_work(), "cgroups")
    return workers.context()


def test_workers_grade_with_the_zygotes_the_batch_started(context: Any) -> None:
    spares = Spares.launch(context, LocalSandbox(), CONFIG, 2)
    assert spares is not None
    zygotes = [launched.popen for launched in spares._launched]
    try:
        with workers.pool(context, 2, _adopt, (spares,)) as pool:
            first = [pool.submit(_grade_once) for _ in range(2)]  # both workers start
            spares.release()
            used = [f.result() for f in first] + [pool.submit(_grade_once).result()]
        assert spares.claimed.value == 2  # each worker claimed one
        assert all(value == 42 for _, value in used)
        assert {pid for pid, _ in used} <= {z.pid for z in zygotes}  # none started its own
    finally:
        spares.end()
    assert all(z.returncode is not None for z in zygotes)  # reaped


def test_a_spare_of_a_crashed_worker_ends_with_it(context: Any) -> None:
    spares = Spares.launch(context, LocalSandbox(), CONFIG, 1)
    assert spares is not None
    zygote = spares._launched[0]
    groups = zygote.group.dirs if zygote.group is not None else []
    try:
        with workers.pool(context, 1, _adopt, (spares,)) as pool:
            pool.submit(_grade_once).result()
            spares.release()
            with pytest.raises(BrokenProcessPool):
                pool.submit(_die).result()
        # Its worker's end closed with the crash: the zygote stops by itself.
        assert zygote.popen.wait(timeout=30) is not None
    finally:
        spares.end()
    assert not any(d.exists() for d in groups)  # its cgroup went with it


def test_a_spare_for_other_limits_is_replaced(context: Any) -> None:
    other = LaunchConfig(memory_mb=512, max_processes=32, scratch_mb=32)
    spares = Spares.launch(context, LocalSandbox(), other, 1)
    assert spares is not None
    spare = spares._launched[0].popen
    try:
        with workers.pool(context, 1, _adopt, (spares,)) as pool:
            pid, value = pool.submit(_grade_once).result()  # with CONFIG, not `other`
            spares.release()
            assert value == 42 and pid != spare.pid
            assert spare.wait(timeout=30) is not None  # killed by the worker
    finally:
        spares.end()
