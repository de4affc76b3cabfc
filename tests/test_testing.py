"""The comparison helpers hidden tests use: fair to correct answers, strict with the rest."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from autograder.grader.proxy import Handle
from autograder.testing import as_tensor, assert_binary, assert_close, assert_shape


class NoSession:
    """A session that must never be used: the helpers may not call into the sandbox."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"a helper called the sandbox ({name})")


def handle(type_name: str = "Liar") -> Handle:
    return Handle(NoSession(), 1, type_name, False, 1)  # type: ignore[arg-type]


class Liar:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__

    def __float__(self) -> float:
        return 1.0

    def __len__(self) -> int:
        return 3

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return np.array([1.0, 2.0, 3.0])


# --------------------------------------------------------------------------- assert_close
@pytest.mark.parametrize(
    "got",
    [
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16),
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.bfloat16),
        torch.tensor([1, 2, 3]),
        np.array([1.0, 2.0, 3.0]),
        np.array([1, 2, 3], dtype=np.int32),
        [1.0, 2.0, 3.0],
        (1, 2, 3),
        torch.tensor([1.0, 2.0, 3.0]) + 1e-6,
        torch.tensor([1.0, 2.0, 3.0], requires_grad=True),
    ],
    ids=[
        "float64",
        "float16",
        "bfloat16",
        "int64",
        "numpy64",
        "numpy int",
        "list",
        "tuple",
        "within tolerance",
        "requires grad",
    ],
)
def test_assert_close_accepts_any_dtype_of_the_right_values(got: Any) -> None:
    assert_close(got, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32))


def test_assert_close_accepts_scalars_against_zero_dim_and_one_element() -> None:
    assert_close(2.5, torch.tensor(2.5))
    assert_close(3, torch.tensor([3.0]))
    assert_close(torch.tensor(2.5, dtype=torch.float64), 2.5)
    assert_close(np.float64(0.1) * 3, 0.3)


def test_assert_close_squeeze_accepts_extra_unit_dimensions() -> None:
    got = torch.ones(1, 2, 3)
    with pytest.raises(AssertionError, match=r"should have shape \[2, 3\], got \[1, 2, 3\]"):
        assert_close(got, torch.ones(2, 3))
    assert_close(got, torch.ones(2, 3), squeeze=True)


def test_assert_close_names_both_shapes() -> None:
    with pytest.raises(AssertionError) as info:
        assert_close(torch.ones(3, 2), torch.ones(2, 3), what="forward(x)")
    assert str(info.value) == "forward(x) should have shape [2, 3], got [3, 2]"


def test_assert_close_reports_the_worst_entry() -> None:
    with pytest.raises(AssertionError) as info:
        assert_close(torch.tensor([[1.0, 2.0], [3.0, 9.0]]), torch.tensor([[1.0, 2.0], [3.5, 4.0]]))
    message = str(info.value)
    assert "differs from the expected value in 2 of 4 entries" in message
    assert "worst at index [1, 1]: expected 4, got 9" in message
    assert "rtol=0.0001, atol=1e-05" in message


@pytest.mark.parametrize(
    ("got", "expected", "fragment"),
    [
        (torch.tensor([1.0, math.nan]), torch.tensor([1.0, 2.0]), "contains NaN"),
        (torch.tensor([1.0, math.inf]), torch.tensor([1.0, 2.0]), "differs"),
        (torch.tensor([1.0 + 1j]), torch.tensor([1.0]), "should be real"),
        (torch.tensor([1.0]), torch.tensor([1.0 + 1j]), "should be complex"),
        ("1.0", torch.tensor(1.0), "should be a tensor, got str"),
        (None, torch.tensor(1.0), "should be a tensor, got NoneType"),
        ({"a": 1.0}, torch.tensor(1.0), "should be a tensor, got dict"),
        (Liar(), torch.tensor([1.0, 2.0, 3.0]), "should be a tensor, got Liar"),
        (handle(), torch.tensor([1.0, 2.0, 3.0]), "should be a tensor, got Handle <student Liar"),
        ([1.0, "2"], torch.tensor([1.0, 2.0]), "should be a tensor"),
        (np.array([1, "x"], dtype=object), torch.tensor([1.0, 2.0]), "should be a tensor"),
        (torch.tensor(1.0), torch.tensor(1.0 + 1e-3), "differs"),
    ],
    ids=[
        "nan",
        "inf",
        "complex for real",
        "real for complex",
        "string",
        "None",
        "dict",
        "liar",
        "handle",
        "mixed list",
        "object array",
        "beyond tolerance",
    ],
)
def test_assert_close_rejects(got: Any, expected: Any, fragment: str) -> None:
    with pytest.raises(AssertionError, match=fragment):
        assert_close(got, expected)


