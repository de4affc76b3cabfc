"""Hidden tests of the cnn assignment (instructor only; never shipped to students).

Fixtures, provided by the grader:
- `student`: proxy to the submitted notebook; calls run in the sandbox, arguments and results
  cross as copies of plain data, a returned module stays there and comes back as a handle;
- `reference`: the namespace of `reference_solutions/cnn/cnn.ipynb` (unused: every expected
  value here comes from PyTorch itself, computed on this, the trusted, side).

Every input is built here from explicit generators. `conv2d` and `max_pool2d` run with
PyTorch's convolution and pooling disabled (`forbid` in assignment.toml). Question weights
(partial credit = points x passed weight / total weight):
- conv2d (4 points, total weight 11): matches_torch 9 x 1, defaults 1, float64 1;
- maxpool (2 points, total weight 8): matches_torch 6 x 1, all_negative 1, float64 1;
- digits (4 points, total weight 3): held-out accuracy >= 0.80, >= 0.875, >= 0.95, 1 each.
  `train_digits` is called once per submission (the first digits test); the other digits
  tests reuse that accuracy.
The digits tests come last: a `train_digits` that hangs costs one call timeout, after every
other question has been graded.
"""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from autograder.grader.proxy import Handle, StudentCodeError
from autograder.testing import as_tensor, assert_close

# ---------------------------------------------------------------------------------------------
# conv2d (4 points)

# name, N, C, H, W, C_out (the O of the contract), kh, kw, stride, padding, bias
CONV_CASES = [
    ("3x3", 2, 3, 7, 7, 4, 3, 3, 1, 0, True),
    ("rect-kernel-nobias", 1, 2, 6, 9, 3, 3, 2, 1, 0, False),
    ("pad1", 2, 3, 5, 6, 2, 3, 3, 1, 1, True),
    ("pad2-kernel-larger-than-input-nobias", 3, 1, 4, 5, 2, 5, 3, 1, 2, False),
    ("stride2", 2, 2, 9, 8, 5, 3, 3, 2, 0, True),
    ("stride3-pad1", 2, 4, 10, 11, 3, 4, 2, 3, 1, True),
    ("stride2-pad2-nobias", 1, 3, 8, 7, 4, 3, 3, 2, 2, False),
    ("1x1", 2, 5, 4, 3, 6, 1, 1, 1, 0, True),
    ("kernel-covers-image", 4, 3, 5, 4, 2, 5, 4, 1, 0, True),
]


def conv_inputs(seed: int, N, C, H, W, C_out, kh, kw, dtype=torch.float32):
    """x [N, C, H, W], weight [C_out, C, kh, kw] (outputs about 1) and bias [C_out]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, C, H, W, generator=g, dtype=torch.float64)
    w = torch.randn(C_out, C, kh, kw, generator=g, dtype=torch.float64) / math.sqrt(C * kh * kw)
    b = torch.randn(C_out, generator=g, dtype=torch.float64)
    return x.to(dtype), w.to(dtype), b.to(dtype)


def expected_conv(x, w, b, stride, padding):
    """PyTorch's convolution of the very same values, in float64 (trusted side)."""
    return F.conv2d(
        x.double(), w.double(), None if b is None else b.double(), stride=stride, padding=padding
    )


@pytest.mark.parametrize(
    ("name", "N", "C", "H", "W", "C_out", "kh", "kw", "stride", "padding", "bias"),
    CONV_CASES,
    ids=[c[0] for c in CONV_CASES],
)
def test_conv2d_matches_torch(student, name, N, C, H, W, C_out, kh, kw, stride, padding, bias):
    """equals torch.nn.functional.conv2d (random x, weight, bias; several strides, paddings)"""
    seed = 100 + [c[0] for c in CONV_CASES].index(name)
    x, w, b = conv_inputs(seed, N, C, H, W, C_out, kh, kw)
    what = (
        f"conv2d(x, weight{', bias' if bias else ''}, stride={stride}, padding={padding}) with "
        f"x of shape {[N, C, H, W]} and weight of shape {[C_out, C, kh, kw]}"
    )
    if bias:
        got = student.conv2d(x.clone(), w.clone(), b.clone(), stride=stride, padding=padding)
    else:
        got = student.conv2d(x.clone(), w.clone(), stride=stride, padding=padding)
    assert_close(got, expected_conv(x, w, b if bias else None, stride, padding), what=what)


