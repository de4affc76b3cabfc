"""Public tests of the perceptron assignment: run them with `autograder check perceptron.ipynb`.

They use small fixed examples with known answers. Passing them is a good sign, not a
guarantee: the hidden tests use other data and more edge cases.
"""

from __future__ import annotations

import torch

from autograder.testing import as_tensor, assert_binary, assert_close, assert_shape

CORNERS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))  # (0,0), (0,1), (1,0), (1,1)


def activation(w, X: torch.Tensor) -> torch.Tensor:
    """w[0] + X @ w[1:], in float64."""
    w = as_tensor(w).to(torch.float64)
    return w[0] + X.to(torch.float64) @ w[1:]


def test_predict_or_example(student):
    """perceptron_predict([-0.5, 1, 1], X) computes OR on the four points of {0,1}^2"""
    got = student.perceptron_predict(torch.tensor([-0.5, 1.0, 1.0]), torch.tensor(CORNERS))
    assert_binary(got, [0, 1, 1, 1], what="perceptron_predict([-0.5, 1, 1], X)")


def test_predict_strict_step(student):
    """an activation of exactly 0 is predicted 0 (the step is strict)"""
    got = student.perceptron_predict(
        torch.tensor([-1.0, 1.0, 0.0]), torch.tensor([[1.0, 5.0], [2.0, 0.0]])
    )
    assert_binary(got, [0, 1], what="perceptron_predict([-1, 1, 0], [[1, 5], [2, 0]])")


def test_predict_bias_only(student):
    """with w[1:] = 0 the prediction is 1 for every point when the bias w[0] is positive"""
    got = student.perceptron_predict(torch.tensor([2.0, 0.0]), torch.tensor([[0.3], [-1.0]]))
    assert_binary(got, [1, 1], what="perceptron_predict([2, 0], [[0.3], [-1]])")


def test_and_weights_truth_table(student):
    """AND_WEIGHTS has shape [3] and computes AND on (0,0), (0,1), (1,0), (1,1)"""
    w = student.AND_WEIGHTS
    assert_shape(w, [3], what="AND_WEIGHTS")
    pred = (activation(w, torch.tensor(CORNERS)) > 0).to(torch.float64)
    assert_binary(pred, [0, 0, 0, 1], what="the AND_WEIGHTS perceptron on the four points")


def test_train_and(student):
    """perceptron_train learns AND: the returned w [3] classifies the four points correctly"""
    X = torch.tensor(CORNERS)
    w = student.perceptron_train(X, torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert_shape(w, [3], what="perceptron_train(X, y) on AND")
    pred = (activation(w, X) > 0).to(torch.float64)
    assert_binary(pred, [0, 0, 0, 1], what="the trained perceptron on AND")


def test_train_first_update(student):
    """from zero weights, x = [2, -1] with label 1 and lr = 0.5 gives w = [0.5, 1, -0.5]"""
    w = student.perceptron_train(torch.tensor([[2.0, -1.0]]), torch.tensor([1.0]), lr=0.5)
    assert_close(w, [0.5, 1.0, -0.5], what="perceptron_train on one point with lr = 0.5")


def test_train_xor_returns(student):
    """on XOR, perceptron_train(X, y, epochs=5) returns a weight vector of shape [3]"""
    w = student.perceptron_train(
        torch.tensor(CORNERS), torch.tensor([0.0, 1.0, 1.0, 0.0]), epochs=5
    )
    assert_shape(w, [3], what="perceptron_train(X, y, epochs=5) on XOR")
