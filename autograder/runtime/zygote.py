"""The warm runtime: imports torch once, then forks one fresh runtime per submission.

It runs inside the sandbox (same isolation as a single runtime) and never runs student
code itself. Per submission it forks a child that becomes an ordinary runtime, with its
own socket and output pipes handed to the grader (SCM_RIGHTS). When the grader is done
with a submission, `reap` kills every process in the sandbox but this one (daemons
included: they are all in this pid namespace), removes System V IPC objects and POSIX
message queues and wipes the scratch folders, so nothing of one student reaches the next.
The zygote is the namespace's PID 1 (no signal without a handler reaches it from inside)
and non-dumpable, so student code running as the same user cannot kill, ptrace or read it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import server, wire

SCRATCH = ("/tmp", "/dev/shm")
MQUEUE = Path("/dev/mqueue")
PR_SET_DUMPABLE = 4
IPC_RMID = 0


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library (opened once: the reap after every submission calls into it)."""
    return ctypes.CDLL(None, use_errno=True)


def _not_dumpable() -> None:
    with contextlib.suppress(OSError, AttributeError):
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def _ancestors() -> set[int]:
    keep = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        keep.add(pid)
    return keep


def _others() -> list[int]:
    keep = _ancestors()
    return [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) not in keep
    ]


def _kill_all_others(timeout: float = 5.0) -> int:
    killed = 0
    deadline = time.monotonic() + timeout
    while (pids := _others()) and time.monotonic() < deadline:
        dying = []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
            with contextlib.suppress(OSError, AttributeError):
                dying.append(os.pidfd_open(pid))
        _await_exits(dying, min(deadline, time.monotonic() + 0.1))
        _reap_children()
    return killed


def _await_exits(pidfds: list[int], deadline: float) -> None:
    """Wait until every process of `pidfds` has exited (or `deadline`); closes them.

    A killed runtime takes milliseconds to exit (the kernel unmaps a torch-sized address
    space): waking on its exit, instead of polling, keeps that off the next submission."""
    poller = select.poll()
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    waiting = len(pidfds)
    try:
        while waiting and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                waiting -= 1
        if not pidfds:  # no pidfds here (old kernel): a short pause before looking again
            time.sleep(0.002)
    finally:
        for fd in pidfds:
            os.close(fd)


def _reap_children() -> dict[int, int]:
    statuses = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return statuses
        if pid == 0:
            return statuses
        statuses[pid] = status


def _scratch_entries() -> set[Path]:
    """What the sandbox put in the scratch folders before the zygote started (mounts: the
    interpreter below /tmp, ./data): never touched by the wipe."""
    return {
        entry for folder in SCRATCH if Path(folder).is_dir() for entry in Path(folder).iterdir()
    }


def _wipe_scratch(keep: set[Path]) -> None:
    for folder in SCRATCH:
        root = Path(folder)
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if entry in keep or os.path.ismount(entry):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def _sysv_ids(kind: str) -> list[int] | None:
    """The ids of this IPC namespace's System V objects of `kind` (shm, sem, msg)."""
    try:
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
    except OSError:
        return None
    return [int(line.split()[1]) for line in lines if line.strip()]


def _remove_sysv() -> bool:
    """Remove every System V object in place (IPC_RMID); False when they cannot be listed.

    Direct calls instead of `ipcrm --all`: forking the torch-sized zygote for a helper cost
    more than the rest of the reap."""
    try:
        libc = _libc()
    except OSError:
        return False
    removers = {
        "shm": lambda i: libc.shmctl(i, IPC_RMID, None),
        "sem": lambda i: libc.semctl(i, 0, IPC_RMID),
        "msg": lambda i: libc.msgctl(i, IPC_RMID, None),
    }
    for kind, remove in removers.items():
        ids = _sysv_ids(kind)
        if ids is None:
            return False
        for ipc_id in ids:
            remove(ipc_id)
    return True


def _remove_ipc() -> None:
    if not _remove_sysv():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["ipcrm", "--all"], capture_output=True, timeout=5, check=False)
    # POSIX message queues live in the IPC namespace, not in a scratch folder.
    with contextlib.suppress(OSError):
        for queue in MQUEUE.iterdir():
            with contextlib.suppress(OSError):
                queue.unlink()


def _close_inherited(keep: int) -> None:
    """Close every descriptor the zygote holds but `keep` and stdio."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


class Zygote:
    def __init__(self, control: socket.socket, limit: int, keep: set[Path]) -> None:
        self.control = control
        self.limit = limit
        self.exits: dict[int, int] = {}
        self.keep = keep

    def send(self, message: dict[str, Any]) -> None:
        wire.send_frame(self.control, wire.pack(message, []), [], self.limit)

    def serve(self) -> None:
        self.send({"event": "ready", "pid": os.getpid(), "zygote": True})
        while True:
            try:
                message, _ = wire.recv_frame(self.control, self.limit)
            except wire.PeerClosed:
                return
            op = message.get("op")
            if op == "spawn":
                self.spawn()
            elif op == "reap":
                self.exits.update(_reap_children())
                killed = _kill_all_others()
                self.exits.update(_reap_children())
                _remove_ipc()
                _wipe_scratch(self.keep)
                self.send({"ok": True, "value": killed})
            elif op == "status":
                self.send({"ok": True, "value": self.status(message.get("pid"))})
            else:
                self.send({"ok": False, "error": {"kind": "protocol", "message": f"bad op {op!r}"}})

    def status(self, pid: Any) -> Any:
        if type(pid) is not int:
            return None
        deadline = time.monotonic() + 1.0
        while pid not in self.exits and time.monotonic() < deadline:
            self.exits.update(_reap_children())
            time.sleep(0.01)
        return self.exits.get(pid)

    def spawn(self) -> None:
        parent_end, child_end = socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: an ordinary runtime for one submission
            try:
                self.control.close()
                parent_end.close()
                os.close(out_r)
                os.close(err_r)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                os.close(out_w)
                os.close(err_w)
                _close_inherited(child_end.fileno())
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                server.prepare_gpu()
                server.Runtime(child_end, self.limit).serve()
            finally:
                os._exit(0)
        child_end.close()
        os.close(out_w)
        os.close(err_w)
        self.send({"ok": True, "value": pid})
        socket.send_fds(self.control, [b"\0"], [parent_end.fileno(), out_r, err_r])
        parent_end.close()
        os.close(out_r)
        os.close(err_r)


def _in_own_pid_namespace() -> bool:
    """True when this process is the init of its pid namespace (bubblewrap --as-pid-1)."""
    return os.getpid() == 1


def main(control: socket.socket, limit: int) -> None:
    if not _in_own_pid_namespace():
        # `reap` kills every process it can see: never outside a sandbox's pid namespace.
        wire.send_frame(control, wire.pack({"event": "refused"}, []), [], limit)
        return
    # As PID 1 the zygote receives, from inside its namespace, only the signals it has
    # handlers for: drop Python's SIGINT handler so student code cannot interrupt it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Taken before the imports: whatever they leave in the scratch folders (a module's
    # cache folder) is wiped after each submission like the rest, never a shared place.
    keep = _scratch_entries()
    server.preload(gpu=False)  # CUDA must first be touched after the fork, in the child
    # A garbage collection in a forked child walks every object inherited from here and
    # so copies their pages: about 0.1 s of CPU per collection with torch loaded. Frozen
    # objects are left out of collections.
    gc.freeze()
    _not_dumpable()
    Zygote(control, limit, keep).serve()
