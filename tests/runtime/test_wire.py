"""The wire format: the trusted side's only parser of bytes that come out of a sandbox.

Round trips go through a real socket pair, as between grader and runtime. Decoding must
turn anything malformed into `WireError` (never another exception, never a hang), and
it must never build anything but data: no pickle, no eval, handles only via `resolve`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import random
import socket
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from autograder.runtime import wire

LIMIT = 8 * 2**20


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def refuse(obj: Any) -> dict[str, Any]:
    raise AssertionError(f"fallback called for {obj!r}")


def no_handles(ref: dict[str, Any]) -> Any:
    raise AssertionError(f"resolve called for {ref!r}")


def roundtrip(value: Any, fallback: Any = refuse, resolve: Any = no_handles) -> Any:
    """Encode, send over a socket pair, receive and decode, as grader and runtime do."""
    a, b = socket.socketpair()
    try:
        encoded, blobs = wire.encode(value, fallback)
        message = wire.pack({"ok": True, "value": encoded}, blobs)
        sender = threading.Thread(target=wire.send_frame, args=(a, message, blobs, LIMIT))
        sender.start()
        got, blob = wire.recv_frame(b, LIMIT, time.monotonic() + 10)
        sender.join()
        return wire.decode(got["value"], blob, got["blobs"], resolve)
    finally:
        a.close()
        b.close()


def decode(value: Any, blob: bytes = b"") -> Any:
    return wire.decode(value, blob, [len(blob)], no_handles)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types, all the way down (nan equals nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


# --------------------------------------------------------------------------- round trips
SCALARS = [
    None,
    True,
    False,
    0,
    -1,
    7,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    10**100,
    -(10**300),
    0.0,
    -0.0,
    1.5,
    -2.25,
    1e308,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
    complex(1, -2),
    complex(math.nan, math.inf),
    complex(0, -0.0),
    "",
    "plain",
    "héllo ✓ 😀 \x00 \n\t\"'\\",
    "\u2028",
    b"",
    b"\x00\xff" * 10,
    bytes(range(256)),
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalars_round_trip_with_their_types(value: Any) -> None:
    assert same(roundtrip(value), value)


def test_bytearray_comes_back_as_bytes() -> None:
    assert roundtrip(bytearray(b"ab\x00")) == b"ab\x00"


def test_containers_round_trip_and_keep_list_tuple_dict_apart() -> None:
    value = {
        "list": [1, [2, [3, []]], ()],
        "tuple": (1, (2.5, "x"), [None]),
        (1, "key"): {"nested": {True: b"raw", 3: [math.inf]}},
        7: [],
        None: {},
    }
    got = roundtrip(value)
    assert same(got, value)
    assert type(got["tuple"][1]) is tuple and type(got["list"][1]) is list


def test_numpy_scalars_become_python_scalars() -> None:
    got = roundtrip(
        [np.float32(1.5), np.int64(-3), np.bool_(True), np.float64(np.nan), np.str_("s")]
    )
    assert [type(v) for v in got] == [float, int, bool, float, str]
    assert got[:3] == [1.5, -3, True] and math.isnan(got[3])


TORCH_DTYPES = [getattr(torch, name) for name in wire.DTYPES]


def _sample(dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    n = math.prod(shape)
    if dtype is torch.bool:
        return (torch.arange(n) % 2 == 0).reshape(shape)
    if dtype.is_complex:
        return (torch.arange(n) + 1j * torch.arange(n)).to(dtype).reshape(shape)
    return (torch.arange(n) - n // 2).to(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=str)
@pytest.mark.parametrize("shape", [(2, 3), (0,), (3, 0, 2), (), (1, 1, 1, 5)], ids=str)
def test_tensors_of_every_dtype_and_shape_round_trip(dtype: torch.dtype, shape: tuple) -> None:
    value = _sample(dtype, shape)
    got = roundtrip(value)
    assert type(got) is torch.Tensor
    assert got.dtype == dtype and tuple(got.shape) == shape
    assert torch.equal(got, value)


def test_tensor_special_values_survive() -> None:
    value = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 1e-45])
    got = roundtrip(value)
    assert torch.equal(got.isnan(), value.isnan())
    assert torch.equal(got[1:], value[1:]) and math.copysign(1, got[3].item()) == -1


def test_non_contiguous_views_and_grad_tensors_round_trip_as_plain_data() -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    for view in (base.T, base[:, ::2], base[1:3, 2:5], base.expand(2, 4, 6)[1]):
        got = roundtrip(view)
        assert torch.equal(got, view) and got.is_contiguous()
    leaf = torch.randn(3, requires_grad=True)
    got = roundtrip(leaf * 2)
    assert not got.requires_grad and got.grad_fn is None
    assert torch.equal(got, (leaf * 2).detach())


def test_decoded_tensor_owns_its_memory() -> None:
    encoded, blobs = wire.encode(torch.ones(4), refuse)
    blob = bytearray(b"".join(blobs))
    got = wire.decode(encoded, bytes(blob), [len(blob)], no_handles)
    got += 1
    assert bytes(blob) == torch.ones(4).numpy().tobytes()


def test_dtypes_outside_the_table_are_widened_not_lost() -> None:
    assert roundtrip(torch.tensor([1, 2], dtype=torch.uint16)).dtype == torch.int64
    got = roundtrip(torch.tensor([0.5, 2.0], dtype=torch.float8_e4m3fn))
    assert got.dtype == torch.float64 and got.tolist() == [0.5, 2.0]


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_complex_half_keeps_its_imaginary_part() -> None:
    got = roundtrip(torch.tensor([1 + 2j, -3j], dtype=torch.complex32))
    assert got.dtype == torch.complex128 and got.tolist() == [1 + 2j, -3j]


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_sparse_and_quantized_tensors_arrive_dense() -> None:
    dense = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
    assert torch.equal(roundtrip(dense.to_sparse()), dense)
    quantized = torch.quantize_per_tensor(dense, scale=0.5, zero_point=0, dtype=torch.qint8)
    assert torch.equal(roundtrip(quantized), dense)


NUMPY_DTYPES = [name for name, (_, np_name) in wire.DTYPES.items() if np_name is not None]


@pytest.mark.parametrize("name", NUMPY_DTYPES)
@pytest.mark.parametrize("shape", [(2, 3), (0, 4), ()], ids=str)
def test_numpy_arrays_of_every_dtype_round_trip(name: str, shape: tuple) -> None:
    value = np.arange(math.prod(shape)).reshape(shape).astype(name)
    got = roundtrip(value)
    assert type(got) is np.ndarray
    assert got.dtype == np.dtype(name) and got.shape == shape
    assert np.array_equal(got, value)
    assert got.flags.writeable


def test_numpy_odd_layouts_are_normalised() -> None:
    big_endian = np.arange(6, dtype=">i4").reshape(2, 3)
    fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    strided = np.arange(20.0)[::3]
    for value in (big_endian, fortran, strided, np.arange(4, dtype=np.float16)):
        got = roundtrip(value)
        assert np.array_equal(got, value) and got.dtype.isnative
    assert roundtrip(np.array([1, 2], dtype=np.uint32)).dtype == np.int64


def test_objects_that_are_not_data_go_through_the_fallback_as_handles() -> None:
    class Model:
        pass

    model, fn, s = Model(), len, {1, 2}
    subclassed = [
        type("MyInt", (int,), {})(3),
        type("MyStr", (str,), {})("b"),
        type("MyFloat", (float,), {})(1.0),
    ]
    table: dict[int, Any] = {}

    def fallback(obj: Any) -> dict[str, Any]:
        table[len(table)] = obj
        return {"t": "handle", "id": len(table) - 1}

    def resolve(ref: dict[str, Any]) -> Any:
        return ("handle", ref["id"])

    got = roundtrip(
        {"m": model, "f": fn, "items": [s, np.array(["x"], dtype=object)], "odd": subclassed},
        fallback,
        resolve,
    )
    assert got["m"] == ("handle", 0) and got["f"] == ("handle", 1)
    assert got["items"][0][0] == "handle" and got["items"][1][0] == "handle"
    assert [h[0] for h in got["odd"]] == ["handle"] * 3  # subclasses of data are not data
    assert table[0] is model and table[2] is s


def test_too_deep_self_referential_or_huge_values_refuse_to_encode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deep: Any = 1
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    loop: list[Any] = []
    loop.append(loop)
    for value in (deep, loop):
        with pytest.raises(wire.WireError, match="nested"):
            wire.encode(value, refuse)
    monkeypatch.setattr(wire, "MAX_ITEMS", 1000)
    with pytest.raises(wire.WireError, match="items"):
        wire.encode([0] * 1001, refuse)


# --------------------------------------------------------------------------- decoding rejects
def tensor_ref(**fields: Any) -> dict[str, Any]:
    return {"t": "tensor", "dtype": "float32", "shape": [2], "b": 0, **fields}


BAD_VALUES = {
    "unknown tag": {"t": "pickle", "v": "gASVAAAA"},
    "no tag": {"v": [1]},
    "untagged list": [1, 2],
    "untagged object": {"a": 1},
    "tag not a string": {"t": ["list"], "v": []},
    "list without items": {"t": "list"},
    "list items not a list": {"t": "list", "v": {"a": 1}},
    "dict entry not a pair": {"t": "dict", "v": [[1]]},
    "dict entry not a list": {"t": "dict", "v": [{"t": "tuple", "v": [1, 2]}]},
    "unhashable dict key": {"t": "dict", "v": [[{"t": "list", "v": []}, 1]]},
    "bigint not text": {"t": "bigint", "v": 5},
    "bigint not digits": {"t": "bigint", "v": "12ab"},
    "bigint too long": {"t": "bigint", "v": "9" * 5001},
    "bigint over the digit limit": {"t": "bigint", "v": "9" * 4400},
    "float tag with a finite value": {"t": "float", "v": "1.5"},
    "float tag with code": {"t": "float", "v": "__import__('os')"},
    "complex with int parts": {"t": "complex", "re": 1, "im": 2},
    "bytes without blob": {"t": "bytes", "b": 3},
    "unknown dtype": tensor_ref(dtype="object"),
    "dtype not text": tensor_ref(dtype=["float32"]),
    "negative shape": tensor_ref(shape=[-2]),
    "shape not a list": tensor_ref(shape=2),
    "shape of floats": tensor_ref(shape=[2.0]),
    "shape of bools": tensor_ref(shape=[True, True]),
    "too many dimensions": tensor_ref(shape=[1] * 33),
    "wrong byte count": tensor_ref(shape=[3]),
    "wrong byte count for dtype": tensor_ref(dtype="float64"),
    "blob index out of range": tensor_ref(b=1),
    "blob index negative": tensor_ref(b=-1),
    "blob index not int": tensor_ref(b="0"),
    "blob index bool": tensor_ref(b=True),
    "huge empty tensor": tensor_ref(shape=[2**64, 0], b=1),
    "huge empty array": {"t": "ndarray", "dtype": "float32", "shape": [2**64, 0], "b": 1},
    "big empty tensor": tensor_ref(shape=[2**62, 0, 2**62], b=1),
    "numpy bfloat16": {"t": "ndarray", "dtype": "bfloat16", "shape": [4], "b": 0},
}


@pytest.mark.parametrize("value", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_decoding_rejects_malformed_values(value: Any) -> None:
    blobs = [b"\x00" * 8, b""]  # blob 0: 8 bytes, blob 1: empty
    with pytest.raises(wire.WireError):
        wire.decode(value, b"".join(blobs), [len(b) for b in blobs], no_handles)


@pytest.mark.parametrize("sizes", [[9], [4, 4, 1], [-1, 9], "8", [8.0], None, [True, 7]])
def test_decoding_rejects_a_blob_table_that_does_not_match(sizes: Any) -> None:
    with pytest.raises(wire.WireError):
        wire.decode({"t": "bytes", "b": 0}, b"\x00" * 8, sizes, no_handles)


def test_decoding_rejects_deep_nesting() -> None:
    value: Any = 1
    for _ in range(wire.MAX_DEPTH + 2):
        value = {"t": "list", "v": [value]}
    with pytest.raises(wire.WireError):
        decode(value)
    for _ in range(5000):  # deeper than Python's recursion limit
        value = {"t": "list", "v": [value]}
    with pytest.raises(wire.WireError):
        decode(value)


def test_handles_only_through_resolve() -> None:
    seen: list[dict[str, Any]] = []

    def resolve(ref: dict[str, Any]) -> str:
        seen.append(ref)
        return f"handle-{ref['id']}"

    value = {"t": "list", "v": [{"t": "handle", "id": 4, "type": "Net"}, 5]}
    assert wire.decode(value, b"", [], resolve) == ["handle-4", 5]
    assert seen == [{"t": "handle", "id": 4, "type": "Net"}]

    def refusing(ref: dict[str, Any]) -> Any:
        raise wire.WireError("unknown handle")

    with pytest.raises(wire.WireError):
        wire.decode({"t": "handle", "id": 1}, b"", [], refusing)


def test_random_garbage_only_ever_raises_wire_error() -> None:
    """Fuzz: random tagged structures decode to data or raise WireError, nothing else."""
    rng = random.Random(1234)
    tags = [
        "list",
        "tuple",
        "dict",
        "bigint",
        "float",
        "complex",
        "bytes",
        "tensor",
        "ndarray",
        "handle",
        "nope",
    ]
    atoms: list[Any] = [None, True, 0, -1, 2**64, 1.5, math.nan, "", "nan", "x" * 20, [], {}]

    def build(depth: int) -> Any:
        if depth > 4 or rng.random() < 0.3:
            return rng.choice(atoms)
        tag = rng.choice(tags)
        node: dict[str, Any] = {"t": tag}
        for key in rng.sample(["v", "b", "re", "im", "dtype", "shape", "id"], rng.randint(0, 4)):
            if key == "dtype":
                node[key] = rng.choice([*wire.DTYPES, "int128", 3])
            elif key == "shape":
                node[key] = [
                    rng.choice([0, 1, 2, -1, 2**63, 2**64, True, 1.0])
                    for _ in range(rng.randint(0, 3))
                ]
            elif key == "v":
                node[key] = [build(depth + 1) for _ in range(rng.randint(0, 3))]
            else:
                node[key] = build(depth + 1)
        return node

    for _ in range(3000):
        value = build(0)
        blob = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 4, 8, 16])))
        with contextlib.suppress(wire.WireError):
            wire.decode(value, blob, [len(blob)], lambda ref: ("handle", ref.get("id")))


# --------------------------------------------------------------------------- framing
Receive = Callable[..., tuple[dict[str, Any], bytes]]


@pytest.fixture(params=[False, True], ids=["exact", "read-ahead"])
def recv(request: pytest.FixtureRequest) -> Receive:
    """`recv_frame`, reading exactly each part or reading ahead."""
    return functools.partial(wire.recv_frame, read_ahead=request.param)


def test_frames_carry_json_and_blobs(
    pair: tuple[socket.socket, socket.socket], recv: Receive
) -> None:
    a, b = pair
    wire.send_frame(a, {"op": "x", "n": 1}, [b"ab", b"", b"cde"], LIMIT)
    wire.send_frame(a, {"op": "y"}, [], LIMIT)
    assert recv(b, LIMIT, time.monotonic() + 5) == ({"op": "x", "n": 1}, b"abcde")
    assert recv(b, LIMIT, time.monotonic() + 5) == ({"op": "y"}, b"")


def test_sending_an_oversized_frame_is_refused_before_anything_is_sent(
    pair: tuple[socket.socket, socket.socket],
    recv: Receive,
) -> None:
    a, b = pair
    with pytest.raises(wire.WireError, match="limit"):
        wire.send_frame(a, {"op": "x"}, [b"\x00" * 2000], 1000)
    with pytest.raises(wire.Timeout):
        recv(b, LIMIT, time.monotonic() + 0.2)


def test_oversized_frame_is_refused_from_its_header_before_reading_the_body(
    pair: tuple[socket.socket, socket.socket],
    recv: Receive,
) -> None:
    a, b = pair
    a.sendall(wire.HEADER.pack(10**9, 10**9))  # and no body at all
    started = time.monotonic()
    with pytest.raises(wire.WireError, match="limit") as info:
        recv(b, LIMIT, time.monotonic() + 5)
    assert not isinstance(info.value, wire.Timeout)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"a": 1',
        b"\xff\xfe{}",
        b"[1, 2, 3]",
        b'"text"',
        b"null",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"n": 1' + b"0" * 5000 + b"}",
        b'{"a": 1,}',
    ],
    ids=[
        "broken",
        "truncated",
        "not utf-8",
        "list",
        "string",
        "null",
        "deep",
        "huge int",
        "trailing comma",
    ],
)
def test_malformed_bodies_are_refused(
    pair: tuple[socket.socket, socket.socket], recv: Receive, body: bytes
) -> None:
    a, b = pair
    a.sendall(wire.HEADER.pack(len(body), 0) + body)
    with pytest.raises(wire.WireError, match="malformed message"):
        recv(b, LIMIT, time.monotonic() + 5)


def test_lone_surrogates_are_replaced_and_pairs_kept(
    pair: tuple[socket.socket, socket.socket],
    recv: Receive,
) -> None:
    """JSON may escape half a UTF-16 pair; no UTF-8 file or database can store that."""
    a, b = pair
    body = b'{"error": "bad \\ud800 and \\udcff", "\\udfff": ["ok \\ud83d\\ude00"]}'
    a.sendall(wire.HEADER.pack(len(body), 0) + body)
    message, _ = recv(b, LIMIT, time.monotonic() + 5)
    json.dumps(message, ensure_ascii=False).encode("utf-8")  # no UnicodeEncodeError
    assert message["error"] == "bad \ufffd and \ufffd"
    assert message["\ufffd"] == ["ok 😀"]


def test_peer_closing_is_reported_as_peer_closed(
    pair: tuple[socket.socket, socket.socket], recv: Receive
) -> None:
    a, b = pair
    a.sendall(wire.HEADER.pack(10, 0) + b'{"a"')  # a partial frame, then the peer dies
    a.close()
    with pytest.raises(wire.PeerClosed):
        recv(b, LIMIT, time.monotonic() + 5)
    with pytest.raises(wire.PeerClosed):
        recv(b, LIMIT, time.monotonic() + 5)


def test_a_stalled_peer_times_out(pair: tuple[socket.socket, socket.socket], recv: Receive) -> None:
    a, b = pair
    with pytest.raises(wire.Timeout):
        recv(b, LIMIT, time.monotonic() + 0.2)
    a.sendall(wire.HEADER.pack(10, 0) + b'{"a"')  # half a frame, then silence
    started = time.monotonic()
    with pytest.raises(wire.Timeout):
        recv(b, LIMIT, time.monotonic() + 0.3)
    assert time.monotonic() - started < 2


def test_the_header_is_two_big_endian_lengths() -> None:
    assert wire.HEADER.size == 8
    assert wire.HEADER.pack(1, 2) == struct.pack("!II", 1, 2)


def _frame(message: dict[str, Any], blob: bytes = b"") -> bytes:
    body = json.dumps(message).encode()
    return wire.HEADER.pack(len(body), len(blob)) + body + blob


def test_read_ahead_keeps_what_belongs_to_the_next_frames(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    a.sendall(_frame({"op": "x"}, b"ab") + _frame({"op": "y"}))  # one write, two frames
    time.sleep(0.05)
    assert wire.recv_frame(b, LIMIT, time.monotonic() + 5, read_ahead=True) == ({"op": "x"}, b"ab")
    b.settimeout(0.0)
    with pytest.raises(BlockingIOError):  # the second frame was read along with the first
        b.recv(1)
    assert wire.recv_frame(b, LIMIT, time.monotonic() + 5, read_ahead=True) == ({"op": "y"}, b"")


def test_read_ahead_reads_a_frame_larger_than_its_reads(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    big = bytes(range(256)) * 4000  # a megabyte: many reads, more than a socket buffer
    sender = threading.Thread(target=a.sendall, args=(_frame({"op": "z"}, big) + _frame({}),))
    sender.start()
    try:
        got = wire.recv_frame(b, LIMIT, time.monotonic() + 10, read_ahead=True)
        last = wire.recv_frame(b, LIMIT, time.monotonic() + 10, read_ahead=True)
    finally:
        sender.join()
    assert got == ({"op": "z"}, big)
    assert last == ({}, b"")


def test_read_ahead_assembles_a_frame_that_arrives_byte_by_byte(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    body = b'{"op": "slow"}'
    data = wire.HEADER.pack(len(body), 3) + body + b"xyz"

    def trickle() -> None:
        for i in range(len(data)):
            a.sendall(data[i : i + 1])
            time.sleep(0.001)

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        got = wire.recv_frame(b, LIMIT, time.monotonic() + 5, read_ahead=True)
    finally:
        sender.join()
    assert got == ({"op": "slow"}, b"xyz")


def test_a_read_ahead_buffer_goes_with_its_socket() -> None:
    a, b = socket.socketpair()
    wire.send_frame(a, {"op": "x"}, [], LIMIT)
    wire.send_frame(a, {"op": "y"}, [], LIMIT)
    wire.recv_frame(b, LIMIT, time.monotonic() + 5, read_ahead=True)
    assert b in wire._read_ahead  # holding the second frame
    a.close()
    b.close()
    gone = weakref.ref(b)
    del b
    gc.collect()
    assert gone() is None  # its buffer did not keep the socket alive


def test_small_frames_go_out_in_one_write_and_large_blobs_apart() -> None:
    writes: list[bytes] = []

    class Recording:
        def sendall(self, data: bytes) -> None:
            writes.append(bytes(data))

    wire.send_frame(Recording(), {"op": "x"}, [b"ab", b"cd"], LIMIT)  # type: ignore[arg-type]
    assert len(writes) == 1 and writes[0].endswith(b"abcd")
    writes.clear()
    large = b"\0" * (1 << 17)
    wire.send_frame(Recording(), {"op": "y"}, [b"ab", large], LIMIT)  # type: ignore[arg-type]
    assert writes[1:] == [b"ab", large]  # a large blob is written as it is, not copied
