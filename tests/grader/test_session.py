"""The grader's side of a session against a scripted, hostile runtime (no real sandbox).

A fake sandbox hands the session one end of a socket pair; a thread plays the runtime
and answers with whatever a subverted student process could send: garbage, oversized
frames, forged handles, silence, or a closed socket. The session must turn each into a
student fault (a failed test) or a restart, never into a crash of the grader.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from autograder.errors import SandboxError
from autograder.grader.proxy import (
    BadValue,
    Handle,
    MissingName,
    SandboxCrashed,
    StudentCodeError,
    StudentProxy,
    StudentTimeout,
)
from autograder.grader.session import StudentSession
from autograder.runtime import wire
from autograder.sandbox.base import LaunchConfig
from autograder.spec import Limits

LIMIT = 2**20
Reply = Callable[[socket.socket, dict[str, Any]], None]


def send(sock: socket.socket, message: dict[str, Any], blobs: list[bytes] | None = None) -> None:
    blobs = blobs or []
    wire.send_frame(sock, wire.pack(message, blobs), blobs, 64 * LIMIT)


def value_reply(value: Any) -> Reply:
    def reply(sock: socket.socket, request: dict[str, Any]) -> None:
        encoded, blobs = wire.encode(
            value, lambda obj: {"t": "handle", "id": 1, "type": "X", "callable": False}
        )
        send(sock, {"ok": True, "value": encoded}, blobs)

    return reply


class FakeProcess:
    def __init__(self, runtime: Callable[[socket.socket], None]) -> None:
        self.sock, self.peer = socket.socketpair()
        self.killed = False
        self.thread = threading.Thread(target=self._run, args=(runtime,), daemon=True)
        self.thread.start()

    def _run(self, runtime: Callable[[socket.socket], None]) -> None:
        with contextlib.suppress(OSError, wire.WireError):
            runtime(self.peer)

    def alive(self) -> bool:
        return not self.killed and self.thread.is_alive()

    def kill(self) -> None:
        self.killed = True
        for s in (self.sock, self.peer):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def output(self) -> tuple[str, str]:
        return "", ""

    def exit_reason(self) -> str:
        return "exited with status 1"

    def peak_memory_mb(self) -> float | None:
        return None


class ScriptedSandbox:
    """Every start runs `runtime(sock)` in a thread; it plays the student runtime."""

    name = "scripted"

    def __init__(self, runtime: Callable[[socket.socket], None]) -> None:
        self.runtime = runtime
        self.starts = 0
        self.run_requests: list[dict[str, Any]] = []
        self.processes: list[FakeProcess] = []

    def isolation(self) -> str:
        return "none"

    def start(self, config: LaunchConfig) -> FakeProcess:
        self.starts += 1
        process = FakeProcess(self.runtime)
        self.processes.append(process)
        return process


def runtime_with(replies: dict[str, Reply], sandbox_box: list[ScriptedSandbox]) -> Any:
    """A well-behaved runtime except for the ops in `replies`."""

    def runtime(sock: socket.socket) -> None:
        send(sock, {"event": "ready", "pid": 2})
        while True:
            request, _ = wire.recv_frame(sock, 64 * LIMIT)
            op = request.get("op")
            if op == "run":
                sandbox_box[0].run_requests.append(request)
            if op in replies:
                replies[op](sock, request)
            elif op == "run":
                send(sock, {"ok": True, "value": {"t": "list", "v": []}, "cells": []})
            else:
                value_reply(None)(sock, request)

    return runtime


def session_with(
    replies: dict[str, Reply], **limits: Any
) -> tuple[StudentSession, ScriptedSandbox]:
    holder: list[ScriptedSandbox] = []
    sandbox = ScriptedSandbox(runtime_with(replies, holder))
    holder.append(sandbox)
    cells = [{"index": i, "source": f"x{i} = {i}"} for i in range(3)]
    config = LaunchConfig(message_bytes=LIMIT)
    settings = {"call_timeout": 1.0, "notebook_timeout": 2.0, "max_restarts": 2, **limits}
    session = StudentSession(sandbox, cells, config, Limits(**settings), seed=0)
    return session, sandbox


def raw(data: bytes) -> Reply:
    return lambda sock, request: sock.sendall(data)


def close(sock: socket.socket, request: dict[str, Any]) -> None:
    sock.close()
    raise OSError("closed")


def hang(sock: socket.socket, request: dict[str, Any]) -> None:
    time.sleep(30)


# --------------------------------------------------------------------------- values
def test_data_comes_back_as_data() -> None:
    session, _ = session_with({"get": value_reply({"w": torch.ones(2), "n": (1, 2.5, "x")})})
    value = session.get("anything")
    assert torch.equal(value["w"], torch.ones(2)) and value["n"] == (1, 2.5, "x")
    session.close()


def test_objects_come_back_as_inert_handles() -> None:
    session, _ = session_with({"get": value_reply(object())})
    handle = session.get("model")
    assert isinstance(handle, Handle) and repr(handle) == "<student X object>"
    assert handle != 1 and handle == handle and bool(handle)
    with pytest.raises(AttributeError):
        handle.__float__  # noqa: B018 - dunders never reach the sandbox
    session.close()


@pytest.mark.parametrize(
    ("reply", "error", "fragment"),
    [
        (raw(wire.HEADER.pack(LIMIT, 1)), BadValue, "over the"),
        (raw(wire.HEADER.pack(5, 0) + b"{oops"), BadValue, "malformed message"),
        (raw(wire.HEADER.pack(2, 0) + b"[]"), BadValue, "not a JSON object"),
        (lambda s, r: send(s, {"ok": True, "value": [1, 2]}), BadValue, "untagged list"),
        (
            lambda s, r: send(s, {"ok": True, "value": {"t": "handle", "id": "1"}}),
            BadValue,
            "malformed handle",
        ),
        (
            lambda s, r: send(
                s,
                {
                    "ok": True,
                    "value": {"t": "tensor", "dtype": "float32", "shape": [2**64, 0], "b": 0},
                },
                [b""],
            ),
            BadValue,
            "cannot be graded",
        ),
        (
            lambda s, r: send(s, {"ok": False, "error": {"kind": "missing"}}),
            MissingName,
            "does not define",
        ),
        (
            lambda s, r: send(s, {"ok": False, "error": {"kind": "encode", "message": "too big"}}),
            BadValue,
            "too big",
        ),
        (
            lambda s, r: send(s, {"ok": False, "error": "not even a dict"}),
            StudentCodeError,
            "raised",
        ),
        (
            lambda s, r: send(
                s,
                {"ok": False, "error": {"kind": "raised", "message": "x" * 10**5, "type": ["odd"]}},
            ),
            StudentCodeError,
            "raised xxx",
        ),
        (close, SandboxCrashed, "died during"),
        (hang, StudentTimeout, "did not finish within 1.0 s"),
    ],
    ids=[
        "oversized",
        "not json",
        "json list",
        "untagged",
        "bad handle",
        "huge empty tensor",
        "missing",
        "encode error",
        "error not a dict",
        "long error",
        "closed",
        "hang",
    ],
)
def test_hostile_replies_become_student_faults(reply: Reply, error: type, fragment: str) -> None:
    session, _ = session_with({"get": reply})
    with pytest.raises(error, match=fragment) as info:
        session.get("f")
    assert len(str(info.value)) < 2000
    session.close()


def test_a_broken_stream_costs_a_restart_not_the_next_request() -> None:
    calls = {"n": 0}

    def first_garbage(sock: socket.socket, request: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            sock.sendall(wire.HEADER.pack(3, 0) + b"{{{")
        else:
            value_reply(42)(sock, request)

    session, sandbox = session_with({"get": first_garbage})
    with pytest.raises(BadValue):
        session.get("f")
    assert session.get("f") == 42
    assert sandbox.starts == 2 and session.restarts == 1
    session.close()


def test_restarts_are_limited() -> None:
    session, sandbox = session_with({"get": close}, max_restarts=2)
    for _ in range(3):
        with pytest.raises(SandboxCrashed, match="died during"):
            session.get("f")
    with pytest.raises(SandboxCrashed, match="failed 3 times; no more restarts"):
        session.get("f")
    with pytest.raises(SandboxCrashed, match="no more restarts"):
        session.get("f")
    assert sandbox.starts == 3
    session.close()


def test_handles_die_with_their_process() -> None:
    calls = {"n": 0}

    def get(sock: socket.socket, request: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            sock.close()
            raise OSError
        value_reply(object())(sock, request)

    session, _ = session_with({"get": get})
    handle = session.get("model")
    with pytest.raises(SandboxCrashed):
        session.get("other")
    with pytest.raises(SandboxCrashed, match="lost when the notebook was restarted"):
        handle.forward(1)
    session.close()


def test_tests_cannot_send_objects_to_the_student() -> None:
    session, _ = session_with({"get": value_reply(object())})
    handle = session.get("f")
    with pytest.raises(TypeError, match="cannot send a object"):
        handle(object())
    with pytest.raises(TypeError, match="cannot send a function"):
        handle(lambda: 1)
    session.close()


def test_the_proxy_is_read_only() -> None:
    session, _ = session_with({})
    proxy = StudentProxy(session)
    with pytest.raises(AttributeError, match="cannot change"):
        proxy.f = 1
    with pytest.raises(AttributeError):
        proxy.__dict__  # noqa: B018
    session.close()


# --------------------------------------------------------------------------- running cells
def test_a_hanging_cell_is_skipped_and_the_notebook_rerun_without_it() -> None:
    def run(sock: socket.socket, request: dict[str, Any]) -> None:
        for cell in request["cells"]:
            send(sock, {"event": "cell", "index": cell["index"]})
            if cell["index"] == 1:
                time.sleep(30)
        send(sock, {"ok": True, "value": {"t": "list", "v": []}, "cells": []})

    session, sandbox = session_with({"run": run}, notebook_timeout=0.5)
    session.start()
    assert session.timed_out and 1 in session.skip
    assert [c["index"] for c in sandbox.run_requests[-1]["cells"]] == [0, 2]
    assert "did not finish" in session.cell_records[1].error
    session.close()


def test_cell_records_from_the_runtime_are_sanitised() -> None:
    def run(sock: socket.socket, request: dict[str, Any]) -> None:
        records = [
            {"index": 0, "error": "E" * 10_000, "traceback": 5},
            {"index": "1", "error": "bad index"},
            "not a record",
            {"index": 2, "error": "bad \ud800 text"},
            {"index": 2**70, "error": "no such cell (SQLite cannot even store the number)"},
            {"index": -1, "error": "no such cell"},
            {"index": 99, "error": "no such cell"},
        ]
        send(sock, {"ok": True, "value": None, "cells": records, "neutralised": ["!ls"] * 100})

    session, _ = session_with({"run": run})
    session.start()
    assert sorted(session.cell_records) == [0, 2]
    assert len(session.cell_records[0].error) == 2000 and session.cell_records[0].traceback == ""
    assert session.cell_records[2].error == "bad \ufffd text"
    assert len(session.neutralised) == 50
    session.close()


def test_a_runtime_that_never_greets_is_a_sandbox_error() -> None:
    def runtime(sock: socket.socket) -> None:
        send(sock, {"event": "hello"})
        time.sleep(5)

    sandbox = ScriptedSandbox(runtime)
    session = StudentSession(sandbox, [], LaunchConfig(message_bytes=LIMIT), Limits(), seed=0)
    with pytest.raises(SandboxError, match="did not greet"):
        session.start()
    session.close()
