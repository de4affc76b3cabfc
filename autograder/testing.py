"""Helpers for hidden and public tests: tolerant comparisons with messages for students.

Every helper runs on the trusted side, on values that crossed the boundary as plain
data, so nothing here can be fooled by objects a student defined. Failure messages
say what was expected and what came back (shapes, dtypes, the worst element) without
quoting the test's code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "assert_binary",
    "assert_close",
    "assert_shape",
]

# float32 arithmetic in another order, or the same maths in float64, differs by about this much.
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {list(value.shape)} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:200]


def as_tensor(value: Any, what: str = "the result") -> torch.Tensor:
    """A torch tensor from a tensor, array, number or nested list; fails with a clear message."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.from_numpy(np.array(value))
    if isinstance(value, bool | int | float) or (
        isinstance(value, list | tuple) and _is_numeric_nest(value)
    ):
        try:
            return torch.tensor(value)
        except (TypeError, ValueError, RuntimeError):
            pass
    raise AssertionError(f"{what} should be a tensor, got {_describe(value)}")


def _is_numeric_nest(value: Any, depth: int = 0) -> bool:
    if depth > 8:
        return False
    if isinstance(value, list | tuple):
        return all(_is_numeric_nest(v, depth + 1) for v in value)
    return isinstance(value, bool | int | float)


def assert_shape(value: Any, shape: tuple[int, ...] | list[int], what: str = "the result") -> None:
    """Fail unless `value` is a tensor of exactly `shape`."""
    got = as_tensor(value, what)
    if list(got.shape) != list(shape):
        raise AssertionError(f"{what} should have shape {list(shape)}, got {list(got.shape)}")


def assert_close(
    got: Any,
    expected: Any,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    what: str = "the result",
    squeeze: bool = False,
) -> None:
    """Fail unless `got` matches `expected` elementwise within rtol/atol.

    Any float dtype is accepted (a float64 answer passes a float32 reference);
    `squeeze=True` also accepts extra dimensions of size one (e.g. [1, N, H] for [N, H]).
    """
    exp = as_tensor(expected, "the expected value")
    if isinstance(got, float | int) and not isinstance(got, bool) and exp.numel() == 1:
        got_t = torch.tensor(float(got))
        exp = exp.reshape(())
    else:
        got_t = as_tensor(got, what)
    if squeeze and got_t.numel() == exp.numel():
        got_t, exp = got_t.squeeze(), exp.squeeze()
    if list(got_t.shape) != list(exp.shape):
        raise AssertionError(f"{what} should have shape {list(exp.shape)}, got {list(got_t.shape)}")
    if got_t.is_complex() != exp.is_complex():
        raise AssertionError(f"{what} should be {'complex' if exp.is_complex() else 'real'}")
    got64 = got_t.to(torch.complex128 if got_t.is_complex() else torch.float64)
    exp64 = exp.to(got64.dtype)
    if torch.isnan(got64).any() and not torch.isnan(exp64).any():
        raise AssertionError(f"{what} contains NaN")
    close = torch.isclose(got64, exp64, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return
    diff = (got64 - exp64).abs()
    diff = torch.where(close, torch.zeros_like(diff), diff.nan_to_num(nan=math.inf))
    flat = int(diff.reshape(-1).argmax())
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(exp.shape))) if exp.ndim else ()
    bad = int((~close).sum())
    at = f" at index {list(index)}" if index else ""
    raise AssertionError(
        f"{what} differs from the expected value in {bad} of {exp.numel()} entries; "
        f"worst{at}: expected {exp64.reshape(-1)[flat].item():.6g}, "
        f"got {got64.reshape(-1)[flat].item():.6g} "
        f"(tolerance: rtol={rtol:g}, atol={atol:g})"
    )


def assert_binary(got: Any, expected: Any, *, what: str = "the result") -> None:
    """Fail unless `got` holds the same 0/1 values as `expected`, in any dtype (bool/int/float)."""
    exp = as_tensor(expected, "the expected value")
    got_t = as_tensor(got, what)
    if list(got_t.shape) != list(exp.shape):
        raise AssertionError(f"{what} should have shape {list(exp.shape)}, got {list(got_t.shape)}")
    if got_t.is_complex():
        raise AssertionError(f"{what} should hold 0/1 values, got complex numbers")
    got64 = got_t.to(torch.float64)
    if not bool(((got64 == 0) | (got64 == 1)).all()):
        raise AssertionError(f"{what} should hold only 0 and 1")
    wrong = got64 != exp.to(torch.float64)
    if bool(wrong.any()):
        first = [int(i) for i in wrong.nonzero()[0]]
        raise AssertionError(
            f"{what} is wrong in {int(wrong.sum())} of {exp.numel()} entries "
            f"(first at index {first}: expected {int(exp[tuple(first)])}, "
            f"got {int(got64[tuple(first)])})"
        )
