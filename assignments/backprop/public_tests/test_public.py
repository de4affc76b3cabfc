"""Public tests of the backprop assignment: run them with `autograder check backprop.ipynb`.

They use small fixed examples with known answers. Passing them is a good sign, not a
guarantee: the hidden tests use other shapes, float64 inputs, several backward calls in a row,
and more. As in grading, autograd is disabled while your modules' methods run.
"""

from __future__ import annotations

import torch

from autograder.testing import assert_close, assert_shape

W = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]])  # Linear(2, 3)
B = torch.tensor([0.5, 0.0, -1.0])
X = torch.tensor([[1.0, 1.0], [2.0, -1.0]])
G = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])  # a gradient w.r.t. the output


def linear_with_known_weights(student):
    lin = student.Linear(2, 3)
    lin.weight = W.clone()
    lin.bias = B.clone()
    return lin


def test_linear_shapes(student):
    """Linear(2, 3) has weight [3, 2] and bias [3]"""
    lin = student.Linear(2, 3)
    assert_shape(lin.weight, [3, 2], what="Linear(2, 3).weight")
    assert_shape(lin.bias, [3], what="Linear(2, 3).bias")


def test_linear_forward_backward(student):
    """forward = x @ W.T + b; backward returns G @ W; grad_weight = G.T @ x; grad_bias = sum of G"""
    lin = linear_with_known_weights(student)
    assert_close(lin.forward(X), [[3.5, -1.0, 3.0], [0.5, 1.0, 4.0]], what="forward(x)")
    assert_close(lin.backward(G), [[7.0, 4.0], [-3.0, -2.0]], what="backward(grad_output)")
    assert_close(lin.grad_weight, [[1.0, 1.0], [2.0, -1.0], [0.0, 3.0]], what="grad_weight")
    assert_close(lin.grad_bias, [1.0, 1.0, 1.0], what="grad_bias")


def test_linear_accumulate_and_zero_grad(student):
    """a second backward adds to the gradients; zero_grad() resets them"""
    lin = linear_with_known_weights(student)
    for _ in range(2):
        lin.forward(X)
        lin.backward(G)
    assert_close(lin.grad_bias, [2.0, 2.0, 2.0], what="grad_bias after two backward calls")
    lin.zero_grad()
    lin.forward(X)
    lin.backward(G)
    assert_close(lin.grad_bias, [1.0, 1.0, 1.0], what="grad_bias after zero_grad and a backward")


def test_activations_relu(student):
    """ReLU: max(0, x); backward lets the gradient through where x > 0"""
    relu = student.ReLU()
    x = torch.tensor([[-2.0, 0.5], [3.0, -1.0]])
    assert_close(relu.forward(x), [[0.0, 0.5], [3.0, 0.0]], what="ReLU().forward(x)")
    assert_close(
        relu.backward(torch.tensor([[1.0, 2.0], [3.0, 4.0]])),
        [[0.0, 2.0], [3.0, 0.0]],
        what="ReLU().backward(g)",
    )


def test_activations_tanh(student):
    """Tanh: tanh(x); backward multiplies by 1 - tanh(x)^2"""
    tanh = student.Tanh()
    x = torch.tensor([[0.0, 1.0], [-2.0, 0.5]])
    assert_close(tanh.forward(x), torch.tanh(x), what="Tanh().forward(x)")
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert_close(tanh.backward(g), g * (1 - torch.tanh(x) ** 2), what="Tanh().backward(g)")


def test_mse_example(student):
    """MSELoss: mean of (p - t)^2 over all entries; backward 2 (p - t) / N"""
    loss = student.MSELoss()
    p = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    assert_close(loss.forward(p, t), 3.25, what="MSELoss().forward(p, t)", squeeze=True)
    assert_close(loss.backward(), [[0.0, 1.0], [1.5, 0.0]], what="MSELoss().backward()")


SCALE = '''
class Scale:
    """A stand-in module: forward x * s, backward grad_output * s."""

    def __init__(self, s):
        self.s = s

    def forward(self, x):
        return x * self.s

    def backward(self, grad_output):
        return grad_output * self.s
'''


def test_sequential_chains_stand_ins(student):
    """Sequential(Scale(2), Scale(-3)): forward multiplies by -6, backward too"""
    helpers = student.run_helper_code(SCALE)
    seq = student.Sequential(helpers.Scale(2.0), helpers.Scale(-3.0))
    x = torch.tensor([[1.0, 2.0]])
    assert_close(seq.forward(x), [[-6.0, -12.0]], what="Sequential(Scale(2), Scale(-3)).forward(x)")
    assert_close(
        seq.backward(x), [[-6.0, -12.0]], what="Sequential(Scale(2), Scale(-3)).backward(g)"
    )


def test_sequential_parameters(student):
    """Sequential(Linear(2, 3), ReLU()).parameters() is [(weight, grad), (bias, grad)]"""
    lin = linear_with_known_weights(student)
    seq = student.Sequential(lin, student.ReLU())
    seq.forward(X)
    seq.backward(torch.ones(2, 3))
    pairs = seq.parameters()
    assert len(pairs) == 2, f"expected 2 (parameter, gradient) pairs, got {len(pairs)}"
    assert_close(pairs[0][0], W, what="parameters()[0]: the weight")
    assert_close(pairs[1][0], B, what="parameters()[1]: the bias")
