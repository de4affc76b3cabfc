"""Running one method: wall time, CPU time of the processes it started, sampled memory."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import psutil
except ImportError:  # the report says that memory was not sampled
    psutil = None

SAMPLE_S = 0.1


@dataclass
class Usage:
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system of every finished descendant
    peak_total_mb: float | None = None  # largest sum of RSS over our descendants at one time
    peak_kernel_mb: float | None = None  # largest RSS of one Jupyter kernel process
    sampled: bool = False
    cpu_complete: bool = False  # every descendant counted (a cgroup), not only waited ones
    processes: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (cmd, MB)


class Sampler:
    """Samples the resident memory of every descendant of this process, every SAMPLE_S."""

    def __init__(self) -> None:
        self.usage = Usage(sampled=psutil is not None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._group = CpuGroup.join()
        self._own0 = time.process_time()
        self._cpu0 = _children_cpu()
        self._t0 = time.monotonic()
        if psutil is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.usage.wall_s = time.monotonic() - self._t0
        self._stop.set()
        if psutil is not None:
            self._thread.join()
        self.usage.cpu_s = _children_cpu() - self._cpu0
        if self._group is not None:
            own = time.process_time() - self._own0
            total = self._group.leave()
            if total is not None:
                self.usage.cpu_s = max(0.0, total - own)
                self.usage.cpu_complete = True
        kernels = [mb for cmd, mb in self.usage.processes.values() if "ipykernel" in cmd]
        self.usage.peak_kernel_mb = max(kernels) if kernels else None

    def _run(self) -> None:
        assert psutil is not None
        me = psutil.Process(os.getpid())
        seen = self.usage.processes
        while not self._stop.wait(SAMPLE_S):
            total = 0.0
            try:
                children = me.children(recursive=True)
            except psutil.Error:
                continue
            for child in children:
                try:
                    mb = child.memory_info().rss / 2**20
                    if child.pid not in seen:
                        seen[child.pid] = (" ".join(child.cmdline())[:300], mb)
                except psutil.Error:
                    continue
                total += mb
                cmd, old = seen[child.pid]
                if mb > old:
                    seen[child.pid] = (cmd, mb)
            if self.usage.peak_total_mb is None or total > self.usage.peak_total_mb:
                self.usage.peak_total_mb = total


class CpuGroup:
    """A cgroup v1 `cpuacct` group this process joins while a method runs: every process
    the method starts is counted, also those nobody waits for (e.g. a fork server and the
    workers it forks), which `RUSAGE_CHILDREN` misses. Not with cgroup v2, where a group
    holding processes cannot get child groups with controllers (our sandboxes make some)."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def join(cls) -> CpuGroup | None:
        path = cls.ROOT / f"autograder-bench-{os.getpid()}-{time.monotonic_ns()}"
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            path.rmdir()
            return None
        return cls(path)

    def leave(self) -> float | None:
        """Seconds of CPU used in the group (this process included), once the processes
        the method left behind have exited; None if they did not within 30 s."""
        with contextlib.suppress(OSError):
            (self.ROOT / "cgroup.procs").write_text(str(os.getpid()))
        deadline = time.monotonic() + 30
        while (self.path / "cgroup.procs").read_text().strip():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        total = int((self.path / "cpuacct.usage").read_text()) / 1e9
        with contextlib.suppress(OSError):
            self.path.rmdir()
        return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], timeout: float, log: Any, **kwargs: Any) -> int:
    """Run a command, its output to `log` (a file); returns its exit status (124: timeout,
    after which its whole process group is killed)."""
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
    )
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return 124


def measured(body: Callable[[], Any]) -> tuple[Any, Usage]:
    with Sampler() as sampler:
        result = body()
    return result, sampler.usage
