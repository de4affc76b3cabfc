"""The student runtime: the untrusted side of the boundary, run inside a sandbox.

It executes the notebook, then answers the grader's requests on an inherited socket
(fd given on the command line): read a global, call a function or method, read or
set an attribute. Results go back as data (see `wire`); anything else is kept here
in a handle table and sent as a handle id. This process may be fully subverted by
the student's code; the grader trusts nothing it says beyond the shape of the data.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import socket
import sys
import types
from collections.abc import Iterator
from typing import Any

from . import forbid, notebook_exec, wire


class Runtime:
    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.sock = sock
        self.limit = limit
        self.handles: dict[int, Any] = {}
        self.next_handle = 1
        self.namespace, self.shim = notebook_exec.make_namespace()

    # ----------------------------------------------------------------- transport
    def send(self, message: dict[str, Any], blobs: list[bytes] | None = None) -> None:
        blobs = blobs or []
        wire.send_frame(self.sock, wire.pack(message, blobs), blobs, self.limit)

    def reply_value(self, value: Any) -> None:
        try:
            encoded, blobs = wire.encode(value, self._handle_for)
            self.send({"ok": True, "value": encoded}, blobs)
        except (wire.WireError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            # Raised before anything is sent (encoding, or json.dumps in send_frame): a
            # value that cannot cross (a meta tensor, a tensor-like liar) is the call's
            # error, not the end of the runtime.
            self.reply_error("encode", exc)

    def reply_error(self, kind: str, exc: BaseException, tb: str = "") -> None:
        summary, _ = notebook_exec.format_exception(exc)
        self.send(
            {
                "ok": False,
                "error": {
                    "kind": kind,
                    "type": type(exc).__name__,
                    "message": summary,
                    "traceback": tb,
                },
            }
        )

    def _handle_for(self, obj: Any) -> dict[str, Any]:
        hid = self.next_handle
        self.next_handle += 1
        self.handles[hid] = obj
        try:
            type_name = type(obj).__name__
        except Exception:
            type_name = "object"
        return {"t": "handle", "id": hid, "type": str(type_name)[:100], "callable": callable(obj)}

    def _resolve(self, ref: dict[str, Any]) -> Any:
        hid = ref.get("id")
        if hid not in self.handles:
            raise wire.WireError(f"unknown handle {hid!r}")
        return self.handles[hid]

    def decode(self, value: Any, message: dict[str, Any], blob: bytes) -> Any:
        return wire.decode(value, blob, message.get("blobs", []), self._resolve)

    # ----------------------------------------------------------------- requests
    def serve(self) -> None:
        self.send({"event": "ready", "pid": os.getpid()})
        while True:
            try:
                message, blob = wire.recv_frame(self.sock, self.limit, read_ahead=True)
            except wire.PeerClosed:
                return
            op = message.get("op")
            if op == "shutdown":
                return
            handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                self.reply_error("protocol", ValueError(f"unknown op {op!r}"))
                continue
            if "seed" in message and op != "run":
                # A test's seeding rides on its first request: one round trip less per test.
                seed(message["seed"])
            handler(message, blob)

    def op_run(self, message: dict[str, Any], blob: bytes) -> None:
        seed(message.get("seed", 0))
        records = []
        for cell in message.get("cells", []):
            index, source = cell["index"], cell["source"]
            self.send({"event": "cell", "index": index})
            error = notebook_exec.run_cell(index, source, self.namespace)
            if error is not None:
                records.append({"index": index, **error})
        self.send(
            {
                "ok": True,
                "value": {"t": "list", "v": []},
                "cells": records,
                "neutralised": self.shim.neutralised[:50],
            }
        )

    def op_get(self, message: dict[str, Any], blob: bytes) -> None:
        name = message.get("name")
        if not isinstance(name, str) or name not in self.namespace:
            self.reply_error("missing", NameError(f"the notebook does not define {name}"))
            return
        self.reply_value(self.namespace[name])

    def op_getattr(self, message: dict[str, Any], blob: bytes) -> None:
        self._invoke(message, blob, lambda obj, m, b: getattr(obj, str(m["name"])))

    def op_setattr(self, message: dict[str, Any], blob: bytes) -> None:
        def act(obj: Any, m: dict[str, Any], b: bytes) -> None:
            setattr(obj, str(m["name"]), self.decode(m.get("value"), m, b))

        self._invoke(message, blob, act)

    def op_call(self, message: dict[str, Any], blob: bytes) -> None:
        names = message.get("forbid") or []
        blocked = forbid.Blocked([str(n) for n in names], self.namespace)

        def act(obj: Any, m: dict[str, Any], b: bytes) -> Any:
            args, kwargs = self.decode(m.get("payload"), m, b)
            target = obj if m.get("name") is None else getattr(obj, str(m["name"]))
            with blocked:
                return target(*args, **kwargs)

        self._invoke(message, blob, act, blocked)

    def op_define(self, message: dict[str, Any], blob: bytes) -> None:
        """Run instructor helper code (stand-in modules for tests) in a namespace of its own."""
        module = types.ModuleType("grader_helpers")
        module.__dict__["__builtins__"] = __builtins__
        try:
            exec(
                compile(str(message.get("source", "")), "<grader helpers>", "exec"), module.__dict__
            )
        except BaseException as exc:
            _, tb = notebook_exec.format_exception(exc)
            self.reply_error("raised", exc, tb)
            return
        self.reply_value(module)

    def op_release(self, message: dict[str, Any], blob: bytes) -> None:
        for hid in message.get("ids", []):
            self.handles.pop(hid, None)
        self.reply_value(None)

    def _invoke(
        self, message: dict[str, Any], blob: bytes, act: Any, blocked: forbid.Blocked | None = None
    ) -> None:
        try:
            obj = self._resolve({"id": message.get("ref")})
        except wire.WireError as exc:
            self.reply_error("protocol", exc)
            return
        try:
            result = act(obj, message, blob)
        except wire.WireError as exc:
            self.reply_error("protocol", exc)
            return
        except BaseException as exc:  # student code may raise anything, SystemExit included
            _, tb = notebook_exec.format_exception(exc)
            if blocked is not None and blocked.used:
                self.reply_error("forbidden", forbid.ForbiddenAPIError(blocked.used[0]), tb)
            else:
                self.reply_error("raised", exc, tb)
            return
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        if blocked is not None and blocked.used:
            # Used, and the error caught by the student's code: still a use.
            self.reply_error("forbidden", forbid.ForbiddenAPIError(blocked.used[0]))
            return
        self.reply_value(result)


def seed(value: Any) -> None:
    """Seed every generator the notebook may use, exactly as the grader seeds its own."""
    value = int(value) if type(value) is int else 0
    random.seed(value)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(value % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        # As the grader does (grader/reference.py): the CPU generator alone on a CPU build.
        if torch.backends.cuda.is_built():
            torch.manual_seed(value)
        else:
            torch.default_generator.manual_seed(value)


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """The cyclic garbage collector paused: importing torch makes about 400 collections,
    repeatedly walking every object made so far (0.1-0.3 s of CPU), to free about 3 MB."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def preload(gpu: bool = True) -> None:
    """Import what notebooks import anyway, so seeding covers them and timing is fair.

    `gpu=False` leaves CUDA untouched: the warm zygote forks runtimes, and CUDA initialised
    before a fork cannot be used after it; each forked runtime calls `prepare_gpu`."""
    with collector_off():
        # numpy.random is a lazy submodule of numpy: `seed` would load its nine extension
        # modules again in every forked runtime.
        for name in ("numpy", "numpy.random", "torch"):
            with contextlib.suppress(ImportError):
                __import__(name)
        # The assignment's `[limits] preload`: a module that fails to import here fails
        # again, with its message, where the notebook imports it.
        for name in filter(None, os.environ.get("AUTOGRADER_PRELOAD", "").split(",")):
            with contextlib.suppress(Exception):
                __import__(name)
    torch = sys.modules.get("torch")
    threads = int(os.environ.get("AUTOGRADER_THREADS", "1"))
    if torch is not None:
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(threads)
        if gpu:
            prepare_gpu()


def prepare_gpu() -> None:
    """Apply the sandbox's GPU memory share, if it has a GPU (this initialises CUDA)."""
    torch = sys.modules.get("torch")
    fraction = os.environ.get("AUTOGRADER_GPU_MEMORY_FRACTION")
    if torch is None or not fraction:
        return
    if torch.cuda.is_available():
        # Cooperative only: a hostile notebook can undo it; hard isolation needs MIG.
        torch.cuda.set_per_process_memory_fraction(float(fraction))
