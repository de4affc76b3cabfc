"""One submission's life in a sandbox: start, run the notebook, answer tests, restart.

The session runs the notebook's code cells once, then serves the hidden tests'
requests. A cell that hangs or kills the process is recorded, skipped, and the
notebook is run again without it, so later functions can still be graded. A call
that hangs or crashes kills the sandbox; the next test gets a fresh one (up to
`max_restarts`), so a broken `train` never costs the `predict` points.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from autograder.errors import SandboxError
from autograder.grader.proxy import (
    BadValue,
    ForbiddenAPI,
    Handle,
    MissingName,
    SandboxCrashed,
    StudentCodeError,
    StudentTimeout,
)
from autograder.results import CellRecord
from autograder.runtime import wire
from autograder.sandbox.base import LaunchConfig, Sandbox, SandboxProcess
from autograder.spec import Limits

STARTUP_TIMEOUT = 120.0
TEXT_CAP = 2000


@dataclass
class _Pending:
    """The cell the runtime said it started last (for blame when it hangs or dies)."""

    index: int | None = None


class StudentSession:
    def __init__(
        self,
        sandbox: Sandbox,
        cells: list[dict[str, Any]],
        config: LaunchConfig,
        limits: Limits,
        seed: int,
    ) -> None:
        self.sandbox = sandbox
        self.cells = cells
        self._cell_indices = {c["index"] for c in cells}
        self.config = config
        self.limits = limits
        self.seed_value = seed
        self.process: SandboxProcess | None = None
        self.generation = 0
        self.restarts = 0
        self.skip: set[int] = set()
        self.cell_records: dict[int, CellRecord] = {}
        self.timed_out = False
        self.broken: str | None = None
        self.deadline: float | None = None  # end of the current test's time
        self.pending_seed: int | None = None
        self.forbid: list[str] = []  # APIs disabled in calls of the current test
        self.outputs: list[tuple[str, str]] = []
        self.peak_memory_mb: float | None = None
        self.neutralised: list[str] = []

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the sandbox and run the notebook (called lazily by every request too)."""
        if self.process is not None and self.process.alive():
            return
        if self.process is not None:
            self._retire()
        if self.broken:
            raise SandboxCrashed(self.broken)
        while True:
            if self.generation > 0:
                if self.restarts >= self.limits.max_restarts:
                    self.broken = (
                        f"the notebook's process failed {self.restarts + 1} times; "
                        "no more restarts for this submission"
                    )
                    raise SandboxCrashed(self.broken)
                self.restarts += 1
            if self._launch_and_run():
                return

    def close(self) -> None:
        if self.process is not None:
            self._retire()

    def stdout_stderr(self) -> tuple[str, str]:
        outs = [o for o, _ in self.outputs if o]
        errs = [e for _, e in self.outputs if e]
        sep = "\n[--- the notebook was restarted ---]\n"
        return sep.join(outs), sep.join(errs)

    def _retire(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        self.outputs.append(process.output())
        peak = process.peak_memory_mb()
        if peak is not None:
            self.peak_memory_mb = max(self.peak_memory_mb or 0.0, peak)

    def _launch_and_run(self) -> bool:
        """One attempt at running the notebook; False when it must be retried."""
        self.generation += 1
        try:
            process = self.sandbox.start(self.config)
        except OSError as exc:
            raise SandboxError(f"could not start the {self.sandbox.name} sandbox: {exc}") from None
        self.process = process
        try:
            message, _ = wire.recv_frame(
                process.sock,
                self.config.message_bytes,
                time.monotonic() + STARTUP_TIMEOUT,
                read_ahead=True,
            )
        except wire.WireError as exc:
            _, err = process.output() if not process.alive() else ("", "")
            reason = process.exit_reason()
            self._retire()
            raise SandboxError(
                f"the {self.sandbox.name} sandbox did not start ({exc}; {reason}): {err[-1500:]}"
            ) from None
        if message.get("event") != "ready":
            self._retire()
            raise SandboxError("the sandbox runtime did not greet the grader")
        cells = [c for c in self.cells if c["index"] not in self.skip]
        pending = _Pending()
        deadline = time.monotonic() + self.limits.notebook_timeout
        try:
            self._send({"op": "run", "cells": cells, "seed": self.seed_value}, [])
            final = self._receive(deadline, pending)
        except wire.Timeout:
            self.timed_out = True
            self._blame(
                pending,
                f"did not finish within the notebook's "
                f"{self.limits.notebook_timeout:.0f} s limit; skipped",
            )
            self._retire()
            return False
        except (wire.PeerClosed, OSError):
            reason = process.exit_reason()
            self._blame(pending, f"the notebook's process died here ({reason}); skipped")
            self._retire()
            return False
        except wire.WireError as exc:
            self._blame(pending, f"sent malformed data ({exc}); skipped")
            self._retire()
            return False
        for record in final.get("cells", []) if isinstance(final.get("cells"), list) else []:
            self._record_cell_error(record)
        neutralised = final.get("neutralised")
        if isinstance(neutralised, list):
            self.neutralised = [str(n)[:200] for n in neutralised[:50]]
        return True

    def _is_cell(self, index: Any) -> bool:
        return type(index) is int and index in self._cell_indices

    def _blame(self, pending: _Pending, what: str) -> None:
        index = pending.index
        if index is None:
            self.broken = f"the notebook's process failed before running any cell: {what}"
            return
        self.skip.add(index)
        self.cell_records[index] = CellRecord(index=index, error=f"this cell {what}")

    def _record_cell_error(self, record: Any) -> None:
        if not isinstance(record, dict):
            return
        index = record.get("index")
        # The runtime may be lying: only a cell the notebook has can be blamed.
        if not self._is_cell(index) or index in self.cell_records:
            return
        self.cell_records[index] = CellRecord(
            index=index,
            error=_text(record.get("error")),
            traceback=_text(record.get("traceback"), 4000),
        )

    # ----------------------------------------------------------------- transport
    def _send(self, message: dict[str, Any], blobs: list[bytes]) -> None:
        assert self.process is not None
        wire.send_frame(
            self.process.sock, wire.pack(message, blobs), blobs, self.config.message_bytes
        )

    def _receive(self, deadline: float, pending: _Pending | None = None) -> dict[str, Any]:
        assert self.process is not None
        while True:
            message, blob = wire.recv_frame(
                self.process.sock, self.config.message_bytes, deadline, read_ahead=True
            )
            if "ok" in message:
                message["_blob"] = blob
                return message
            if pending is not None and message.get("event") == "cell":
                index = message.get("index")
                pending.index = index if self._is_cell(index) else None

    def request(self, message: dict[str, Any], blobs: list[bytes], what: str) -> Any:
        """Send one request and return the decoded value, or raise the student's fault."""
        self.start()
        if self.pending_seed is not None:
            # The runtime seeds before it handles the request (see runtime/server.py).
            message = {**message, "seed": self.pending_seed}
            self.pending_seed = None
        return self._exchange(message, blobs, what)

    def _exchange(self, message: dict[str, Any], blobs: list[bytes], what: str) -> Any:
        timeout = self.limits.call_timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                raise StudentTimeout(f"{what}: the test ran out of time")
        process = self.process
        assert process is not None
        try:
            self._send(message, blobs)
            reply = self._receive(time.monotonic() + timeout)
        except wire.Timeout:
            self._retire()
            raise StudentTimeout(f"{what} did not finish within {timeout:.1f} s") from None
        except (wire.PeerClosed, OSError):
            reason = process.exit_reason()
            self._retire()
            raise SandboxCrashed(f"the notebook's process died during {what} ({reason})") from None
        except wire.WireError as exc:
            self._retire()
            raise BadValue(f"{what} returned something that cannot be graded: {exc}") from None
        if reply.get("ok") is not True:
            raise _student_error(reply.get("error"), what)
        try:
            return wire.decode(reply.get("value"), reply["_blob"], reply.get("blobs"), self._handle)
        except wire.WireError as exc:
            raise BadValue(f"{what} returned something that cannot be graded: {exc}") from None

    # ----------------------------------------------------------------- values
    def _handle(self, ref: dict[str, Any]) -> Handle:
        hid, type_name, is_callable = ref.get("id"), ref.get("type"), ref.get("callable")
        if type(hid) is not int or type(type_name) is not str or type(is_callable) is not bool:
            raise wire.WireError("malformed handle")
        return Handle(self, hid, type_name[:100], is_callable, self.generation)

    def _encode(self, value: Any) -> tuple[Any, list[bytes]]:
        def handle_ref(obj: Any) -> dict[str, Any]:
            if isinstance(obj, Handle) and obj._session is self:
                self._check_fresh(obj)
                return {"t": "handle", "id": obj._id}
            raise TypeError(f"a test cannot send a {type(obj).__name__} to the student's code")

        return wire.encode(value, handle_ref)

    def _check_fresh(self, handle: Handle) -> None:
        if handle._generation != self.generation or self.process is None:
            raise SandboxCrashed(
                "this object was lost when the notebook was restarted after an earlier failure"
            )

    # ----------------------------------------------------------------- operations
    def define(self, source: str) -> Any:
        """Instructor helper code run in the sandbox, apart from the notebook's globals."""
        return _labelled(
            self.request({"op": "define", "source": source}, [], "helper code"), "helpers"
        )

    def get(self, name: str) -> Any:
        return _labelled(self.request({"op": "get", "name": name}, [], name), name)

    def getattr(self, handle: Handle, name: str) -> Any:
        self.start()
        self._check_fresh(handle)
        label = f"{handle._label}.{name}"
        return _labelled(
            self.request({"op": "getattr", "ref": handle._id, "name": name}, [], label), label
        )

    def setattr(self, handle: Handle, name: str, value: Any) -> None:
        self.start()
        self._check_fresh(handle)
        encoded, blobs = self._encode(value)
        self.request(
            {"op": "setattr", "ref": handle._id, "name": name, "value": encoded},
            blobs,
            f"setting {handle._label}.{name}",
        )

    def call(
        self, handle: Handle, method: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self.start()
        self._check_fresh(handle)
        payload, blobs = self._encode([list(args), dict(kwargs)])
        what = f"{handle._label}.{method}()" if method else f"{handle._label}()"
        return self.request(
            {
                "op": "call",
                "ref": handle._id,
                "name": method,
                "payload": payload,
                "forbid": self.forbid,
            },
            blobs,
            what,
        )


def _labelled(value: Any, label: str) -> Any:
    if isinstance(value, Handle):
        object.__setattr__(value, "_label", label)
    return value


def _text(value: Any, cap: int = TEXT_CAP) -> str:
    return value[:cap] if isinstance(value, str) else ""


def _student_error(error: Any, what: str) -> StudentCodeError:
    error = error if isinstance(error, dict) else {}
    kind = error.get("kind")
    message = _text(error.get("message"), 1000)
    exc_type = _text(error.get("type"), 100)
    tb = _text(error.get("traceback"), 4000)
    if kind == "missing":
        return MissingName(f"the notebook does not define {what}")
    if kind == "forbidden":
        api = message.removeprefix("ForbiddenAPIError: ")[:200]
        return ForbiddenAPI(f"{what} uses {api}, which this question forbids", api)
    if kind == "encode":
        return BadValue(f"{what} returned something that cannot be graded: {message}")
    return StudentCodeError(f"{what} raised {message}", exc_type, tb)
