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
    processes: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (cmd, MB)


class Sampler:
    """Samples the resident memory of every descendant of this process, every SAMPLE_S."""

    def __init__(self) -> None:
        self.usage = Usage(sampled=psutil is not None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
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
