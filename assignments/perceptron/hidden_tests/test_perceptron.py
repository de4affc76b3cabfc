"""Hidden tests of the perceptron assignment (instructor only; never shipped to students).

Fixtures, provided by the grader:
- `student`: proxy to the submitted notebook; calls run in the sandbox, arguments and results
  cross as copies of plain data;
- `reference`: the namespace of `reference_solutions/perceptron/perceptron.ipynb`.

Every input is built here from explicit generators, never from the student's state. Question
weights (partial credit = points x passed weight / total weight):
- predict (3 points, total weight 12): matches_reference 6 x 1, strict_threshold 3,
  uses_bias 2, float64 1;
- and_weights (2 points, total weight 4): shape 1, truth_table 3;
- train (4 points, total weight 16): returns_weight_vector 2 x 1, separates 4 x 2,
  learning_rate 2 x 1, first_update_from_zero 2, xor_returns 2.
The train tests come last: a `perceptron_train` that never returns costs one call timeout
per test, after every other question has been graded.
"""

from __future__ import annotations

import pytest
import torch

from autograder.testing import as_tensor, assert_binary, assert_shape

DEFAULT_EPOCHS = 100  # perceptron_train's default in the contract

# the four points of {0,1}^2, in this order
CORNERS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))


def corners() -> torch.Tensor:
    return torch.tensor(CORNERS)


# ---------------------------------------------------------------------------------------------
# data


