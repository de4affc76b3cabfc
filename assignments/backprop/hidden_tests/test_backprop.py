"""Hidden tests of the backprop assignment (instructor only; never shipped to students).

Fixtures, provided by the grader:
- `student`: proxy to the submitted notebook; calls run in the sandbox, arguments and results
  cross as copies of plain data; objects (modules) stay there and come back as handles;
- `reference`: the namespace of `reference_solutions/backprop/backprop.ipynb`.

Contract: shared COURSE.md, section "backprop". Every question forbids autograd
(assignment.toml): the engine disables it while the student's code runs for these tests.

Every input is built here from explicit generators. Expected values are computed on the trusted
side in float64 (the reference modules, or torch autograd for `Sequential`), and compared with
`assert_close`'s float32 tolerances (rtol 1e-4, atol 1e-5); the shapes and magnitudes below keep
float32 rounding of any summation order at least 10x inside them.

Each question is graded on its own:
- `linear` sets `weight` and `bias` itself (through a small helper in the sandbox that keeps an
  `nn.Parameter` a Parameter), so a student's initialisation never matters;
- `sequential` runs the student's `Sequential` on stand-in modules defined in the sandbox by
  `student.run_helper_code(HELPERS)`: `Scale` (x * s), `Square` (x ** 2) and a linear layer
  stand-in that subclasses the student's `Linear` (when there is one) but overrides all of its
  behaviour, so `isinstance(m, Linear)` works while the student's own Linear, ReLU and Tanh
  are never used.

Question weights (partial credit = points x passed weight / total weight):
- linear (total 24): shapes 1, forward 5 x 1, forward_float64 1, backward_input 5 x 1,
  param_grads 5 x 1, grads_accumulate 2 x 2, zero_grad 2, uses_last_forward 1;
- activations (total 14): relu_forward 3 x 1, relu_backward 3 x 1, relu_last_forward 1,
  tanh_forward 3 x 1, tanh_backward 3 x 1, tanh_last_forward 1;
- mse (total 10): forward 5 x 1, backward 4 x 1, last_forward 1;
- sequential (total 16): forward 5 x 1, backward 5 x 1, reaches_every_module 2,
  parameters 2 x 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from autograder.grader.proxy import MissingName, StudentCodeError
from autograder.testing import as_tensor, assert_close, assert_shape

F64 = torch.float64

# ---------------------------------------------------------------------------------------------
# data


def randn(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, scale: float = 1.0):
    """Normal entries drawn in float64 (same values whatever `dtype`), then cast."""
    return (scale * torch.randn(*shape, generator=gen, dtype=F64)).to(dtype)


def no_exact_zero(x: torch.Tensor, seed: int) -> torch.Tensor:
    """ReLU's derivative at exactly 0 is a convention: never test it."""
    if bool((x == 0).any()):
        raise RuntimeError(f"hidden test data (seed {seed}) has an exact 0: pick another seed")
    return x


def fmt_shape(t: torch.Tensor) -> str:
    return f"[{', '.join(str(s) for s in t.shape)}]"


# ---------------------------------------------------------------------------------------------
# linear (question `linear`)

# (n, in_features, out_features, seed)
LINEAR_CASES = [(5, 3, 4, 1), (1, 1, 1, 2), (16, 7, 2, 3), (64, 20, 10, 4), (3, 1, 6, 5)]
LINEAR_IDS = [f"n{n}-in{i}-out{o}" for n, i, o, _ in LINEAR_CASES]


