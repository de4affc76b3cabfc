"""The local sandbox: a child process isolated with bubblewrap, cgroups and rlimits.

bubblewrap gives the runtime new user, pid, network, ipc and uts namespaces, an
allow-list view of the filesystem (the system's /usr and the Python installation,
read-only), a size-capped tmpfs as its only writable place and no capabilities.
A control group caps memory (swap included) and processes; rlimits cap open files,
file size and CPU time. Killing the bubblewrap process tears down the pid namespace,
so every process the student started dies with it, daemons included.

Where bubblewrap or cgroups are missing, the runtime still runs (with rlimits, in a
private temporary folder), and `missing()` lists what is not enforced.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import autograder.runtime as runtime_package
from autograder.sandbox import cgroups
from autograder.sandbox.base import (
    BOOT,
    RUNTIME_MOUNT,
    RUNTIME_PACKAGE,
    CappedOutput,
    LaunchConfig,
    runtime_env,
)

SANDBOX_UID = 65534
# What the runtime's interpreter needs from /etc; nothing else of the host's config is shown.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives")


def python_paths() -> list[Path]:
    """Folders the runtime's interpreter needs: its prefix, stdlib and site-packages."""
    candidates = {
        Path(sys.base_prefix),
        Path(sys.prefix),
        Path(sysconfig.get_paths()["stdlib"]),
        Path(sysconfig.get_paths()["platstdlib"]),
        Path(sysconfig.get_paths()["purelib"]),
        Path(sysconfig.get_paths()["platlib"]),
        Path(sys.executable).resolve().parent.parent,
        *(Path(p) for p in site.getsitepackages()),
    }
    resolved = sorted({p.resolve() for p in candidates if p.exists()}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in resolved:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    # Paths under /usr are already visible through the /usr mount.
    return [p for p in kept if not p.is_relative_to("/usr")]


# Where a virtualenv is shown inside the sandbox. Its host path usually lies inside the
# grader's checkout or home, and mounting it there would show those folders' names.
VENV_MOUNT = Path("/opt/venv")


def _venv() -> Path | None:
    """The grader's virtualenv, when it runs in one whose interpreter lives inside it."""
    prefix = Path(sys.prefix)
    if prefix.resolve() == Path(sys.base_prefix).resolve():
        return None
    if not Path(sys.executable).is_relative_to(prefix):
        return None
    return prefix.resolve()


def sandbox_path(host: Path) -> Path:
    """Where a host path of the interpreter is mounted inside the sandbox."""
    venv = _venv()
    if venv is not None and host.is_relative_to(venv):
        return VENV_MOUNT / host.relative_to(venv)
    return host


def sandbox_python() -> str:
    """The interpreter's path inside the sandbox (its venv's, so the venv's packages load)."""
    venv = _venv()
    if venv is None:
        return sys.executable
    return str(VENV_MOUNT / Path(sys.executable).relative_to(sys.prefix))


@functools.cache
def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def bwrap_works() -> bool:
    """Whether bubblewrap can create the namespaces we need on this machine."""
    exe = bwrap_path()
    if exe is None:
        return False
    args = [exe, *_namespace_args(), "--tmpfs", "/tmp", "/usr/bin/true"]
    try:
        return subprocess.run(args, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def cgroups_work() -> bool:
    group = cgroups.create(64, 16)
    if group is None:
        return False
    ok = group.memory is not None and group.pids is not None
    group.remove()
    return ok


def _namespace_args() -> list[str]:
    """New namespaces, an unprivileged uid, no capabilities, the system read-only."""
    return [
        "--unshare-all",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
        *_root_links(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]


def _root_links() -> list[str]:
    """/bin, /lib... as on the host: symlinks into /usr on merged-usr systems, else mounts."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


@dataclass
class Launched:
    """A runtime's process just started, with its control socket (the grader's end)."""

    popen: subprocess.Popen[bytes]
    sock: socket.socket
    group: cgroups.ControlGroup | None
    scratch: Path | None  # host folder, only without bubblewrap

    def end(self) -> None:
        """Kill the runtime and everything it started, then remove its cgroup and scratch."""
        _end(self.popen, self.group, self.scratch)


def _end(popen: Any, group: cgroups.ControlGroup | None, scratch: Path | None) -> None:
    # `popen`: a subprocess.Popen, or what warm.py gives for a process another one started.
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            popen.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=10)
    if group is not None:
        group.remove()
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class LocalProcess:
    popen: subprocess.Popen[bytes]
    sock: socket.socket
    stdout: CappedOutput
    stderr: CappedOutput
    config: LaunchConfig
    group: cgroups.ControlGroup | None
    scratch: Path | None  # host folder, only without bubblewrap
    _killed: bool = field(default=False)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if not self._killed:
            self._killed = True
            with contextlib.suppress(OSError):
                self.sock.close()
        _end(self.popen, self.group, self.scratch)

    def output(self) -> tuple[str, str]:
        wait = 2.0 if self.popen.poll() is not None else 0.0
        return self.stdout.text(wait), self.stderr.text(wait)

    def exit_reason(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            # The socket closes a moment before the process is reaped.
            self.popen.wait(timeout=1.0)
        code = self.popen.poll()
        if self.group is not None and self.group.out_of_memory():
            return f"killed: out of memory (limit {self.config.memory_mb} MB)"
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        if code > 128 and code - 128 in signal.Signals._value2member_map_:
            return f"killed by signal {signal.Signals(code - 128).name}"
        return f"exited with status {code}"

    def peak_memory_mb(self) -> float | None:
        return self.group.peak_memory_mb() if self.group is not None else None


class LocalSandbox:
    """Runs the student runtime as an isolated child process of the grader."""

    name = "local"

    def __init__(self, mask: tuple[Path, ...] = ()) -> None:
        # Paths that must stay invisible even if they lie inside a mounted folder.
        self.mask = tuple(p.resolve() for p in mask)
        cgroups.remove_stale()

    def missing(self) -> list[str]:
        """What this machine cannot enforce, as advice for the instructor."""
        gaps = []
        if bwrap_path() is None:
            gaps.append(
                "bubblewrap is not installed: student code can read files (hidden tests, "
                "reference solutions) and use the network; install it (apt-get install bubblewrap)"
            )
        elif not bwrap_works():
            gaps.append(
                "bubblewrap cannot create user namespaces here: student code can read files "
                "and use the network; enable unprivileged user namespaces or run as root"
            )
        if not cgroups_work():
            gaps.append(
                "cgroups are not writable: memory is capped with RLIMIT_AS and processes are "
                "not capped or reliably killed; run as root or delegate a cgroup"
            )
        return gaps

    def isolation(self) -> str:
        parts = []
        if bwrap_works():
            parts.append(
                "bubblewrap (user/pid/net/ipc/uts namespaces, read-only system, tmpfs scratch)"
            )
        else:
            parts.append("NO namespace isolation")
        parts.append("cgroup memory+pids caps" if cgroups_work() else "rlimits only (no cgroups)")
        return ", ".join(parts)

    def start(self, config: LaunchConfig, mode: str = "single") -> LocalProcess:
        """Start a runtime; `mode="zygote"` starts the warm runtime of `warm.WarmSandbox`."""
        launched = self.launch(config, mode)
        assert launched.popen.stdout is not None and launched.popen.stderr is not None
        return LocalProcess(
            popen=launched.popen,
            sock=launched.sock,
            stdout=CappedOutput(launched.popen.stdout, config.output_bytes),
            stderr=CappedOutput(launched.popen.stderr, config.output_bytes),
            config=config,
            group=launched.group,
            scratch=launched.scratch,
        )

    def launch(self, config: LaunchConfig, mode: str = "single") -> Launched:
        """Start a runtime's process; nothing reads its output yet (see `start`)."""
        parent_sock, child_sock = socket.socketpair()
        group = cgroups.create(config.memory_mb, config.max_processes) if cgroups_work() else None
        scratch = None
        isolated = bwrap_works()
        if isolated:
            inner = self._bwrap_args(config, mode)
            cwd = "/"
        else:
            scratch = Path(tempfile.mkdtemp(prefix="autograder-scratch-"))
            (scratch / "home").mkdir()
            inner = [
                sys.executable,
                "-s",
                "-E",
                "-c",
                BOOT,
                str(Path(runtime_package.__file__).parent.parent),
                "runtime",
            ]
            cwd = str(scratch)
        command = [
            "/bin/sh",
            "-c",
            _JOIN_AND_EXEC,
            "sh",
            " ".join(str(p) for p in (group.procs_files() if group else [])),
            *self._prlimit_args(config, group),
            *inner,
            str(child_sock.fileno()),
            str(config.message_bytes),
            mode,
        ]
        env = runtime_env(config, home="/tmp" if isolated else str(scratch / "home"))
        try:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(child_sock.fileno(),),
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError:
            parent_sock.close()
            child_sock.close()
            if group is not None:
                group.remove()
            raise
        child_sock.close()
        return Launched(popen, parent_sock, group, scratch)

    def _bwrap_args(self, config: LaunchConfig, mode: str = "single") -> list[str]:
        exe = bwrap_path()
        assert exe is not None
        args = [
            exe,
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            *_namespace_args(),
            # The scratch tmpfs first: the interpreter may live below /tmp (a venv) and is
            # mounted on top of it, read-only.
            "--size",
            str(config.scratch_mb * 2**20),
            "--tmpfs",
            "/tmp",
            "--chdir",
            "/tmp",
        ]
        for name in ETC_FILES:
            host = Path("/etc") / name
            if host.exists():
                args += ["--ro-bind", str(host), str(host)]
        mounted = python_paths()
        for path in mounted:
            args += ["--ro-bind", str(path), str(sandbox_path(path))]
        for path in self.mask:
            if any(path.is_relative_to(p) for p in [*mounted, Path("/usr")]):
                args += ["--tmpfs", str(sandbox_path(path))]
        if config.data_dir is not None:
            args += ["--ro-bind", str(config.data_dir), "/tmp/data"]
        args += [
            "--ro-bind",
            str(Path(runtime_package.__file__).parent),
            str(RUNTIME_MOUNT / RUNTIME_PACKAGE),
        ]
        args += _gpu_device_args(config)
        if mode == "zygote":
            # The zygote outlives submissions, so nothing long-lived in the sandbox may be
            # reachable by student code: it runs as PID 1 itself (no bubblewrap init, which
            # is dumpable and would run as the student's uid), where it is immune to
            # signals it has no handler for and, being non-dumpable, to ptrace and
            # /proc/1/mem. POSIX message queues get a mount of their own, so the zygote
            # can list and remove them between submissions.
            args += ["--as-pid-1", "--mqueue", "/dev/mqueue"]
        # bubblewrap's own root and /dev are writable tmpfs without a size cap: make them
        # read-only, leaving /dev/shm as a capped tmpfs (torch and multiprocessing use it).
        args += [
            "--size",
            str(config.scratch_mb * 2**20),
            "--tmpfs",
            "/dev/shm",
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
        ]
        args += [sandbox_python(), "-s", "-E", "-c", BOOT, str(RUNTIME_MOUNT), RUNTIME_PACKAGE]
        return args

    @staticmethod
    def _prlimit_args(config: LaunchConfig, group: cgroups.ControlGroup | None) -> list[str]:
        limits = [
            f"--nofile={config.max_open_files}:{config.max_open_files}",
            f"--fsize={config.scratch_mb * 2**20}:{config.scratch_mb * 2**20}",
            "--core=0:0",
        ]
        if config.cpu_seconds is not None:
            limits.append(f"--cpu={config.cpu_seconds}:{config.cpu_seconds}")
        if (group is None or group.memory is None) and config.gpu is None:
            # Address space is a poor proxy for memory, but better than nothing (CUDA
            # reserves huge address ranges, hence not with a GPU).
            cap = (config.memory_mb + 1024) * 2**20
            limits.append(f"--as={cap}:{cap}")
        return ["prlimit", *limits, "--"]


# Join the sandbox's cgroups before anything else runs, so no child can escape them.
_JOIN_AND_EXEC = 'for f in $1; do echo $$ > "$f" || exit 97; done; shift; exec "$@"'


def _gpu_device_args(config: LaunchConfig) -> list[str]:
    if config.gpu is None:
        return []
    args: list[str] = []
    for dev in sorted(Path("/dev").glob("nvidia*")):
        args += ["--dev-bind", str(dev), str(dev)]
    for extra in (Path("/proc/driver/nvidia"), Path("/sys")):
        if extra.exists():
            args += ["--ro-bind", str(extra), str(extra)]
    return args