def test_nan_where_nan_is_expected_is_fine() -> None:
    assert_close(torch.tensor([math.nan, 1.0]), torch.tensor([math.nan, 1.0]))


def test_bool_is_not_a_number_for_scalar_comparison() -> None:
    with pytest.raises(AssertionError):
        assert_close(True, torch.tensor(2.0))


# --------------------------------------------------------------------------- assert_binary
BINARY = [
    torch.tensor([True, False, True]),
    torch.tensor([1, 0, 1]),
    torch.tensor([1, 0, 1], dtype=torch.uint8),
    torch.tensor([1.0, 0.0, 1.0]),
    torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64),
    np.array([True, False, True]),
    [1, 0, 1],
    [True, False, True],
]


@pytest.mark.parametrize("got", BINARY, ids=lambda v: str(getattr(v, "dtype", type(v).__name__)))
@pytest.mark.parametrize("expected", BINARY[:4], ids=lambda v: str(v.dtype))
def test_assert_binary_accepts_bool_int_and_float_zero_one(got: Any, expected: Any) -> None:
    assert_binary(got, expected)


@pytest.mark.parametrize(
    ("got", "fragment"),
    [
        (
            torch.tensor([1, 1, 1]),
            r"wrong in 1 of 3 entries \(first at index \[1\]: expected 0, got 1\)",
        ),
        (torch.tensor([2, 0, 1]), "should hold only 0 and 1"),
        (torch.tensor([0.5, 0.0, 1.0]), "should hold only 0 and 1"),
        (torch.tensor([-1, 0, 1]), "should hold only 0 and 1"),
        (torch.tensor([1, 0]), r"should have shape \[3\], got \[2\]"),
        (torch.tensor([[1, 0, 1]]), r"should have shape \[3\], got \[1, 3\]"),
        (torch.tensor([1j, 0, 1]), "complex"),
        (handle(), "should be a tensor"),
        (Liar(), "should be a tensor"),
    ],
)
def test_assert_binary_rejects(got: Any, fragment: str) -> None:
    with pytest.raises(AssertionError, match=fragment):
        assert_binary(got, torch.tensor([True, False, True]))


# --------------------------------------------------------------------------- assert_shape
def test_assert_shape() -> None:
    assert_shape(torch.zeros(2, 3), (2, 3))
    assert_shape(np.zeros((2, 3)), [2, 3])
    assert_shape(torch.tensor(1.0), [])
    with pytest.raises(AssertionError) as info:
        assert_shape(torch.zeros(3, 2), (2, 3), what="logits")
    assert str(info.value) == "logits should have shape [2, 3], got [3, 2]"
    for bad in (handle(), Liar(), "tensor([1., 2.])", object()):
        with pytest.raises(AssertionError, match="should be a tensor"):
            assert_shape(bad, [3])


def test_as_tensor_detaches_and_copies_numpy() -> None:
    leaf = torch.ones(2, requires_grad=True)
    assert not as_tensor(leaf * 2).requires_grad
    array = np.zeros(3)
    tensor = as_tensor(array)
    tensor += 1
    assert array.sum() == 0