def test_conv2d_defaults(student):
    """the defaults are stride 1 and padding 0; bias=None adds nothing"""
    x, w, b = conv_inputs(7, 2, 3, 6, 5, 4, 3, 3)
    want = expected_conv(x, w, None, 1, 0)
    assert_close(student.conv2d(x.clone(), w.clone()), want, what="conv2d(x, weight)")
    assert_close(student.conv2d(x.clone(), w.clone(), None), want, what="conv2d(x, weight, None)")
    assert_close(
        student.conv2d(x.clone(), w.clone(), b.clone()),
        expected_conv(x, w, b, 1, 0),
        what="conv2d(x, weight, bias)",
    )


def test_conv2d_float64(student):
    """works on float64 inputs (x, weight and bias all float64)"""
    x, w, b = conv_inputs(8, 2, 2, 6, 7, 3, 3, 3, dtype=torch.float64)
    got = student.conv2d(x.clone(), w.clone(), b.clone(), stride=1, padding=1)
    assert_close(
        got,
        expected_conv(x, w, b, 1, 1),
        what="conv2d(x, weight, bias, stride=1, padding=1) in float64",
    )


# ---------------------------------------------------------------------------------------------
# maxpool (2 points)

# name, N, C, H, W, kernel_size, stride (None: not passed, the default)
POOL_CASES = [
    ("k2-default-stride", 2, 3, 8, 8, 2, None),
    ("k3-default-stride-uneven", 1, 2, 10, 7, 3, None),
    ("k4-default-stride-odd", 2, 1, 9, 13, 4, None),
    ("k2-stride1", 2, 2, 5, 6, 2, 1),
    ("k3-stride2", 1, 3, 9, 9, 3, 2),
    ("k2-stride3", 2, 1, 8, 9, 2, 3),
]


def pool_input(seed: int, N, C, H, W, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, C, H, W, generator=g, dtype=torch.float64).to(dtype)


@pytest.mark.parametrize(
    ("name", "N", "C", "H", "W", "k", "stride"), POOL_CASES, ids=[c[0] for c in POOL_CASES]
)
def test_maxpool_matches_torch(student, name, N, C, H, W, k, stride):
    """equals torch.nn.functional.max_pool2d (random x; stride given or left to its default)"""
    x = pool_input(200 + [c[0] for c in POOL_CASES].index(name), N, C, H, W)
    if stride is None:
        got = student.max_pool2d(x.clone(), k)
        what = f"max_pool2d(x, {k}) (default stride) with x of shape {[N, C, H, W]}"
    elif name == "k2-stride3":  # stride passed positionally
        got = student.max_pool2d(x.clone(), k, stride)
        what = f"max_pool2d(x, {k}, {stride}) with x of shape {[N, C, H, W]}"
    else:
        got = student.max_pool2d(x.clone(), k, stride=stride)
        what = f"max_pool2d(x, {k}, stride={stride}) with x of shape {[N, C, H, W]}"
    assert_close(got, F.max_pool2d(x, k, stride), what=what)


def test_maxpool_all_negative(student):
    """takes the maximum of negative values too (every input value below -1)"""
    g = torch.Generator().manual_seed(300)
    x = -1.0 - torch.rand(2, 2, 6, 6, generator=g)
    assert_close(
        student.max_pool2d(x.clone(), 2, stride=2),
        F.max_pool2d(x, 2, 2),
        what="max_pool2d(x, 2, stride=2) on an input whose values are all below -1",
    )