def random_problem(n: int, d: int, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Random weights [d+1] and points [n, d] whose activations are all far from 0.

    The margin makes the verdict the same for every correct implementation, whatever its float
    dtype or summation order. The seeds are chosen so that dropping the bias w[0] changes at
    least one prediction. A violation is a bug of this test (RuntimeError, not a failure).
    """
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d + 1, generator=g, dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w, X = w.to(dtype), X.to(dtype)
    without_bias = X.double() @ w.double()[1:]
    activation = w.double()[0] + without_bias
    if min(float(activation.abs().min()), float(without_bias.abs().min())) < 1e-3 or not bool(
        ((activation > 0) != (without_bias > 0)).any()
    ):
        raise RuntimeError(f"hidden test data (seed {seed}) does not suit the test: pick another")
    return w, X


def separable(n: int, d: int, seed: int, *, bias: float, margin: float, sigma: float):
    """n points in R^d split by the hyperplane bias + u.x = 0 (|u| = 1), none within `margin`.

    The cloud is centred on the hyperplane, at distance `bias` from the origin, so both labels
    occur and no hyperplane through the origin separates them. Guard: Novikoff's bound
    (R / gamma)^2 on the number of mistakes of Rosenblatt's rule, computed in the augmented
    space (1, x) for the generating hyperplane, stays below DEFAULT_EPOCHS, so every correct
    implementation reaches an epoch without mistakes within the default epochs, whatever order
    it visits the points in.
    """
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(d, generator=g, dtype=torch.float64)
    u = u / u.norm()
    kept: list[torch.Tensor] = []
    while sum(len(k) for k in kept) < n:
        cand = -bias * u + sigma * torch.randn(4 * n, d, generator=g, dtype=torch.float64)
        kept.append(cand[(bias + cand @ u).abs() >= margin])
    X = torch.cat(kept)[:n].to(torch.float32)
    activation = bias + X.double() @ u
    y = (activation > 0).to(torch.float32)
    x_tilde_norm = (1.0 + (X.double() ** 2).sum(dim=1)).sqrt()
    gamma = float(activation.abs().min()) / (1.0 + bias**2) ** 0.5
    mistakes_bound = (float(x_tilde_norm.max()) / gamma) ** 2
    if mistakes_bound >= DEFAULT_EPOCHS or not 0 < float(y.sum()) < n:
        raise RuntimeError(f"hidden test data (seed {seed}) is not separable enough")
    return X, y


def dataset(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh linearly separable training set (X [n, d] float32, y [n] float32 0/1)."""
    if name == "and":
        return corners(), torch.tensor([0.0, 0.0, 0.0, 1.0])
    if name == "or":
        return corners(), torch.tensor([0.0, 1.0, 1.0, 1.0])
    if name == "blobs2d":
        return separable(40, 2, seed=8, bias=1.0, margin=0.5, sigma=0.6)
    if name == "blobs5d":
        return separable(60, 5, seed=11, bias=1.0, margin=0.6, sigma=0.5)
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# helpers (trusted side)


def weight_vector(value: object, size: int, what: str) -> torch.Tensor:
    """The student's weights as a float64 tensor of shape [size], or a failure saying why."""
    w = as_tensor(value, what)
    if list(w.shape) != [size]:
        raise AssertionError(
            f"{what} should be a weight vector of shape [{size}] (bias first), "
            f"got shape {list(w.shape)}"
        )
    if w.is_complex():
        raise AssertionError(f"{what} should hold real numbers, got {w.dtype}")
    w = w.to(torch.float64)
    if not bool(torch.isfinite(w).all()):
        raise AssertionError(f"{what} contains NaN or infinite values: {w.tolist()}")
    return w


def fmt(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values.tolist()) + "]"


def assert_separates(reference, w: torch.Tensor, X: torch.Tensor, y: torch.Tensor, what: str):
    """Fail unless the weights `w` (float64 [d+1]) classify every point of (X, y) correctly.

    Judged with the reference prediction, never the student's. A point whose activation lies
    within float32 rounding of 0 is not held against the student: the sign of such an
    activation depends on the dtype and the order of the sums.
    """
    pred = as_tensor(reference.perceptron_predict(w.clone(), X.clone())).to(torch.float64)
    X64 = X.to(torch.float64)
    activation = w[0] + X64 @ w[1:]
    rounding = 1e-5 * (w[0].abs() + X64.abs() @ w[1:].abs())
    wrong = (pred != y.to(torch.float64)) & ~(activation.abs() < rounding)
    if bool(wrong.any()):
        i = int(wrong.nonzero()[0, 0])
        raise AssertionError(
            f"{what} returned w = {fmt(w)}, which misclassifies {int(wrong.sum())} of {len(y)} "
            f"training points (e.g. point {i}, label {int(y[i])}, activation "
            f"w[0] + x @ w[1:] = {float(activation[i]):.4g}); on linearly separable data "
            "Rosenblatt's rule from zero weights must end with every training point correct "
            f"within {DEFAULT_EPOCHS} epochs"
        )


# ---------------------------------------------------------------------------------------------
# predict (3 points)

PREDICT_CASES = [(50, 3, 5), (30, 2, 4), (7, 1, 5), (1, 4, 27), (1, 1, 4), (200, 10, 1)]


@pytest.mark.parametrize(
    ("n", "d", "seed"), PREDICT_CASES, ids=[f"n{n}-d{d}" for n, d, _ in PREDICT_CASES]
)
def test_predict_matches_reference(student, reference, n, d, seed):
    """predicts 1 exactly where w[0] + X @ w[1:] > 0, with an output of shape [n] (random w, X)"""
    w, X = random_problem(n, d, seed, torch.float32)
    got = student.perceptron_predict(w.clone(), X.clone())
    assert_binary(
        got,
        reference.perceptron_predict(w.clone(), X.clone()),
        what=f"perceptron_predict(w, X) with w of shape [{d + 1}] and X of shape [{n}, {d}]",
    )


@pytest.mark.weight(3)
def test_predict_strict_threshold(student, reference):
    """the step is strict: a point whose activation is exactly 0 is predicted 0"""
    g = torch.Generator().manual_seed(21)
    grid = torch.tensor([[a, b] for a in range(-2, 3) for b in range(-2, 3)], dtype=torch.float32)
    cases = [
        # activation x1 + x2 - 1: exactly 0 on 4 of the 25 grid points
        (torch.tensor([-1.0, 1.0, 1.0]), grid),
        # small integers: many activations are exactly 0, all exact in float32
        (
            torch.randint(-2, 3, (5,), generator=g).to(torch.float32),
            torch.randint(-2, 3, (40, 4), generator=g).to(torch.float32),
        ),
    ]
    for w, X in cases:
        what = f"perceptron_predict(w, X) with integer-valued w = {w.tolist()}"
        got = student.perceptron_predict(w.clone(), X.clone())
        assert_shape(got, [X.shape[0]], what=what)
        at_zero = (w[0] + X @ w[1:]) == 0
        zeros_got = as_tensor(got).to(torch.float64)[at_zero]
        if bool((zeros_got != 0).any()):
            raise AssertionError(
                f"{what} is not 0 at {int((zeros_got != 0).sum())} of the {int(at_zero.sum())} "
                "points whose activation w[0] + x @ w[1:] is exactly 0: the step is strict, "
                "1 only where the activation is > 0"
            )
        assert_binary(got, reference.perceptron_predict(w.clone(), X.clone()), what=what)


@pytest.mark.weight(2)
def test_predict_uses_bias(student):
    """uses the bias w[0]: with w[1:] = 0 every point is predicted 1 if w[0] > 0, else 0"""
    g = torch.Generator().manual_seed(31)
    X = torch.randn(6, 3, generator=g)
    for bias in (2.0, -2.0):
        w = torch.tensor([bias, 0.0, 0.0, 0.0])
        expected = torch.full((6,), 1.0 if bias > 0 else 0.0)
        assert_binary(
            student.perceptron_predict(w.clone(), X.clone()),
            expected,
            what=f"perceptron_predict(w, X) with w = {w.tolist()} (every activation is {bias})",
        )


def test_predict_float64(student, reference):
    """works on float64 inputs (w and X both float64)"""
    w, X = random_problem(25, 3, seed=4, dtype=torch.float64)
    assert_binary(
        student.perceptron_predict(w.clone(), X.clone()),
        reference.perceptron_predict(w.clone(), X.clone()),
        what="perceptron_predict(w, X) with float64 w [4] and X [25, 3]",
    )


# ---------------------------------------------------------------------------------------------
# and_weights (2 points)


def test_and_weights_shape(student):
    """AND_WEIGHTS is a tensor of shape [3] (bias first)"""
    assert_shape(student.AND_WEIGHTS, [3], what="AND_WEIGHTS")


@pytest.mark.weight(3)
def test_and_weights_truth_table(student, reference):
    """predictions with AND_WEIGHTS on (0,0), (0,1), (1,0), (1,1) are 0, 0, 0, 1"""
    w = weight_vector(student.AND_WEIGHTS, 3, "AND_WEIGHTS")
    pred = as_tensor(reference.perceptron_predict(w.clone(), corners())).to(torch.float64)
    expected = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    if not torch.equal(pred, expected):
        activation = w[0] + corners().to(torch.float64) @ w[1:]
        raise AssertionError(
            f"AND_WEIGHTS = {fmt(w)} gives activations {fmt(activation)} on (0,0), (0,1), "
            f"(1,0), (1,1), hence predictions {[int(v) for v in pred.tolist()]}; AND needs "
            "[0, 0, 0, 1] (an activation of exactly 0 predicts 0)"
        )


# ---------------------------------------------------------------------------------------------
# train (4 points)


@pytest.mark.parametrize("name", ["and", "blobs5d"])
def test_train_returns_weight_vector(student, name):
    """returns a weight vector w of shape [d+1] for X of shape [n, d]"""
    X, y = dataset(name)
    w = student.perceptron_train(X.clone(), y.clone())
    assert_shape(
        w, [X.shape[1] + 1], what=f"perceptron_train(X, y) with X of shape {list(X.shape)}"
    )


@pytest.mark.weight(2)
@pytest.mark.parametrize("name", ["and", "or", "blobs2d", "blobs5d"])
def test_train_separates(student, reference, name):
    """on linearly separable data, the returned w classifies every training point correctly"""
    X, y = dataset(name)
    what = f"perceptron_train(X, y) on a separable set, X of shape {list(X.shape)},"
    w = weight_vector(student.perceptron_train(X.clone(), y.clone()), X.shape[1] + 1, what)
    assert_separates(reference, w, X, y, what)


@pytest.mark.parametrize(("name", "lr"), [("and", 0.5), ("blobs2d", 0.25)])
def test_train_learning_rate(student, reference, name, lr):
    """accepts a learning rate lr and still classifies every training point correctly"""
    X, y = dataset(name)
    what = f"perceptron_train(X, y, lr={lr}) on a separable set, X of shape {list(X.shape)},"
    w = weight_vector(student.perceptron_train(X.clone(), y.clone(), lr=lr), X.shape[1] + 1, what)
    assert_separates(reference, w, X, y, what)


@pytest.mark.weight(2)
def test_train_first_update_from_zero(student):
    """starts from zero weights and updates w += lr * (y - y_hat) * [1, x], bias included"""
    # One point, label 1: any correct implementation predicts 0 at w = 0 (activation exactly 0),
    # makes the single update lr * [1, x] and then never changes w again, in any visiting order.
    X = torch.tensor([[2.0, -1.0]])
    y = torch.tensor([1.0])
    what = "perceptron_train(X, y, lr=0.5) on the single point x = [2, -1] with label 1"
    w = weight_vector(student.perceptron_train(X, y, lr=0.5), 3, what)
    expected = torch.tensor([0.5, 1.0, -0.5], dtype=torch.float64)
    if not torch.allclose(w, expected, rtol=1e-5, atol=1e-6):
        raise AssertionError(
            f"{what} returned {fmt(w)}; starting from w = 0 the point is predicted 0 "
            "(activation exactly 0), so Rosenblatt's rule makes one update "
            "w += lr * (1 - 0) * [1, 2, -1] = [0.5, 1, -0.5], after which the point is "
            "classified correctly and w no longer changes"
        )


@pytest.mark.weight(2)
def test_train_xor_returns(student):
    """on XOR (not linearly separable) returns a weight vector of shape [3] after epochs=5"""
    X = corners()
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    weight_vector(
        student.perceptron_train(X, y, epochs=5), 3, "perceptron_train(X, y, epochs=5) on XOR"
    )
