"""Hidden tests of the optim assignment (instructor only; never shipped to students).

Fixtures, provided by the grader:
- `student`: proxy to the submitted notebook; calls run in the sandbox, arguments and results
  cross as copies of plain data;
- `reference`: the namespace of `reference_solutions/optim/optim.ipynb` (unused: the expected
  values come from `torch.optim` itself, run here on the trusted side in float64).

Contract: shared COURSE.md, section "optim". Every input is built here from explicit
generators. Multi-step tests run a training loop: the parameters and state the student's
function returns are fed back into it at the next step (as copies), and every step is compared
with `torch.optim.SGD` (dampening 0, nesterov False) or `torch.optim.Adam` (foreach off, no
weight decay, no amsgrad) driven by the same gradients. Tolerances are `assert_close`'s float32
defaults (rtol 1e-4, atol 1e-5); float32 arithmetic in any order stays 10x inside them on
these shapes, magnitudes and step counts.

`sgd_momentum_step` with momentum 0: only the parameters are compared (PyTorch keeps no
momentum buffer then, and the velocities returned cannot change any later step).

`cosine_lr` must return a number: a Python float (or int) is what the contract asks; a 0-d
(or one-element) real tensor is accepted too, since it behaves as a number wherever a learning
rate is used. Tolerance: rtol 1e-5, atol 1e-6 x base_lr (the rate spans decades near the end).

Question weights (partial credit = points x passed weight / total weight):
- sgd (total 14): plain 3 x 1, defaults 1, momentum 3 x 2, weight_decay 2 x 2;
- adam (total 14): first_step 3 x 1, several_steps 3 x 2, moments 2 x 1, resume 1,
  defaults 1, tiny_gradients 1;
- schedule (total 10): no_warmup 4 x 1, warmup 4 x 1, warmup_boundaries 2.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from autograder.testing import as_tensor, assert_close

F64 = torch.float64
Shapes = list[tuple[int, ...]]


def dtype_id(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def randn(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, scale: float = 1.0):
    """Normal entries drawn in float64 (the same values whatever `dtype`), then cast."""
    return (scale * torch.randn(*shape, generator=gen, dtype=F64)).to(dtype)


def problem(
    shapes: Shapes,
    steps: int,
    seed: int,
    dtype: torch.dtype,
    grad_scale: float = 1.0,
    param_scale: float = 1.0,
):
    """Initial parameters and one list of gradients per step."""
    gen = torch.Generator().manual_seed(seed)
    params = [randn(s, gen, dtype, param_scale) for s in shapes]
    grads = [[randn(s, gen, dtype, grad_scale) for s in shapes] for _ in range(steps)]
    return params, grads


def copies(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.clone() for t in tensors]


def unpack(result: Any, parts: tuple[str, ...], count: int, what: str) -> list[list[torch.Tensor]]:
    """The student's (list, list, ...) result, each list with one tensor per parameter."""
    names = ", ".join(parts)
    if not isinstance(result, list | tuple) or len(result) != len(parts):
        got = f"{type(result).__name__}" + (
            f" of length {len(result)}" if isinstance(result, list | tuple) else ""
        )
        raise AssertionError(f"{what} should return a tuple ({names}), got {got}")
    out = []
    for name, seq in zip(parts, result, strict=True):
        if not isinstance(seq, list | tuple) or len(seq) != count:
            raise AssertionError(
                f"{what}: {name} should be a list of {count} tensors (one per parameter), got "
                f"{type(seq).__name__}"
                + (f" of length {len(seq)}" if isinstance(seq, list | tuple) else "")
            )
        out.append([as_tensor(t, f"{what}: an item of {name}") for t in seq])
    return out


def fmt_shapes(shapes: Shapes) -> str:
    return "[" + ", ".join(str(list(s)) for s in shapes) + "]"


# ---------------------------------------------------------------------------------------------
# sgd (question `sgd`)


