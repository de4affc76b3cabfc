"""The sandbox extension point: what the grader needs from any isolation technology.

A `Sandbox` starts one student runtime per call to `start`. The grader talks to the
runtime over `SandboxProcess.sock` (the wire protocol) and, when it is done or gives
up, calls `kill`, which must leave nothing behind: no process, no file, no mount.
Implementations: `local` (bubblewrap + cgroups + rlimits, the default); `docker` later.
Sandboxes know nothing of gradebooks, specs' questions or hidden tests.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

# Where every sandbox mounts the runtime package, and how its interpreter starts it.
RUNTIME_MOUNT = Path("/opt/autograder")
RUNTIME_PACKAGE = "autograder_runtime"
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "import importlib; importlib.import_module(sys.argv[2] + '.entry').main(sys.argv[3:])"
)


@dataclass(frozen=True)
class LaunchConfig:
    """Everything a sandbox needs to start one runtime."""

    memory_mb: int = 4096
    max_processes: int = 256
    scratch_mb: int = 1024
    output_bytes: int = 1024 * 1024
    max_open_files: int = 1024
    message_bytes: int = 64 * 2**20
    threads: int = 1
    cpu_seconds: int | None = None  # CPU time of the whole run; None: derived from wall time
    data_dir: Path | None = None  # mounted read-only as ./data
    gpu: str | None = None  # CUDA_VISIBLE_DEVICES for this runtime; None hides every GPU
    gpu_memory_fraction: float | None = None
    preload: tuple[str, ...] = ()  # modules the runtime imports before the notebook runs


class SandboxProcess(Protocol):
    """A running runtime. `kill` is idempotent and safe from any thread."""

    sock: socket.socket

    def alive(self) -> bool: ...

    def kill(self) -> None: ...

    def output(self) -> tuple[str, str]:
        """Captured (stdout, stderr), each capped at `output_bytes` with a note when cut."""
        ...

    def exit_reason(self) -> str:
        """Why the runtime stopped, in words ("killed: out of memory (limit 4096 MB)")."""
        ...

    def peak_memory_mb(self) -> float | None: ...


class Sandbox(Protocol):
    name: str

    def missing(self) -> list[str]:
        """What this sandbox cannot enforce on this machine, as advice (empty: everything)."""
        ...

    def isolation(self) -> str:
        """One line saying what isolation this sandbox achieves on this machine."""
        ...

    def start(self, config: LaunchConfig) -> SandboxProcess: ...


class CappedOutput:
    """Drains a pipe in a thread, keeping the first `limit` bytes and counting the rest."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0
        self._stream = stream
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while chunk := self._stream.read1(65536):
                room = self.limit - len(self.data)
                if room > 0:
                    self.data += chunk[:room]
                self.dropped += max(0, len(chunk) - max(room, 0))
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self._stream.close()  # at EOF: every writer is gone

    def text(self, wait: float = 0.0) -> str:
        if wait:
            self._thread.join(wait)
        text = self.data.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[... {self.dropped} more bytes of output not kept]"
        return text


def runtime_env(config: LaunchConfig, home: str) -> dict[str, str]:
    """The runtime's whole environment: nothing of the grader's leaks in."""
    threads = str(config.threads)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "AUTOGRADER_THREADS": threads,
    }
    if config.gpu != "all":
        env["CUDA_VISIBLE_DEVICES"] = config.gpu or ""
    if config.gpu is not None and "LD_LIBRARY_PATH" in os.environ:
        env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]  # where the CUDA driver lives
    if config.gpu_memory_fraction is not None:
        env["AUTOGRADER_GPU_MEMORY_FRACTION"] = str(config.gpu_memory_fraction)
    if config.preload:
        env["AUTOGRADER_PRELOAD"] = ",".join(config.preload)
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (ours or not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