def test_maxpool_float64(student):
    """works on float64 inputs"""
    x = pool_input(301, 2, 3, 7, 7, dtype=torch.float64)
    assert_close(
        student.max_pool2d(x.clone(), 3, stride=2),
        F.max_pool2d(x, 3, 2),
        what="max_pool2d(x, 3, stride=2) in float64",
    )


# ---------------------------------------------------------------------------------------------
# digits (4 points)

DIGITS_SPLIT_SEED = 4242  # the grader's split: never the one of the student template
HELD_OUT = 500  # of scikit-learn's 1797 digits; train_digits gets the other 1297
THRESHOLDS = (0.80, 0.875, 0.95)


def digits_split() -> tuple[torch.Tensor, ...]:
    """(X_train [1297, 1, 8, 8], y_train, X_held_out [500, 1, 8, 8], y_held_out)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_SPLIT_SEED))
    held, train = perm[:HELD_OUT], perm[HELD_OUT:]
    return X[train], y[train], X[held], y[held]


def train_and_evaluate(student) -> float:
    """Train the student's network once and return its held-out accuracy."""
    X_train, y_train, X_held, y_held = digits_split()
    what = f"train_digits(X, y) with X of shape {list(X_train.shape)}"
    model = student.train_digits(X_train.clone(), y_train.clone())
    if not isinstance(model, Handle):
        got = f"a {type(model).__name__}"
        if isinstance(model, torch.Tensor):
            got = f"a tensor of shape {list(model.shape)}"
        raise AssertionError(f"{what} should return a trained torch.nn.Module, got {got}")
    # as in any evaluation: dropout off, batch-norm running statistics (a callable that is not
    # an nn.Module, without eval(), is called as it is)
    with contextlib.suppress(StudentCodeError):
        model.eval()
    logits = as_tensor(
        model(X_held.clone()),
        f"the module returned by train_digits, called on held-out digits [{HELD_OUT}, 1, 8, 8],",
    )
    if list(logits.shape) != [HELD_OUT, 10]:
        raise AssertionError(
            f"the module returned by train_digits maps held-out digits [{HELD_OUT}, 1, 8, 8] to "
            f"shape {list(logits.shape)}; expected [{HELD_OUT}, 10] logits"
        )
    if logits.is_complex() or not bool(torch.isfinite(logits.to(torch.float64)).all()):
        raise AssertionError("the module's logits on held-out digits are not all finite reals")
    return float((logits.argmax(dim=1) == y_held).to(torch.float64).mean())


@pytest.fixture(scope="session")
def digits_result() -> dict[str, object]:
    """One training per submission: each grading run of the hidden tests is one session."""
    return {}


def held_out_accuracy(student, cache: dict[str, object]) -> float:
    if "failure" in cache:
        raise AssertionError(cache["failure"])
    if "accuracy" not in cache:
        try:
            cache["accuracy"] = train_and_evaluate(student)
        except Exception as exc:
            cache["failure"] = str(exc) or type(exc).__name__
            raise
    accuracy = cache["accuracy"]
    assert isinstance(accuracy, float)
    return accuracy


def check_threshold(student, cache, threshold: float) -> None:
    accuracy = held_out_accuracy(student, cache)
    if accuracy < threshold:
        raise AssertionError(
            f"the network returned by train_digits classifies {accuracy:.3f} of {HELD_OUT} "
            f"held-out digits correctly; this check needs {threshold:.3f} (full marks from "
            f"{THRESHOLDS[-1]:.2f}, partial credit from {THRESHOLDS[0]:.2f})"
        )


def test_digits_accuracy_at_least_0_800(student, digits_result):
    """the trained network reaches a held-out accuracy of at least 0.80"""
    check_threshold(student, digits_result, THRESHOLDS[0])


def test_digits_accuracy_at_least_0_875(student, digits_result):
    """the trained network reaches a held-out accuracy of at least 0.875"""
    check_threshold(student, digits_result, THRESHOLDS[1])


def test_digits_accuracy_at_least_0_950(student, digits_result):
    """the trained network reaches a held-out accuracy of at least 0.95 (full marks)"""
    check_threshold(student, digits_result, THRESHOLDS[2])
