"""The warm sandbox: one isolated zygote per worker, a fresh fork per submission.

Starting an interpreter and importing torch costs about a second per submission (more with
a container to create). Here a local sandbox (or a Docker container) is started once in
zygote mode (see runtime/zygote.py): inside the same isolation, it imports torch and forks
a child runtime per submission. Between two submissions every process in the sandbox but
the zygote is killed, System V IPC objects are removed and the scratch folders wiped, so
the trust boundary is the same as with a fresh sandbox: student code never runs in the
zygote, and nothing of one student reaches the next. If the zygote misbehaves (dies, hangs,
fails to reap), the whole sandbox is killed and a new one started.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing.util
import os
import select
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.reduction import DupFd
from typing import Any, Protocol

from autograder.runtime import wire
from autograder.sandbox import cgroups
from autograder.sandbox.base import CappedOutput, LaunchConfig
from autograder.sandbox.local import Launched, LocalProcess, LocalSandbox, bwrap_works

CONTROL_TIMEOUT = 30.0
STARTUP_TIMEOUT = 120.0


class ZygoteProcess(Protocol):
    """The zygote's process as its sandbox started it (`LocalProcess`, `DockerProcess`)."""

    sock: socket.socket
    group: cgroups.ControlGroup | None

    def alive(self) -> bool: ...

    def kill(self) -> None: ...

    def output(self) -> tuple[str, str]: ...

    def exit_reason(self) -> str: ...


@dataclass
class _Zygote:
    process: ZygoteProcess
    config: LaunchConfig

    def alive(self) -> bool:
        return self.process.alive()

    def kill(self) -> None:
        self.process.kill()

    def request(self, message: dict[str, Any]) -> Any:
        limit = self.config.message_bytes
        wire.send_frame(self.process.sock, wire.pack(message, []), [], limit)
        reply, _ = wire.recv_frame(self.process.sock, limit, time.monotonic() + CONTROL_TIMEOUT)
        if reply.get("ok") is not True:
            raise wire.WireError(f"the zygote refused {message.get('op')}: {reply.get('error')}")
        return reply.get("value")

    def spawn(self) -> tuple[int, socket.socket, int, int]:
        pid = self.request({"op": "spawn"})
        self.process.sock.settimeout(CONTROL_TIMEOUT)
        _, fds, _, _ = socket.recv_fds(self.process.sock, 1, 3)
        if type(pid) is not int or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            raise wire.WireError("the zygote did not hand over a runtime")
        return pid, socket.socket(fileno=fds[0]), fds[1], fds[2]


@dataclass
class ForkedProcess:
    """One submission's runtime, forked by the zygote."""

    zygote: _Zygote
    pid: int
    sock: socket.socket
    stdout: CappedOutput
    stderr: CappedOutput
    config: LaunchConfig
    oom_before: int
    sandbox: WarmSandbox
    _killed: bool = field(default=False)
    _status: Any = None

    def alive(self) -> bool:
        return not self._killed and self.zygote.alive()

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        with contextlib.suppress(OSError):
            self.sock.close()
        self.sandbox.reap(self.zygote)

    def output(self) -> tuple[str, str]:
        wait = 2.0 if self._killed else 0.0
        return self.stdout.text(wait), self.stderr.text(wait)

    def _exit_status(self) -> Any:
        if self._status is not None or self._killed or not self.zygote.alive():
            return self._status
        try:
            return self.zygote.request({"op": "status", "pid": self.pid})
        except (wire.WireError, OSError):
            return None

    def exit_reason(self) -> str:
        group = self.zygote.process.group
        if group is not None and group.oom_kills() > self.oom_before:
            return f"killed: out of memory (limit {self.config.memory_mb} MB)"
        status = self._exit_status()
        if type(status) is not int:
            return "still running" if self.alive() else "the sandbox was restarted"
        self._status = status
        if os.WIFSIGNALED(status):
            return f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exited with status {os.WEXITSTATUS(status)}"

    def peak_memory_mb(self) -> float | None:
        group = self.zygote.process.group
        return group.peak_memory_mb() if group is not None else None


class ZygoteHost(Protocol):
    """A sandbox that can start the warm runtime: `LocalSandbox`, `DockerSandbox`."""

    name: str

    def missing(self) -> list[str]: ...

    def isolation(self) -> str: ...

    def start(self, config: LaunchConfig, mode: str = "single") -> ZygoteProcess: ...


