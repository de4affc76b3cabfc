"""What the warm runtime does outside a sandbox: wait for killed processes, preload."""

from __future__ import annotations

import gc
import os
import signal
import time

import pytest

from autograder.runtime import server, zygote

needs_pidfd = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd here")


def _sleeper() -> int:
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    return pid


@needs_pidfd
def test_await_exits_wakes_when_a_killed_process_ends() -> None:
    pid = _sleeper()
    fd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    zygote._await_exits([fd], time.monotonic() + 10)
    assert time.monotonic() - started < 5  # not the deadline
    assert os.waitpid(pid, os.WNOHANG)[0] == pid  # exited: reaped at once
    with pytest.raises(OSError):
        os.fstat(fd)  # closed


@needs_pidfd
def test_await_exits_gives_up_at_the_deadline() -> None:
    pid = _sleeper()
    fd = os.pidfd_open(pid)
    try:
        started = time.monotonic()
        zygote._await_exits([fd], time.monotonic() + 0.2)
        waited = time.monotonic() - started
        assert 0.15 < waited < 5
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still running
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_while_preloading_then_as_before(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with server.collector_off():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