class TorchSGD:
    """torch.optim.SGD in float64 on copies of the parameters: the expected trajectory."""

    def __init__(self, params: list[torch.Tensor], lr: float, momentum: float, wd: float):
        self.params = [p.to(F64).clone() for p in params]
        self.opt = torch.optim.SGD(
            self.params, lr=lr, momentum=momentum, weight_decay=wd, dampening=0.0, nesterov=False
        )

    def step(self, grads: list[torch.Tensor]) -> None:
        for p, g in zip(self.params, grads, strict=True):
            p.grad = g.to(F64).clone()
        self.opt.step()

    def velocities(self) -> list[torch.Tensor]:
        return [self.opt.state[p]["momentum_buffer"] for p in self.params]


def sgd_what(shapes: Shapes, lr: float, momentum: float, wd: float, step: int, steps: int) -> str:
    return (
        f"sgd_momentum_step(params, grads, velocities, lr={lr}, momentum={momentum}, "
        f"weight_decay={wd}) on parameters of shapes {fmt_shapes(shapes)}, step {step} of {steps}"
        " (velocities starting at zeros, each step fed the previous step's results)"
    )


def run_sgd(student, shapes, lr, momentum, wd, steps, seed, dtype, check_velocities=True):
    params, grads = problem(shapes, steps, seed, dtype)
    velocities = [torch.zeros_like(p) for p in params]
    expected = TorchSGD(params, lr, momentum, wd)
    for k in range(steps):
        what = sgd_what(shapes, lr, momentum, wd, k + 1, steps)
        result = student.sgd_momentum_step(
            copies(params),
            copies(grads[k]),
            copies(velocities),
            lr,
            momentum=momentum,
            weight_decay=wd,
        )
        params, velocities = unpack(result, ("new_params", "new_velocities"), len(shapes), what)
        expected.step(grads[k])
        for i, (got, exp) in enumerate(zip(params, expected.params, strict=True)):
            assert_close(got, exp, what=f"{what}: new_params[{i}]")
        if check_velocities:
            for i, (got, exp) in enumerate(zip(velocities, expected.velocities(), strict=True)):
                assert_close(
                    got, exp, what=f"{what}: new_velocities[{i}] (PyTorch's momentum_buffer)"
                )


# (shapes, lr, weight_decay, seed, dtype)
SGD_PLAIN = [
    ([(5, 3), (3,)], 0.1, 0.0, 1, torch.float32),
    ([(1,)], 0.5, 0.0, 2, torch.float32),
    ([(4, 4), (2, 2, 2), (6,)], 0.05, 0.1, 3, F64),
]


@pytest.mark.parametrize(
    ("shapes", "lr", "wd", "seed", "dtype"),
    SGD_PLAIN,
    ids=[f"{len(c[0])}params-lr{c[1]}-wd{c[2]}-{dtype_id(c[4])}" for c in SGD_PLAIN],
)
def test_sgd_plain(student, shapes, lr, wd, seed, dtype):
    """momentum 0: p - lr * (grad + weight_decay * p), over 3 steps"""
    run_sgd(student, shapes, lr, 0.0, wd, 3, seed, dtype, check_velocities=False)


def test_sgd_defaults(student):
    """without momentum and weight_decay arguments (defaults 0): p - lr * grad"""
    shapes = [(3, 2), (2,)]
    params, (grads,) = problem(shapes, 1, seed=4, dtype=torch.float32)
    gen = torch.Generator().manual_seed(5)
    velocities = [randn(s, gen, torch.float32) for s in shapes]  # left over from earlier steps
    what = (
        "sgd_momentum_step(params, grads, velocities, lr=0.1) (momentum and weight_decay left "
        "at their defaults, 0) with non-zero velocities"
    )
    result = student.sgd_momentum_step(copies(params), copies(grads), copies(velocities), 0.1)
    new_params, _ = unpack(result, ("new_params", "new_velocities"), len(shapes), what)
    for i, (got, p, g) in enumerate(zip(new_params, params, grads, strict=True)):
        assert_close(got, p.to(F64) - 0.1 * g.to(F64), what=f"{what}: new_params[{i}]")


