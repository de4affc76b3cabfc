"""The data-only wire format between the grader and the student runtime.

A frame is `!II` (length of the JSON part, length of the binary part), then UTF-8 JSON,
then the concatenated binary blobs the JSON refers to by index. Values are tagged JSON:
scalars as themselves, containers and tensors as `{"t": ...}` objects, tensors and arrays
as dtype + shape + raw bytes. Nothing is ever pickled; objects that are not data stay
where they are and travel as handles (`{"t": "handle", "id": n}`).

This module is shared by both sides and imports only the standard library (numpy and
torch are used when the process already has them), so the sandbox needs nothing else.
Decoding validates everything: it is the trusted side's only parser of sandbox bytes.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

HEADER = struct.Struct("!II")
_CHUNK = 1 << 20  # the most one recv asks for
_READ_AHEAD = 1 << 16  # what a read-ahead recv asks for at least
_COALESCE = 1 << 16  # blobs up to this size go out in the frame's one write
MAX_DEPTH = 48
MAX_ITEMS = 2_000_000
MAX_DIM = 2**62  # no tensor library accepts a dimension this large, even of zero elements
# A JSON escape of a UTF-16 surrogate: valid JSON, but alone it is not text (no UTF-8).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")

# name -> (item size in bytes, numpy dtype name or None when numpy has no such dtype)
DTYPES: dict[str, tuple[int, str | None]] = {
    "bool": (1, "bool"),
    "uint8": (1, "uint8"),
    "int8": (1, "int8"),
    "int16": (2, "int16"),
    "int32": (4, "int32"),
    "int64": (8, "int64"),
    "float16": (2, "float16"),
    "bfloat16": (2, None),
    "float32": (4, "float32"),
    "float64": (8, "float64"),
    "complex64": (8, "complex64"),
    "complex128": (16, "complex128"),
}


class WireError(Exception):
    """A frame or value that breaks the format (too big, malformed, unknown tag)."""


class PeerClosed(WireError):
    """The other side closed the connection (for the grader: the sandbox died)."""


class Timeout(WireError):
    """No complete frame arrived before the deadline."""


# --------------------------------------------------------------------------- framing


def send_frame(
    sock: socket.socket, message: dict[str, Any], blobs: list[bytes], limit: int
) -> None:
    body = json.dumps(message, separators=(",", ":"), allow_nan=True).encode("utf-8")
    blob_len = sum(len(b) for b in blobs)
    if len(body) + blob_len > limit:
        raise WireError(f"message of {len(body) + blob_len} bytes exceeds the {limit}-byte limit")
    header = HEADER.pack(len(body), blob_len)
    if blob_len <= _COALESCE:
        # One write: the peer wakes once per frame, not once per part.
        sock.sendall(b"".join([header, body, *blobs]))
        return
    sock.sendall(header + body)
    for blob in blobs:
        sock.sendall(blob)


def _wait_for(sock: socket.socket, deadline: float | None) -> None:
    """Set `sock`'s timeout to what is left before `deadline` (blocking without one)."""
    if deadline is None:
        if sock.gettimeout() is not None:  # settimeout costs a system call: only on a change
            sock.settimeout(None)
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("no answer before the deadline")
    sock.settimeout(left)


