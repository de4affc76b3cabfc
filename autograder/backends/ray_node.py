"""The node side of the Ray backend: the assignment shipped as a tar, and `GraderActor`.

Runs in Ray worker processes on the cluster's nodes (trusted side). `ray` is imported inside
functions only: the package imports without it.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath

import autograder
from autograder.backends.base import GraderFactory, Outcome
from autograder.course import Assignment
from autograder.errors import AutograderError
from autograder.grader.run import Grader
from autograder.sandbox.base import pid_alive

FOLDER_PREFIX = "autograder-ray-"
SKIPPED = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


# --------------------------------------------------------------------------- shipping
def pack(assignment: Assignment) -> bytes:
    """The assignment folder and its reference solution as one tar, laid out as a course."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if SKIPPED & set(PurePath(info.name).parts) else info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(assignment.folder, arcname=f"assignments/{assignment.name}", filter=keep)
        if assignment.reference_folder.is_dir():
            arcname = f"reference_solutions/{assignment.name}"
            tar.add(assignment.reference_folder, arcname=arcname, filter=keep)
    return buffer.getvalue()


def unpack(bundle: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        tar.extractall(dest, filter="data")  # no absolute paths, no links out of dest


def _file_name(name: str) -> str:
    """The submission's own file name (what error messages show), never a path."""
    base = PurePath(name).name
    return base if base not in ("", ".", "..") else "submission.ipynb"


def _portable(exc: Exception) -> Exception:
    """`exc` if it survives pickling to the driver, else its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _sweep_stale_folders() -> None:
    """Remove the folders of this node's graders that were killed (their process is gone)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
        with contextlib.suppress(OSError):
            if pid.isdigit() and folder.stat().st_uid == os.getuid() and not pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- the actor
@dataclass(frozen=True)
class NodeReport:
    """What a grader tells the driver once it is ready (or why it is not)."""

    node_id: str
    address: str
    sandbox: str
    isolation: str
    missing: list[str]
    gpu: str | None
    error: AutograderError | None

    @property
    def label(self) -> str:
        """The node, as notes name it (several nodes may share one address)."""
        return f"{self.address} (node {self.node_id[:8]})"


class GraderActor:
    """One grader on a Ray node, reused for many submissions (its warm pool lives on)."""

    def __init__(self, bundle: bytes, name: str, build: GraderFactory, version: str) -> None:
        import ray

        _sweep_stale_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        ids = ray.get_gpu_ids()
        self.gpu = ",".join(str(i) for i in ids) if ids else None
        self.grader: Grader | None = None
        self.error: AutograderError | None = None
        try:
            if version != autograder.__version__:
                raise AutograderError(
                    f"this node has autograder {autograder.__version__}, the driver {version}; "
                    "install the same version on every node"
                )
            course_root = self.folder / "course"
            unpack(bundle, course_root)
            self.grader = build(course_root, name, self.gpu)
        except AutograderError as exc:
            self.error = exc  # raised by the driver, which stops the batch with it

    def ready(self) -> NodeReport:
        import ray

        box = self.grader.sandbox if self.grader is not None else None
        return NodeReport(
            node_id=ray.get_runtime_context().get_node_id(),
            address=ray.util.get_node_ip_address(),
            sandbox=box.name if box else "",
            isolation=box.isolation() if box else "",
            missing=box.missing() if box else [],
            gpu=self.gpu,
            error=self.error,
        )

    def grade(
        self, student_id: str, file_name: str, data: bytes | None, size: int, content_hash: str
    ) -> Outcome:
        """Grade one notebook. `data` is None for a file over the size limit: a sparse file
        of its `size` gets the same refusal the grader gives on one machine."""
        if self.grader is None:
            return self.error or AutograderError("the grader did not start")
        folder = Path(tempfile.mkdtemp(prefix="submission-", dir=self.folder))
        path = folder / _file_name(file_name)
        try:
            if data is None:
                with path.open("wb") as f:
                    f.truncate(size)
            else:
                path.write_bytes(data)
            return self.grader.grade(student_id, path, content_hash)
        except Exception as exc:
            return _portable(exc)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