class WarmSandbox:
    """A sandbox whose runtimes are forked from a warm zygote (one per worker)."""

    def __init__(self, base: ZygoteHost) -> None:
        if isinstance(base, LocalSandbox) and not bwrap_works():
            # Reaping kills every other process the zygote can see: only safe in its own
            # pid namespace (a container has one of its own).
            raise ValueError("the warm sandbox needs bubblewrap's pid namespace")
        self.base = base
        self.name = base.name
        self._zygote: _Zygote | None = None
        self._starting: tuple[ZygoteProcess, LaunchConfig] | None = None
        # Worker processes end through multiprocessing, which skips atexit: register both,
        # so the zygote's cgroup is removed when the worker exits.
        atexit.register(self.close)
        multiprocessing.util.Finalize(None, self.close, exitpriority=10)

    def missing(self) -> list[str]:
        return self.base.missing()

    def isolation(self) -> str:
        return self.base.isolation() + ", warm pool (fork per submission)"

    def start(self, config: LaunchConfig) -> ForkedProcess:
        zygote = self._ready_zygote(config)
        group = zygote.process.group
        oom_before = group.oom_kills() if group is not None else 0
        if group is not None:
            group.reset_peak()
        try:
            pid, sock, out_fd, err_fd = zygote.spawn()
        except (wire.WireError, OSError) as exc:
            self.close()
            raise OSError(f"the warm sandbox failed to fork a runtime: {exc}") from None
        return ForkedProcess(
            zygote=zygote,
            pid=pid,
            sock=sock,
            stdout=CappedOutput(os.fdopen(out_fd, "rb"), config.output_bytes),
            stderr=CappedOutput(os.fdopen(err_fd, "rb"), config.output_bytes),
            config=config,
            oom_before=oom_before,
            sandbox=self,
        )

    def reap(self, zygote: _Zygote) -> None:
        """Kill everything of the last submission; a zygote that cannot do it is replaced."""
        try:
            zygote.request({"op": "reap"})
        except (wire.WireError, OSError):
            zygote.kill()
            if self._zygote is zygote:
                self._zygote = None

    def warm_up(self, config: LaunchConfig) -> None:
        """Start the zygote now, without waiting: it imports torch while the caller goes on
        (e.g. loads the reference); the first `start` waits for it."""
        if self._zygote is None and self._starting is None:
            self._starting = (self.base.start(config, mode="zygote"), config)

    def adopt(self, spare: SpareZygote) -> None:
        """Use `spare` (started by the batch process, see `Spares`) as this sandbox's
        zygote. One started for another configuration is killed by the first `start`."""
        self.close()
        process = AdoptedProcess(
            popen=_Foreign(spare.pid, spare.pidfd),
            sock=spare.sock,
            stdout=CappedOutput(os.fdopen(spare.stdout, "rb"), spare.config.output_bytes),
            stderr=CappedOutput(os.fdopen(spare.stderr, "rb"), spare.config.output_bytes),
            config=spare.config,
            group=spare.group,
            scratch=None,
        )
        self._starting = (process, spare.config)

    def close(self) -> None:
        if self._zygote is not None:
            self._zygote.kill()
            self._zygote = None
        if self._starting is not None:
            self._starting[0].kill()
            self._starting = None

    def _ready_zygote(self, config: LaunchConfig) -> _Zygote:
        current = self._zygote
        if current is not None and current.alive() and current.config == config:
            return current
        starting, self._starting = self._starting, None
        self.close()
        if starting is not None and (starting[1] != config or not starting[0].alive()):
            starting[0].kill()
            starting = None
        process = starting[0] if starting is not None else self.base.start(config, mode="zygote")
        try:
            ready, _ = wire.recv_frame(
                process.sock, config.message_bytes, time.monotonic() + STARTUP_TIMEOUT
            )
        except wire.WireError as exc:
            reason = process.exit_reason()
            _, err = process.output()
            process.kill()
            raise OSError(
                f"the warm sandbox did not start ({exc}; {reason}): {err[-1500:]}"
            ) from None
        if ready.get("zygote") is not True:
            process.kill()
            raise OSError("the warm sandbox did not start in zygote mode")
        self._zygote = _Zygote(process, config)
        return self._zygote


