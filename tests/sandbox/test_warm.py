"""The warm sandbox: runtimes forked from one zygote must be as separate as fresh sandboxes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from autograder.runtime import wire
from autograder.sandbox import LaunchConfig, LocalSandbox
from autograder.sandbox.local import bwrap_works, cgroups_work
from autograder.sandbox.warm import WarmSandbox
from tests.conftest import require_isolation

CONFIG = LaunchConfig(memory_mb=1024, max_processes=64, scratch_mb=64, output_bytes=4096)


@pytest.fixture
def warm() -> Iterator[WarmSandbox]:
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
result = [os.getpid(), shm_id]
"""

LOOK = """
import os, random, torch
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
result = {
    "tmp": sorted(os.listdir("/tmp")),
    "shm": sorted(os.listdir("/dev/shm")),
    "pids": pids,
    "sysv": open("/proc/sysvipc/shm").read().splitlines()[1:],
    "draw": [random.random(), float(torch.rand(1))],
    "me": os.getpid(),
}
"""


def test_nothing_of_one_submission_reaches_the_next(warm: WarmSandbox) -> None:
    first = warm.start(CONFIG)
    planted_pid, shm_id = run(first, PLANT, "result")
    assert shm_id >= 0
    zygote_pid = warm._zygote.process.popen.pid if warm._zygote else None
    first.kill()
    second = warm.start(CONFIG)
    seen = run(second, LOOK, "result")
    second.kill()
    third = warm.start(CONFIG)
    again = run(third, LOOK, "result")
    third.kill()
    assert "planted.py" not in seen["tmp"] and seen["shm"] == []
    assert seen["sysv"] == []
    # Only the sandbox's init, the zygote and the runtime itself are left.
    assert len(seen["pids"]) <= 3 and planted_pid not in seen["pids"]
    assert seen["me"] != planted_pid and zygote_pid is not None
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


def test_a_dead_zygote_is_replaced(warm: WarmSandbox) -> None:
    process = warm.start(CONFIG)
    run(process, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
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