# (shapes, lr, momentum, steps, seed, dtype)
SGD_MOMENTUM = [
    ([(5, 3), (3,)], 0.1, 0.9, 6, 11, torch.float32),
    ([(8,), (2, 3, 4)], 0.01, 0.5, 8, 12, torch.float32),
    ([(3, 3)], 0.2, 0.99, 5, 13, F64),
]


@pytest.mark.weight(2)
@pytest.mark.parametrize(
    ("shapes", "lr", "momentum", "steps", "seed", "dtype"),
    SGD_MOMENTUM,
    ids=[f"lr{c[1]}-mom{c[2]}-{c[3]}steps-{dtype_id(c[5])}" for c in SGD_MOMENTUM],
)
def test_sgd_momentum(student, shapes, lr, momentum, steps, seed, dtype):
    """momentum: v = momentum * v + grad; p = p - lr * v, as torch.optim.SGD, over several steps"""
    run_sgd(student, shapes, lr, momentum, 0.0, steps, seed, dtype)


# (shapes, lr, momentum, weight_decay, steps, seed)
SGD_DECAY = [
    ([(4, 3), (3,)], 0.1, 0.9, 0.01, 6, 21),
    ([(10,), (2, 5)], 0.05, 0.8, 0.5, 5, 22),
]


@pytest.mark.weight(2)
@pytest.mark.parametrize(
    ("shapes", "lr", "momentum", "wd", "steps", "seed"),
    SGD_DECAY,
    ids=[f"lr{c[1]}-mom{c[2]}-wd{c[3]}" for c in SGD_DECAY],
)
def test_sgd_weight_decay(student, shapes, lr, momentum, wd, steps, seed):
    """weight decay enters the gradient before the momentum: g = grad + weight_decay * p"""
    run_sgd(student, shapes, lr, momentum, wd, steps, seed, torch.float32)


# ---------------------------------------------------------------------------------------------
# adam (question `adam`)