def _recv_some(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    _wait_for(sock, deadline)
    try:
        chunk = sock.recv(size)
    except TimeoutError:
        raise Timeout("no answer before the deadline") from None
    except (ConnectionResetError, BrokenPipeError, OSError) as exc:
        raise PeerClosed(f"connection lost: {exc}") from None
    if not chunk:
        raise PeerClosed("the other side closed the connection")
    return chunk


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        buf += _recv_some(sock, min(n - len(buf), _CHUNK), deadline)
    return bytes(buf)


class _ReadAhead:
    """Bytes read from a socket beyond the frame asked for, kept for the next frames.

    It must not hold its socket: it is the socket's value in a weak-keyed table."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def __call__(self, sock: socket.socket, n: int, deadline: float | None) -> bytes:
        buf = self.buf
        while len(buf) < n:
            buf += _recv_some(sock, min(max(n - len(buf), _READ_AHEAD), _CHUNK), deadline)
        data = bytes(buf[:n])
        del buf[:n]
        return data


# Read-ahead buffers, one per socket that asked for it, gone with their socket.
_read_ahead: weakref.WeakKeyDictionary[socket.socket, _ReadAhead] = weakref.WeakKeyDictionary()


def recv_frame(
    sock: socket.socket, limit: int, deadline: float | None = None, *, read_ahead: bool = False
) -> tuple[dict[str, Any], bytes]:
    """Read one frame; enforce `limit` before reading the body.

    `read_ahead`: read up to 64 KiB at a time and keep what belongs to the next frames, so
    a small frame takes one system call instead of three (the socket must then be read
    with `read_ahead` only). Never on a socket that also carries file descriptors: a read
    past the frame would drop them."""
    receive: Callable[[socket.socket, int, float | None], bytes] = _recv_exact
    if read_ahead:
        receive = _read_ahead.get(sock) or _read_ahead.setdefault(sock, _ReadAhead())
    json_len, blob_len = HEADER.unpack(receive(sock, HEADER.size, deadline))
    if json_len + blob_len > limit:
        raise WireError(
            f"the sandbox sent a message of {json_len + blob_len} bytes, "
            f"over the {limit}-byte limit"
        )
    body = receive(sock, json_len, deadline)
    blob = receive(sock, blob_len, deadline) if blob_len else b""
    try:
        message = json.loads(body.decode("utf-8"))
        if _SURROGATE_ESCAPE.search(body):
            message = _without_lone_surrogates(message)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"malformed message: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise WireError("malformed message: not a JSON object")
    return message, blob


def _without_lone_surrogates(value: Any) -> Any:
    """Replace lone surrogates (which no UTF-8 file or database accepts) with U+FFFD."""
    if type(value) is str:
        return _SURROGATE.sub("\ufffd", value)
    if type(value) is list:
        return [_without_lone_surrogates(v) for v in value]
    if type(value) is dict:
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- encoding


class _Encoder:
    def __init__(self, fallback: Callable[[Any], dict[str, Any]]) -> None:
        self.fallback = fallback
        self.blobs: list[bytes] = []
        self.items = 0

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def encode(self, value: Any, depth: int = 0) -> Any:
        self.items += 1
        if depth > MAX_DEPTH:
            raise WireError(f"value nested more than {MAX_DEPTH} levels deep")
        if self.items > MAX_ITEMS:
            raise WireError(f"value has more than {MAX_ITEMS} items")
        if value is None or type(value) in (bool, str):
            return value
        if type(value) is int:
            return value if abs(value) < 2**63 else {"t": "bigint", "v": str(value)}
        if type(value) is float:
            return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
        if type(value) is complex:
            return {"t": "complex", "re": self.encode(value.real), "im": self.encode(value.imag)}
        if isinstance(value, bytes | bytearray):
            return {"t": "bytes", "b": self.blob(bytes(value))}
        tensor = _as_torch_tensor(value)
        if tensor is not None:
            return self.tensor(tensor)
        array = _as_numpy_array(value)
        if array is not None:
            return self.ndarray(array)
        scalar = _numpy_scalar(value)
        if scalar is not None:
            return self.encode(scalar, depth + 1)
        if isinstance(value, list | tuple):
            tag = "list" if isinstance(value, list) else "tuple"
            return {"t": tag, "v": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, dict):
            return {
                "t": "dict",
                "v": [
                    [self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()
                ],
            }
        return self.fallback(value)

    def tensor(self, t: Any) -> dict[str, Any]:
        import torch

        t = t.detach()
        if t.layout != torch.strided:
            t = t.to_dense()
        if t.is_quantized:
            t = t.dequantize()
        t = t.to("cpu").contiguous()
        name = str(t.dtype).removeprefix("torch.")
        if name == "bfloat16":
            data = t.view(torch.int16).numpy().tobytes()
        else:
            if name not in DTYPES:
                wider = torch.complex128 if t.is_complex() else torch.float64
                t = t.to(wider if t.is_floating_point() or t.is_complex() else torch.int64)
                name = str(t.dtype).removeprefix("torch.")
            data = t.numpy().tobytes()
        return {"t": "tensor", "dtype": name, "shape": list(t.shape), "b": self.blob(data)}

    def ndarray(self, a: Any) -> dict[str, Any]:
        import numpy as np

        name = a.dtype.name
        if name not in DTYPES or a.dtype.byteorder == ">":
            if a.dtype.kind in "fc":
                a = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
            elif a.dtype.kind in "iub":
                a = a.astype(np.int64 if a.dtype.kind != "b" else np.bool_)
            else:
                return self.fallback(a)
            name = a.dtype.name
        data = np.ascontiguousarray(a).tobytes()
        return {"t": "ndarray", "dtype": name, "shape": list(a.shape), "b": self.blob(data)}


def _as_torch_tensor(value: Any) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value
    return None


def _as_numpy_array(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray):
        return value
    return None


def _numpy_scalar(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.generic):
        item = value.item()
        if type(item) in (bool, int, float, complex, str):
            return item
    return None


def encode(value: Any, fallback: Callable[[Any], dict[str, Any]]) -> tuple[Any, list[bytes]]:
    """Encode `value`; objects that are not data go through `fallback` (e.g. become handles)."""
    enc = _Encoder(fallback)
    return enc.encode(value), enc.blobs


# --------------------------------------------------------------------------- decoding


class _Decoder:
    def __init__(
        self, blob: bytes, blob_sizes: list[int], resolve: Callable[[dict[str, Any]], Any]
    ):
        if sum(blob_sizes) != len(blob):
            raise WireError("blob table does not match the binary part")
        self.blobs: list[memoryview] = []
        view = memoryview(blob)
        offset = 0
        for size in blob_sizes:
            self.blobs.append(view[offset : offset + size])
            offset += size
        self.resolve = resolve
        self.items = 0

    def blob(self, index: Any) -> memoryview:
        if type(index) is not int or not 0 <= index < len(self.blobs):
            raise WireError("reference to a missing blob")
        return self.blobs[index]

    def decode(self, value: Any, depth: int = 0) -> Any:
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise WireError("value too deeply nested or too large")
        if value is None or type(value) in (bool, int, float, str):
            return value
        if type(value) is not dict:
            raise WireError(f"untagged {type(value).__name__} in message")
        tag = value.get("t")
        if tag == "list":
            return [self.decode(v, depth + 1) for v in self._items(value)]
        if tag == "tuple":
            return tuple(self.decode(v, depth + 1) for v in self._items(value))
        if tag == "dict":
            out: dict[Any, Any] = {}
            for pair in self._items(value):
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("malformed dict entry")
                key = self.decode(pair[0], depth + 1)
                try:
                    out[key] = self.decode(pair[1], depth + 1)
                except TypeError:
                    raise WireError("unhashable dict key") from None
            return out
        if tag == "bigint":
            return int(_text(value.get("v"), 5000))
        if tag == "float":
            text = _text(value.get("v"), 10)
            if text not in ("nan", "inf", "-inf"):
                raise WireError("malformed float")
            return float(text)
        if tag == "complex":
            re, im = (
                self.decode(value.get("re"), depth + 1),
                self.decode(value.get("im"), depth + 1),
            )
            if type(re) is not float or type(im) is not float:
                raise WireError("malformed complex")
            return complex(re, im)
        if tag == "bytes":
            return bytes(self.blob(value.get("b")))
        if tag in ("tensor", "ndarray"):
            return self.array(value, tag)
        if tag == "handle":
            return self.resolve(value)
        raise WireError(f"unknown tag {tag!r}")

    @staticmethod
    def _items(value: dict[str, Any]) -> list[Any]:
        items = value.get("v")
        if type(items) is not list:
            raise WireError("malformed container")
        return items

    def array(self, value: dict[str, Any], tag: str) -> Any:
        dtype = value.get("dtype")
        shape = value.get("shape")
        if dtype not in DTYPES:
            raise WireError(f"unsupported dtype {dtype!r}")
        if (
            type(shape) is not list
            or len(shape) > 32
            or any(type(n) is not int or not 0 <= n < MAX_DIM for n in shape)
        ):
            raise WireError("malformed shape")
        itemsize, np_name = DTYPES[dtype]
        data = self.blob(value.get("b"))
        count = math.prod(shape)
        if count * itemsize != len(data):
            raise WireError(f"{tag} of shape {shape} and dtype {dtype} has {len(data)} bytes")
        if tag == "ndarray":
            import numpy as np

            if np_name is None:
                raise WireError(f"numpy has no dtype {dtype}")
            return np.frombuffer(bytes(data), dtype=np.dtype(np_name)).reshape(shape).copy()
        import torch

        torch_dtype = getattr(torch, dtype)
        if count == 0:
            return torch.empty(shape, dtype=torch_dtype)
        return torch.frombuffer(bytearray(data), dtype=torch_dtype).reshape(shape).clone()


def _text(value: Any, max_len: int) -> str:
    if type(value) is not str or len(value) > max_len:
        raise WireError("malformed text field")
    return value


def decode(
    value: Any, blob: bytes, blob_sizes: Any, resolve: Callable[[dict[str, Any]], Any]
) -> Any:
    """Rebuild a value from its tagged JSON and blobs; handles go through `resolve`."""
    if type(blob_sizes) is not list or any(type(n) is not int or n < 0 for n in blob_sizes):
        raise WireError("malformed blob table")
    try:
        return _Decoder(blob, blob_sizes, resolve).decode(value)
    except (ValueError, TypeError, OverflowError, RuntimeError, MemoryError) as exc:
        # RecursionError is a RuntimeError; torch and numpy raise any of these on odd input.
        raise WireError(f"malformed value: {type(exc).__name__}") from None


def pack(message: dict[str, Any], blobs: list[bytes]) -> dict[str, Any]:
    """Attach the blob table to a message before sending."""
    message["blobs"] = [len(b) for b in blobs]
    return message
