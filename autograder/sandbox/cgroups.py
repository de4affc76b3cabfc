"""Per-sandbox control groups: a memory cap (swap included) and a process cap.

Works with cgroup v2 (unified) and v1 (one hierarchy per controller), creating a child
of the group this process lives in. Where neither can be written (no root, no delegation)
`create` returns None and the caller falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass
class ControlGroup:
    """One sandbox's groups: a shell joins them with `echo $$ > <each>/cgroup.procs`."""

    memory: Path | None
    pids: Path | None
    version: int
    dirs: list[Path] = field(default_factory=list)

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def pids_inside(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError):
                found.update(int(x) for x in procs.read_text().split())
        return found

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the group until none is left."""
        if self.version == 2 and self.dirs:
            with contextlib.suppress(OSError):
                (self.dirs[0] / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        while (pids := self.pids_inside()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def peak_memory_mb(self) -> float | None:
        if self.memory is None:
            return None
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            with contextlib.suppress(OSError, ValueError):
                return int((self.memory / name).read_text()) / 2**20
        return None

    def out_of_memory(self) -> bool:
        """Whether the kernel killed something here for lack of memory."""
        return self.oom_kills() > 0

    def oom_kills(self) -> int:
        """How many processes the kernel killed here for lack of memory, so far."""
        if self.memory is None:
            return 0
        with contextlib.suppress(OSError, ValueError):
            # v2 counts kills in memory.events, v1 in memory.oom_control (kernel >= 4.13);
            # v1's failcnt only counts hits of the limit (and stays 0 on some kernels).
            events = "memory.events" if self.version == 2 else "memory.oom_control"
            for line in (self.memory / events).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
            if self.version == 1:  # older kernels: no kill count
                return int((self.memory / "memory.failcnt").read_text())
        return 0

    def reset_peak(self) -> None:
        """Start a new peak-memory measurement (one per submission in a warm sandbox)."""
        if self.memory is not None:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                with contextlib.suppress(OSError):
                    (self.memory / name).write_text("0")

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _own_path(controller: str | None) -> str | None:
    """This process's cgroup path for a v1 controller, or the v2 path when None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller is None and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return None


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


def _create_v2(name: str, memory_bytes: int, max_pids: int) -> ControlGroup | None:
    own = _own_path(None)
    if own is None or not (ROOT / "cgroup.controllers").exists():
        return None
    parent = ROOT / own.lstrip("/")
    group = parent / name
    try:
        group.mkdir()
    except OSError:
        return None
    cg = ControlGroup(memory=None, pids=None, version=2, dirs=[group])
    if _write(group / "memory.max", str(memory_bytes)):
        _write(group / "memory.swap.max", "0")
        cg.memory = group
    if _write(group / "pids.max", str(max_pids)):
        cg.pids = group
    if cg.memory is None and cg.pids is None:
        cg.remove()
        return None
    return cg


def _create_v1(name: str, memory_bytes: int, max_pids: int) -> ControlGroup | None:
    cg = ControlGroup(memory=None, pids=None, version=1)
    for controller in ("memory", "pids"):
        own = _own_path(controller)
        base = ROOT / controller
        if own is None or not base.is_dir():
            continue
        group = base / own.lstrip("/") / name
        try:
            group.mkdir()
        except OSError:
            continue
        cg.dirs.append(group)
        if controller == "memory" and _write(group / "memory.limit_in_bytes", str(memory_bytes)):
            # Swap equal to the limit: memsw counts memory + swap together.
            _write(group / "memory.memsw.limit_in_bytes", str(memory_bytes))
            cg.memory = group
        if controller == "pids" and _write(group / "pids.max", str(max_pids)):
            cg.pids = group
    if cg.memory is None and cg.pids is None:
        cg.remove()
        return None
    return cg


def remove_stale(min_age_s: float = 120.0) -> int:
    """Remove empty sandbox groups left by a grader that was killed (kill -9).

    Only groups older than `min_age_s`: a fresh one may be waiting for its process.
    """
    removed = 0
    parents = []
    own = _own_path(None)
    if own is not None and (ROOT / "cgroup.controllers").exists():
        parents.append(ROOT / own.lstrip("/"))
    for controller in ("memory", "pids"):
        own_v1 = _own_path(controller)
        if own_v1 is not None and (ROOT / controller).is_dir():
            parents.append(ROOT / controller / own_v1.lstrip("/"))
    now = time.time()
    for parent in parents:
        with contextlib.suppress(OSError):
            for group in parent.glob("autograder-*"):
                with contextlib.suppress(OSError):
                    if now - group.stat().st_ctime < min_age_s:
                        continue
                    if (group / "cgroup.procs").read_text().strip():
                        continue
                    group.rmdir()
                    removed += 1
    return removed


def create(memory_mb: int, max_pids: int) -> ControlGroup | None:
    """A fresh group with the given caps, or None where cgroups cannot be used."""
    name = f"autograder-{uuid.uuid4().hex[:12]}"
    memory_bytes = memory_mb * 2**20
    return _create_v2(name, memory_bytes, max_pids) or _create_v1(name, memory_bytes, max_pids)