def linear_data(n: int, d_in: int, d_out: int, seed: int, dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(seed)
    W = randn((d_out, d_in), gen, dtype)
    b = randn((d_out,), gen, dtype)
    xs = [randn((n, d_in), gen, dtype) for _ in range(3)]
    gs = [randn((n, d_out), gen, dtype) for _ in range(3)]
    return W, b, xs, gs


SET_TENSOR = '''
import torch


def set_tensor(module, name, value):
    """module.name = value, kept an nn.Parameter if the module made it one."""
    old = getattr(module, name, None)
    if isinstance(old, torch.nn.Parameter):
        value = torch.nn.Parameter(value, requires_grad=old.requires_grad)
    setattr(module, name, value)
'''


def student_linear(student: Any, W: torch.Tensor, b: torch.Tensor) -> Any:
    """The student's Linear(in, out) with the test's weight and bias."""
    d_out, d_in = W.shape
    lin = student.Linear(d_in, d_out)
    helpers = student.run_helper_code(SET_TENSOR)
    for name, value in (("weight", W), ("bias", b)):
        try:
            helpers.set_tensor(lin, name, value.clone())
        except StudentCodeError as exc:
            raise AssertionError(
                f"the test could not set Linear({d_in}, {d_out}).{name} to its own tensor of "
                f"shape {list(value.shape)}: {exc}"
            ) from None
    return lin


def reference_linear(reference: Any, W: torch.Tensor, b: torch.Tensor) -> Any:
    """The reference Linear in float64 with the same weight and bias."""
    lin = reference.Linear(W.shape[1], W.shape[0])
    lin.weight = W.to(F64)
    lin.bias = b.to(F64)
    lin.zero_grad()
    return lin


def linear_what(W: torch.Tensor, n: int) -> str:
    d_out, d_in = W.shape
    return f"Linear({d_in}, {d_out}) with an input of shape [{n}, {d_in}]"


def test_linear_shapes(student):
    """Linear(in_features, out_features) has weight [out, in] and bias [out], float tensors"""
    for d_in, d_out in ((3, 2), (1, 1), (64, 10), (5, 7)):
        lin = student.Linear(d_in, d_out)
        for name, shape in (("weight", [d_out, d_in]), ("bias", [d_out])):
            value = getattr(lin, name)
            what = f"Linear({d_in}, {d_out}).{name}"
            assert_shape(value, shape, what=what)
            if not as_tensor(value, what).is_floating_point():
                raise AssertionError(f"{what} should hold floating-point numbers")


@pytest.mark.parametrize(("n", "d_in", "d_out", "seed"), LINEAR_CASES, ids=LINEAR_IDS)
def test_linear_forward(student, reference, n, d_in, d_out, seed):
    """forward(x) = x @ weight.T + bias, shape [n, out] (weight and bias set by the test)"""
    W, b, xs, _ = linear_data(n, d_in, d_out, seed)
    got = student_linear(student, W, b).forward(xs[0].clone())
    expected = reference_linear(reference, W, b).forward(xs[0].to(F64))
    assert_close(got, expected, what=f"{linear_what(W, n)}: forward(x)")


def test_linear_forward_float64(student, reference):
    """forward works on float64 weights and inputs"""
    W, b, xs, _ = linear_data(6, 4, 3, seed=6, dtype=F64)
    got = student_linear(student, W, b).forward(xs[0].clone())
    expected = reference_linear(reference, W, b).forward(xs[0])
    assert_close(got, expected, what=f"{linear_what(W, 6)} in float64: forward(x)")


@pytest.mark.parametrize(("n", "d_in", "d_out", "seed"), LINEAR_CASES, ids=LINEAR_IDS)
def test_linear_backward_input(student, reference, n, d_in, d_out, seed):
    """backward(grad_output) returns the gradient w.r.t. the input, grad_output @ weight"""
    W, b, xs, gs = linear_data(n, d_in, d_out, seed)
    lin = student_linear(student, W, b)
    lin.forward(xs[0].clone())
    got = lin.backward(gs[0].clone())
    ref = reference_linear(reference, W, b)
    ref.forward(xs[0].to(F64))
    expected = ref.backward(gs[0].to(F64))
    assert_close(got, expected, what=f"{linear_what(W, n)}: backward(grad_output)")


def assert_param_grads(lin: Any, ref: Any, what: str) -> None:
    assert_close(lin.grad_weight, ref.grad_weight, what=f"{what}: grad_weight")
    assert_close(lin.grad_bias, ref.grad_bias, what=f"{what}: grad_bias")


@pytest.mark.parametrize(("n", "d_in", "d_out", "seed"), LINEAR_CASES, ids=LINEAR_IDS)
def test_linear_param_grads(student, reference, n, d_in, d_out, seed):
    """one backward: grad_weight = grad_output.T @ x, grad_bias = grad_output summed over rows"""
    W, b, xs, gs = linear_data(n, d_in, d_out, seed)
    lin = student_linear(student, W, b)
    lin.forward(xs[0].clone())
    lin.backward(gs[0].clone())
    ref = reference_linear(reference, W, b)
    ref.forward(xs[0].to(F64))
    ref.backward(gs[0].to(F64))
    assert_param_grads(lin, ref, f"{linear_what(W, n)}, after one backward")


@pytest.mark.weight(2)
@pytest.mark.parametrize(("n", "d_in", "d_out", "seed"), [(5, 3, 4, 11), (32, 8, 6, 12)])
def test_linear_grads_accumulate(student, reference, n, d_in, d_out, seed):
    """a second forward/backward adds to grad_weight and grad_bias (they accumulate)"""
    W, b, xs, gs = linear_data(n, d_in, d_out, seed)
    lin = student_linear(student, W, b)
    ref = reference_linear(reference, W, b)
    for x, g in zip(xs[:2], gs[:2], strict=True):
        lin.forward(x.clone())
        lin.backward(g.clone())
        ref.forward(x.to(F64))
        ref.backward(g.to(F64))
    assert_param_grads(
        lin,
        ref,
        f"{linear_what(W, n)}, after two forward/backward calls (the gradients should be the "
        "sum of the two calls' gradients)",
    )


@pytest.mark.weight(2)
def test_linear_zero_grad(student, reference):
    """zero_grad() resets the gradients: after it, one backward gives that backward's gradients"""
    W, b, xs, gs = linear_data(7, 4, 3, seed=13)
    lin = student_linear(student, W, b)
    for x, g in zip(xs[:2], gs[:2], strict=True):
        lin.forward(x.clone())
        lin.backward(g.clone())
    lin.zero_grad()
    lin.forward(xs[2].clone())
    lin.backward(gs[2].clone())
    ref = reference_linear(reference, W, b)
    ref.forward(xs[2].to(F64))
    ref.backward(gs[2].to(F64))
    assert_param_grads(
        lin, ref, f"{linear_what(W, 7)}, two backward calls, zero_grad(), then one backward"
    )


def test_linear_uses_last_forward(student, reference):
    """backward uses the input of the last forward (two forwards, then one backward)"""
    W, b, xs, gs = linear_data(6, 5, 2, seed=14)
    lin = student_linear(student, W, b)
    lin.forward(xs[0].clone())
    lin.forward(xs[1].clone())
    got = lin.backward(gs[0].clone())
    ref = reference_linear(reference, W, b)
    ref.forward(xs[1].to(F64))
    expected = ref.backward(gs[0].to(F64))
    what = f"{linear_what(W, 6)}: forward(x1), forward(x2), backward(g)"
    assert_close(got, expected, what=f"{what}: the returned gradient")
    assert_param_grads(lin, ref, f"{what} (the gradients should use x2)")


# ---------------------------------------------------------------------------------------------
# activations (question `activations`)

# (n, d, seed, scale, dtype)
ACT_CASES = [(4, 5, 21, 1.0, torch.float32), (1, 1, 22, 1.0, torch.float32), (32, 16, 23, 3.0, F64)]
ACT_IDS = [f"n{n}-d{d}-{str(dt).removeprefix('torch.')}" for n, d, _, _, dt in ACT_CASES]


def activation_data(n: int, d: int, seed: int, scale: float, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(seed)
    xs = [no_exact_zero(randn((n, d), gen, dtype, scale), seed) for _ in range(2)]
    g = randn((n, d), gen, dtype)
    return xs, g


def check_activation_forward(student, reference, name, n, d, seed, scale, dtype):
    (x, _), _ = activation_data(n, d, seed, scale, dtype)
    got = getattr(student, name)().forward(x.clone())
    expected = getattr(reference, name)().forward(x.to(F64))
    assert_close(got, expected, what=f"{name}().forward(x) with x of shape {fmt_shape(x)}")


def check_activation_backward(student, reference, name, n, d, seed, scale, dtype):
    (x, _), g = activation_data(n, d, seed, scale, dtype)
    module = getattr(student, name)()
    module.forward(x.clone())
    got = module.backward(g.clone())
    ref = getattr(reference, name)()
    ref.forward(x.to(F64))
    expected = ref.backward(g.to(F64))
    assert_close(
        got, expected, what=f"{name}().backward(grad_output) after forward(x), x {fmt_shape(x)}"
    )


def check_activation_last_forward(student, reference, name):
    (x1, x2), g = activation_data(6, 4, 24, 2.0, torch.float32)
    module = getattr(student, name)()
    module.forward(x1.clone())
    module.forward(x2.clone())
    got = module.backward(g.clone())
    ref = getattr(reference, name)()
    ref.forward(x2.to(F64))
    assert_close(
        got,
        ref.backward(g.to(F64)),
        what=f"{name}(): forward(x1), forward(x2), backward(g) (the derivative at x2)",
    )


@pytest.mark.parametrize(("n", "d", "seed", "scale", "dtype"), ACT_CASES, ids=ACT_IDS)
def test_activations_relu_forward(student, reference, n, d, seed, scale, dtype):
    """ReLU().forward(x) = max(0, x) elementwise"""
    check_activation_forward(student, reference, "ReLU", n, d, seed, scale, dtype)


@pytest.mark.parametrize(("n", "d", "seed", "scale", "dtype"), ACT_CASES, ids=ACT_IDS)
def test_activations_relu_backward(student, reference, n, d, seed, scale, dtype):
    """ReLU backward: grad_output where x > 0, 0 where x < 0"""
    check_activation_backward(student, reference, "ReLU", n, d, seed, scale, dtype)


def test_activations_relu_last_forward(student, reference):
    """ReLU backward uses the input of the last forward"""
    check_activation_last_forward(student, reference, "ReLU")


@pytest.mark.parametrize(("n", "d", "seed", "scale", "dtype"), ACT_CASES, ids=ACT_IDS)
def test_activations_tanh_forward(student, reference, n, d, seed, scale, dtype):
    """Tanh().forward(x) = tanh(x) elementwise"""
    check_activation_forward(student, reference, "Tanh", n, d, seed, scale, dtype)


@pytest.mark.parametrize(("n", "d", "seed", "scale", "dtype"), ACT_CASES, ids=ACT_IDS)
def test_activations_tanh_backward(student, reference, n, d, seed, scale, dtype):
    """Tanh backward: grad_output * (1 - tanh(x)^2)"""
    check_activation_backward(student, reference, "Tanh", n, d, seed, scale, dtype)


def test_activations_tanh_last_forward(student, reference):
    """Tanh backward uses the input of the last forward"""
    check_activation_last_forward(student, reference, "Tanh")


# ---------------------------------------------------------------------------------------------
# mse (question `mse`)

# (shape, seed, dtype)
MSE_CASES = [
    ((8, 1), 31, torch.float32),
    ((5, 3), 32, torch.float32),
    ((1, 1), 33, torch.float32),
    ((10,), 34, torch.float32),
    ((6, 4), 35, F64),
]
MSE_IDS = ["x".join(map(str, s)) + f"-{str(dt).removeprefix('torch.')}" for s, _, dt in MSE_CASES]


def mse_data(shape: tuple[int, ...], seed: int, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(seed)
    return [randn(shape, gen, dtype) for _ in range(4)]  # p1, t1, p2, t2


@pytest.mark.parametrize(("shape", "seed", "dtype"), MSE_CASES, ids=MSE_IDS)
def test_mse_forward(student, reference, shape, seed, dtype):
    """forward(prediction, target) is the mean of the squared errors over all entries, a scalar"""
    p, t, _, _ = mse_data(shape, seed, dtype)
    got = student.MSELoss().forward(p.clone(), t.clone())
    expected = reference.MSELoss().forward(p.to(F64), t.to(F64))
    # a 0-d tensor, a Python float or a one-element tensor is accepted as the scalar
    assert_close(
        got,
        expected,
        what=f"MSELoss().forward(prediction, target) with tensors of shape {list(shape)} "
        "(a scalar: a 0-d tensor or a float)",
        squeeze=True,
    )


@pytest.mark.parametrize(
    ("shape", "seed", "dtype"), MSE_CASES[:2] + MSE_CASES[3:], ids=MSE_IDS[:2] + MSE_IDS[3:]
)
def test_mse_backward(student, reference, shape, seed, dtype):
    """backward() returns 2 * (prediction - target) / N, N the number of entries"""
    p, t, _, _ = mse_data(shape, seed, dtype)
    loss = student.MSELoss()
    loss.forward(p.clone(), t.clone())
    got = loss.backward()
    ref = reference.MSELoss()
    ref.forward(p.to(F64), t.to(F64))
    assert_close(
        got, ref.backward(), what=f"MSELoss().backward() after forward on shape {list(shape)}"
    )


def test_mse_last_forward(student, reference):
    """backward() is the gradient of the last forward (two forwards, then backward)"""
    p1, t1, p2, t2 = mse_data((4, 3), 36, torch.float32)
    loss = student.MSELoss()
    loss.forward(p1.clone(), t1.clone())
    loss.forward(p2.clone(), t2.clone())
    got = loss.backward()
    ref = reference.MSELoss()
    ref.forward(p2.to(F64), t2.to(F64))
    assert_close(
        got, ref.backward(), what="MSELoss(): forward(p1, t1), forward(p2, t2), backward()"
    )


# ---------------------------------------------------------------------------------------------
# sequential (question `sequential`)

HELPERS = '''
"""Stand-in modules for the Sequential tests: known forward and backward, no autograd."""
import torch


class Scale:
    """forward: x * s; backward: grad_output * s; no parameters."""

    def __init__(self, s):
        self.s = s

    def forward(self, x):
        return x * self.s

    def __call__(self, x):
        return self.forward(x)

    def backward(self, grad_output):
        return grad_output * self.s

    def parameters(self):
        return []

    def zero_grad(self):
        pass


class Square:
    """forward: x * x (remembers x); backward: 2 * x * grad_output; no parameters."""

    def forward(self, x):
        self.x = x
        return x * x

    def __call__(self, x):
        return self.forward(x)

    def backward(self, grad_output):
        return 2 * self.x * grad_output

    def parameters(self):
        return []

    def zero_grad(self):
        pass


def _new(cls, *args, **kwargs):
    return object.__new__(cls)


def _init(self, weight, bias):
    if isinstance(self, torch.nn.Module):
        torch.nn.Module.__init__(self)
    self.weight = weight
    self.bias = bias
    self.grad_weight = torch.zeros_like(weight)
    self.grad_bias = torch.zeros_like(bias)
    self.x = None


def _forward(self, x):
    self.x = x
    return x @ self.weight.T + self.bias


def _call(self, x):
    return self.forward(x)


def _backward(self, grad_output):
    self.grad_weight = self.grad_weight + grad_output.T @ self.x
    self.grad_bias = self.grad_bias + grad_output.sum(dim=0)
    return grad_output @ self.weight


def _zero_grad(self):
    self.grad_weight = torch.zeros_like(self.weight)
    self.grad_bias = torch.zeros_like(self.bias)


def _parameters(self):
    return [(self.weight, self.grad_weight), (self.bias, self.grad_bias)]


def linear_class(base=None):
    """A linear layer with a known behaviour, as a subclass of the notebook's Linear if it can.

    Every method a Sequential may use is overridden, and class attributes shadow any
    property of the base with the same name, so nothing of the base's code runs.
    """
    namespace = {
        "__new__": _new,
        "__init__": _init,
        "forward": _forward,
        "__call__": _call,
        "backward": _backward,
        "zero_grad": _zero_grad,
        "parameters": _parameters,
        "weight": None,
        "bias": None,
        "grad_weight": None,
        "grad_bias": None,
        "x": None,
    }
    if isinstance(base, type):
        try:
            return type("Linear", (base,), dict(namespace))
        except Exception:
            pass
    return type("Linear", (object,), dict(namespace))
'''

# Architectures as lists of layers: ("scale", s), ("square",), ("linear", in, out).
ARCHS: dict[str, tuple[int, list[tuple[Any, ...]]]] = {  # name -> (input features, layers)
    "scale-linear": (3, [("scale", 2.0), ("linear", 3, 4)]),
    "linear-square-linear": (4, [("linear", 4, 6), ("square",), ("linear", 6, 2)]),
    "scale-linear-scale-linear": (
        5,
        [("scale", -1.5), ("linear", 5, 3), ("scale", 0.5), ("linear", 3, 3)],
    ),
    "one-linear": (2, [("linear", 2, 5)]),
}
# (architecture, batch size, seed, dtype)
SEQ_CASES = [
    ("scale-linear", 6, 41, torch.float32),
    ("linear-square-linear", 8, 42, torch.float32),
    ("scale-linear-scale-linear", 16, 43, torch.float32),
    ("one-linear", 1, 44, torch.float32),
    ("linear-square-linear", 5, 45, F64),
]
SEQ_IDS = [f"{a}-n{n}-{str(dt).removeprefix('torch.')}" for a, n, _, dt in SEQ_CASES]


def describe(arch: str) -> str:
    parts = []
    for layer in ARCHS[arch][1]:
        if layer[0] == "scale":
            parts.append(f"Scale({layer[1]})")
        elif layer[0] == "square":
            parts.append("Square()")
        else:
            parts.append(f"Linear({layer[1]}, {layer[2]})")
    return f"Sequential({', '.join(parts)})"


# appended to every Sequential message: the modules are not the student's
STAND_INS = (
    " (Scale, Square and Linear here are the grader's stand-in modules, with a known forward "
    "and backward)"
)


class Net:
    """One test network: the student's Sequential of stand-ins, and its trusted twin."""

    def __init__(self, student: Any, arch: str, n: int, seed: int, dtype: torch.dtype) -> None:
        d_in, layers = ARCHS[arch]
        gen = torch.Generator().manual_seed(seed)
        helpers = student.run_helper_code(HELPERS)
        try:
            base = student.Linear
        except MissingName:
            base = None
        linear_cls = helpers.linear_class(base)
        self.what = describe(arch)
        self.params: list[torch.Tensor] = []  # trusted float64 leaves: W1, b1, W2, b2, ...
        self.linears: list[Any] = []  # the student-side stand-ins (handles)
        modules: list[Any] = []
        steps: list[Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor]] = []
        for layer in layers:
            if layer[0] == "scale":
                modules.append(helpers.Scale(layer[1]))
                steps.append(lambda x, _p, s=layer[1]: x * s)
            elif layer[0] == "square":
                modules.append(helpers.Square())
                steps.append(lambda x, _p: x * x)
            else:
                W = randn((layer[2], layer[1]), gen, dtype, scale=0.7)
                b = randn((layer[2],), gen, dtype, scale=0.5)
                k = len(self.params)
                self.params += [W.to(F64), b.to(F64)]
                stand_in = linear_cls(W.clone(), b.clone())
                self.linears.append(stand_in)
                modules.append(stand_in)
                steps.append(lambda x, p, k=k: x @ p[k].T + p[k + 1])
        self.steps = steps
        self.seq = student.Sequential(*modules)
        self.x = randn((n, d_in), gen, dtype)
        self.g = randn((n, self.run(self.x.to(F64), self.params).shape[1]), gen, dtype)

    def run(self, x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        for step in self.steps:
            x = step(x, params)
        return x

    def expected(self) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Output, input gradient and parameter gradients, by autograd in float64."""
        x = self.x.to(F64).requires_grad_(True)
        params = [p.clone().requires_grad_(True) for p in self.params]
        out = self.run(x, params)
        grads = torch.autograd.grad(out, [x, *params], self.g.to(F64))
        return out.detach(), grads[0], list(grads[1:])

    def forward_backward(self) -> tuple[Any, Any]:
        out = self.seq.forward(self.x.clone())
        return out, self.seq.backward(self.g.clone())


@pytest.mark.parametrize(("arch", "n", "seed", "dtype"), SEQ_CASES, ids=SEQ_IDS)
def test_sequential_forward(student, arch, n, seed, dtype):
    """forward(x) feeds x through the modules in order and returns the last output"""
    net = Net(student, arch, n, seed, dtype)
    got = net.seq.forward(net.x.clone())
    expected, _, _ = net.expected()
    assert_close(got, expected, what=f"{net.what}.forward(x) with x {fmt_shape(net.x)}{STAND_INS}")


@pytest.mark.parametrize(("arch", "n", "seed", "dtype"), SEQ_CASES, ids=SEQ_IDS)
def test_sequential_backward(student, arch, n, seed, dtype):
    """backward(grad_output) runs the modules' backward in reverse order, returns d loss / d x"""
    net = Net(student, arch, n, seed, dtype)
    _, got = net.forward_backward()
    _, expected, _ = net.expected()
    assert_close(
        got, expected, what=f"{net.what}: forward(x), then backward(grad_output){STAND_INS}"
    )


@pytest.mark.weight(2)
def test_sequential_reaches_every_module(student):
    """backward passes each module the gradient w.r.t. its own output (checked in every Linear)"""
    for arch, n, seed in (("linear-square-linear", 7, 46), ("scale-linear-scale-linear", 4, 47)):
        net = Net(student, arch, n, seed, torch.float32)
        net.forward_backward()
        _, _, grads = net.expected()
        for i, linear in enumerate(net.linears):
            what = f"{net.what}: after forward and backward, Linear layer {i + 1}'s"
            assert_close(linear.grad_weight, grads[2 * i], what=f"{what} grad_weight{STAND_INS}")
            assert_close(linear.grad_bias, grads[2 * i + 1], what=f"{what} grad_bias{STAND_INS}")


def as_pair(item: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(item, list | tuple) or len(item) != 2:
        raise AssertionError(
            f"{what} should be a (parameter, gradient) pair, got {type(item).__name__}"
        )
    return item[0], item[1]


@pytest.mark.weight(2)
@pytest.mark.parametrize(
    ("arch", "n", "seed"), [("scale-linear-scale-linear", 6, 48), ("linear-square-linear", 3, 49)]
)
def test_sequential_parameters(student, arch, n, seed):
    """parameters() lists (parameter, gradient) of every Linear in order, weight before bias"""
    net = Net(student, arch, n, seed, torch.float32)
    net.forward_backward()
    _, _, grads = net.expected()
    pairs = net.seq.parameters()
    what = f"{net.what}.parameters(), after forward and backward,"
    if not isinstance(pairs, list | tuple):
        raise AssertionError(f"{what} should return a list of pairs, got {type(pairs).__name__}")
    if len(pairs) != len(net.params):
        raise AssertionError(
            f"{what} returned {len(pairs)} items; with {len(net.linears)} Linear layers it "
            f"should return {len(net.params)} (parameter, gradient) pairs: weight and bias of "
            f"each, modules without parameters contributing nothing{STAND_INS}"
        )
    for k, item in enumerate(pairs):
        layer, name = k // 2 + 1, ("weight", "bias")[k % 2]
        param, grad = as_pair(item, f"{what} item {k}")
        where = f"{what} item {k} (expected Linear layer {layer}'s {name}{STAND_INS})"
        assert_close(param, net.params[k], what=f"{where}: the parameter")
        assert_close(grad, grads[k], what=f"{where}: the gradient")