# --------------------------------------------------------------------------- spare zygotes
@dataclass
class SpareZygote:
    """A zygote started by the batch process for a worker: its ends, as the worker gets
    them (pickled with the pool's worker arguments, each descriptor duplicated)."""

    sock: socket.socket
    stdout: int
    stderr: int
    pidfd: int  # watches the zygote from a process that is not its parent
    pid: int
    group: cgroups.ControlGroup | None
    config: LaunchConfig

    def __reduce__(self) -> Any:
        fds = (DupFd(self.stdout), DupFd(self.stderr), DupFd(self.pidfd))
        return _spare_from, (self.sock, *fds, self.pid, self.group, self.config)

    def close(self) -> None:
        """Close a worker's ends of it (the zygote goes on while another process holds them)."""
        self.sock.close()
        for fd in (self.stdout, self.stderr, self.pidfd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _spare_from(
    sock: socket.socket,
    stdout: Any,
    stderr: Any,
    pidfd: Any,
    pid: int,
    group: cgroups.ControlGroup | None,
    config: LaunchConfig,
) -> SpareZygote:
    return SpareZygote(sock, stdout.detach(), stderr.detach(), pidfd.detach(), pid, group, config)


class Spares:
    """Zygotes the batch process starts before its workers exist, one per worker.

    A worker comes from a fork server that first imports the grading stack (about a
    second), and its zygote then imports torch (another second). Started by the batch
    process, the zygotes import torch while the fork server imports, instead of after.
    Each worker claims one (`claim`); the batch process stays their parent: `end` kills
    and reaps what is left of them. A zygote is the same sandbox whoever starts it.
    """

    def __init__(self, context: BaseContext, zygotes: list[SpareZygote]) -> None:
        self.zygotes = zygotes
        self.claimed = context.Value("i", 0)
        self._launched: list[Launched] = []

    @classmethod
    def launch(
        cls, context: BaseContext, base: LocalSandbox, config: LaunchConfig, count: int
    ) -> Spares | None:
        """`count` zygotes for `config`; None where a worker could not watch one (no pidfd)."""
        if not hasattr(os, "pidfd_open"):
            return None
        spares = cls(context, [])
        try:
            for _ in range(count):
                launched = base.launch(config, mode="zygote")
                spares._launched.append(launched)
                assert launched.popen.stdout is not None and launched.popen.stderr is not None
                spares.zygotes.append(
                    SpareZygote(
                        launched.sock,
                        launched.popen.stdout.fileno(),
                        launched.popen.stderr.fileno(),
                        os.pidfd_open(launched.popen.pid),
                        launched.popen.pid,
                        launched.group,
                        config,
                    )
                )
        except OSError:
            spares.end()
            return None
        return spares

    def __reduce__(self) -> Any:
        return _claimable, (self.zygotes, self.claimed)

    def release(self) -> None:
        """Close the batch process's ends once the workers hold theirs: a zygote must see
        its worker's end close when that worker dies."""
        for zygote in self.zygotes:
            zygote.sock.close()
            with contextlib.suppress(OSError):
                os.close(zygote.pidfd)
        self.zygotes = []
        for launched in self._launched:
            for pipe in (launched.popen.stdout, launched.popen.stderr):
                if pipe is not None:
                    pipe.close()  # the zygote's output pipes (`stdout`, `stderr` above)

    def end(self) -> None:
        """Kill the zygotes still running (a worker that never claimed one, or died) and
        reap them all."""
        self.release()
        for launched in self._launched:
            launched.end()
        self._launched = []


@dataclass
class Claimable:
    """`Spares` as a worker receives them: every zygote's ends, one of them its own."""

    zygotes: list[SpareZygote]
    claimed: Any  # a shared counter: the next zygote to claim

    def claim(self) -> SpareZygote | None:
        """This worker's zygote, None when none is left; the others' ends are closed."""
        with self.claimed.get_lock():
            index = self.claimed.value
            self.claimed.value += 1
        mine = self.zygotes[index] if index < len(self.zygotes) else None
        for zygote in self.zygotes:
            if zygote is not mine:
                zygote.close()
        return mine


def _claimable(zygotes: list[SpareZygote], claimed: Any) -> Claimable:
    return Claimable(zygotes, claimed)


class _Foreign:
    """What `LocalProcess` needs of a `Popen`, for a process another process started: it
    is watched through a pidfd and killed by pid; its exit status goes to its parent."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.returncode: int | None = None

    def _ended(self, timeout: float) -> bool:
        try:
            return bool(select.select([self.pidfd], [], [], timeout)[0])
        except (OSError, ValueError):
            return True

    def poll(self) -> int | None:
        if self.returncode is None and self._ended(0):
            self.returncode = ENDED_ELSEWHERE
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and not self._ended(timeout if timeout is not None else 1e9):
            raise subprocess.TimeoutExpired("zygote", timeout or 0)
        code = self.poll()
        assert code is not None
        return code

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)


ENDED_ELSEWHERE = -1  # a process whose exit status only its parent knows


@dataclass
class AdoptedProcess(LocalProcess):
    """A zygote this process did not start (see `Spares`)."""

    def exit_reason(self) -> str:
        if self.group is not None and self.group.out_of_memory():
            return f"killed: out of memory (limit {self.config.memory_mb} MB)"
        if self.popen.poll() is None:
            return "still running"
        return "ended (the batch process that started it has its exit status)"