class TorchAdam:
    """torch.optim.Adam in float64 on copies of the parameters: the expected trajectory."""

    def __init__(self, params, lr, betas, eps, start=None):
        self.params = [p.to(F64).clone() for p in params]
        self.opt = torch.optim.Adam(
            self.params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=0.0,
            amsgrad=False,
            foreach=False,
        )
        if start is not None:  # resume: (steps already taken, m, v)
            done, m, v = start
            for p, m_i, v_i in zip(self.params, m, v, strict=True):
                self.opt.state[p] = {
                    "step": torch.tensor(float(done)),
                    "exp_avg": m_i.to(F64).clone(),
                    "exp_avg_sq": v_i.to(F64).clone(),
                }

    def step(self, grads: list[torch.Tensor]) -> None:
        for p, g in zip(self.params, grads, strict=True):
            p.grad = g.to(F64).clone()
        self.opt.step()

    def moments(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        states = [self.opt.state[p] for p in self.params]
        return [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]


def adam_what(shapes, lr, betas, eps, t, steps, start=1) -> str:
    args = "" if lr is None else f", lr={lr}, betas={betas}, eps={eps}"
    loop = (
        f", step t={t} of {start}..{start + steps - 1} (each step fed the previous step's results)"
        if steps > 1
        else f" with t={t}"
    )
    on = f"on parameters of shapes {fmt_shapes(shapes)}"
    return f"adam_step(params, grads, m, v, t{args}) {on}{loop}"


def run_adam(
    student,
    shapes,
    lr,
    betas,
    eps,
    steps,
    seed,
    dtype,
    *,
    check_params=True,
    check_moments=True,
    grad_scale=1.0,
    param_scale=1.0,
    start=None,
):
    """`steps` Adam steps from zero moments (or from `start` = (t0 - 1, m, v))."""
    params, grads = problem(shapes, steps, seed, dtype, grad_scale, param_scale)
    if start is None:
        m = [torch.zeros_like(p) for p in params]
        v = [torch.zeros_like(p) for p in params]
        first = 1
    else:
        first, m, v = start[0] + 1, [x.to(dtype) for x in start[1]], [x.to(dtype) for x in start[2]]
    expected = TorchAdam(params, 1e-3 if lr is None else lr, betas, eps, start)
    for k in range(steps):
        t = first + k
        what = adam_what(shapes, lr, betas, eps, t, steps, first)
        args = (copies(params), copies(grads[k]), copies(m), copies(v), t)
        if lr is None:  # the defaults
            result = student.adam_step(*args)
        else:
            result = student.adam_step(*args, lr=lr, betas=betas, eps=eps)
        params, m, v = unpack(result, ("new_params", "new_m", "new_v"), len(shapes), what)
        expected.step(grads[k])
        exp_m, exp_v = expected.moments()
        if check_moments:
            for i in range(len(shapes)):
                assert_close(m[i], exp_m[i], what=f"{what}: new_m[{i}] (PyTorch's exp_avg)")
                assert_close(v[i], exp_v[i], what=f"{what}: new_v[{i}] (PyTorch's exp_avg_sq)")
        if check_params:
            for i, (got, exp) in enumerate(zip(params, expected.params, strict=True)):
                assert_close(got, exp, what=f"{what}: new_params[{i}]")


# (shapes, lr, betas, eps, seed, dtype)
ADAM_FIRST = [
    ([(5, 3), (3,)], 1e-3, (0.9, 0.999), 1e-8, 31, torch.float32),
    ([(1,)], 0.1, (0.8, 0.99), 1e-6, 32, torch.float32),
    ([(4, 4), (2, 2, 2)], 0.01, (0.5, 0.9), 1e-4, 33, F64),
]


@pytest.mark.parametrize(
    ("shapes", "lr", "betas", "eps", "seed", "dtype"),
    ADAM_FIRST,
    ids=[f"lr{c[1]}-b{c[2][0]}-{c[2][1]}-{dtype_id(c[5])}" for c in ADAM_FIRST],
)
def test_adam_first_step(student, shapes, lr, betas, eps, seed, dtype):
    """t = 1 from zero moments: bias-corrected step, as torch.optim.Adam"""
    run_adam(student, shapes, lr, betas, eps, 1, seed, dtype)


# (shapes, lr, betas, eps, steps, seed, dtype)
ADAM_STEPS = [
    ([(5, 3), (3,)], 1e-3, (0.9, 0.999), 1e-8, 10, 41, torch.float32),
    ([(6,), (2, 3, 2)], 0.05, (0.8, 0.99), 1e-6, 8, 42, torch.float32),
    ([(3, 3)], 0.01, (0.95, 0.9), 1e-3, 6, 43, F64),
]


@pytest.mark.weight(2)
@pytest.mark.parametrize(
    ("shapes", "lr", "betas", "eps", "steps", "seed", "dtype"),
    ADAM_STEPS,
    ids=[f"lr{c[1]}-b{c[2][0]}-{c[2][1]}-{c[4]}steps-{dtype_id(c[6])}" for c in ADAM_STEPS],
)
def test_adam_several_steps(student, shapes, lr, betas, eps, steps, seed, dtype):
    """t = 1, 2, ...: parameters, m and v follow torch.optim.Adam step after step"""
    run_adam(student, shapes, lr, betas, eps, steps, seed, dtype)


@pytest.mark.parametrize(("betas", "seed"), [((0.9, 0.999), 44), ((0.7, 0.95), 45)])
def test_adam_moments(student, betas, seed):
    """m and v are moving averages of grad and grad^2, not bias-corrected (exp_avg, exp_avg_sq)"""
    run_adam(student, [(4, 3), (5,)], 0.01, betas, 1e-8, 5, seed, torch.float32, check_params=False)


def test_adam_resume(student):
    """uses t in the bias correction: resumes at t = 6 from given m and v"""
    shapes = [(4, 2), (3,)]
    gen = torch.Generator().manual_seed(46)
    m = [randn(s, gen, torch.float32, 0.3) for s in shapes]
    v = [randn(s, gen, torch.float32, 0.5) ** 2 + 0.05 for s in shapes]
    run_adam(student, shapes, 0.02, (0.9, 0.999), 1e-8, 3, 47, torch.float32, start=(5, m, v))


def test_adam_defaults(student):
    """default hyper-parameters lr=1e-3, betas=(0.9, 0.999), eps=1e-8 over 4 steps"""
    run_adam(student, [(3, 4), (4,)], None, (0.9, 0.999), 1e-8, 4, 48, torch.float32)
    # gradients about as small as eps, on small parameters: the default eps shows
    run_adam(
        student,
        [(5,), (2, 2)],
        None,
        (0.9, 0.999),
        1e-8,
        3,
        50,
        torch.float32,
        grad_scale=1e-8,
        param_scale=1e-3,
    )


def test_adam_tiny_gradients(student):
    """eps is added to sqrt(v_hat), after the bias correction (gradients about as small as eps)"""
    run_adam(
        student, [(6,), (2, 3)], 0.1, (0.9, 0.999), 1e-8, 3, 49, torch.float32, grad_scale=1e-8
    )


# ---------------------------------------------------------------------------------------------
# schedule (question `schedule`)


def expected_lr(step: int, base_lr: float, total: int, warmup: int) -> float:
    """The contract's formula, in float64 (trusted)."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    return base_lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def as_rate(value: Any, what: str) -> float:
    """A learning rate: a Python float or int, or a one-element real tensor (accepted too)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise AssertionError(
            f"{what} should return a number (a Python float), got {type(value).__name__} {value!r}"[
                :300
            ]
        )
    if isinstance(value, int | float):
        return float(value)
    tensor = as_tensor(value, what)  # fails with a message for anything else
    if tensor.numel() != 1 or tensor.is_complex() or tensor.dtype == torch.bool:
        raise AssertionError(
            f"{what} should return a number (a Python float; a 0-d tensor is accepted too), "
            f"got a tensor of shape {list(tensor.shape)} and dtype {tensor.dtype}"
        )
    return float(tensor.reshape(()).to(F64))


def check_schedule(student, base_lr: float, total: int, warmup: int | None, steps=None) -> None:
    kw = "" if warmup is None else f", warmup_steps={warmup}"
    for step in range(total) if steps is None else steps:
        what = f"cosine_lr({step}, {base_lr}, {total}{kw})"
        if warmup is None:
            got = student.cosine_lr(step, base_lr, total)
        else:
            got = student.cosine_lr(step, base_lr, total, warmup_steps=warmup)
        rate = as_rate(got, what)
        expected = expected_lr(step, base_lr, total, warmup or 0)
        assert_close(rate, expected, rtol=1e-5, atol=1e-6 * base_lr, what=what)


# (base_lr, total_steps, warmup_steps or None for the default)
NO_WARMUP = [(0.1, 10, None), (1e-3, 100, 0), (2.0, 1, None), (0.5, 7, 0)]


@pytest.mark.parametrize(
    ("base_lr", "total", "warmup"),
    NO_WARMUP,
    ids=[f"lr{b}-T{t}-{'default' if w is None else 'W0'}" for b, t, w in NO_WARMUP],
)
def test_schedule_no_warmup(student, base_lr, total, warmup):
    """without warmup: base_lr * (1 + cos(pi * step / total_steps)) / 2 at every step"""
    check_schedule(student, base_lr, total, warmup)


WARMUP = [(0.1, 20, 5), (3e-4, 50, 10), (1.0, 4, 1), (0.01, 12, 11)]


@pytest.mark.parametrize(
    ("base_lr", "total", "warmup"), WARMUP, ids=[f"lr{b}-T{t}-W{w}" for b, t, w in WARMUP]
)
def test_schedule_warmup(student, base_lr, total, warmup):
    """warmup: base_lr * (step + 1) / warmup_steps, then cosine decay from base_lr, every step"""
    check_schedule(student, base_lr, total, warmup)


@pytest.mark.weight(2)
def test_schedule_warmup_boundaries(student):
    """step 0 of the warmup is base_lr / warmup_steps; its last step and the next are base_lr"""
    for base_lr, total, warmup in ((0.4, 30, 4), (1e-2, 1000, 100)):
        check_schedule(student, base_lr, total, warmup, steps=(0, warmup - 1, warmup, warmup + 1))
