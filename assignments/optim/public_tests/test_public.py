"""Public tests of the optim assignment: run them with `autograder check optim.ipynb`.

They use small fixed examples with known answers. Passing them is a good sign, not a
guarantee: the hidden tests compare many steps in a row with `torch.optim`, on other shapes
and hyper-parameters.
"""

from __future__ import annotations

import math

import torch

from autograder.testing import assert_close


def test_sgd_plain_step(student):
    """momentum 0: one step is p - lr * grad"""
    new_params, _ = student.sgd_momentum_step(
        [torch.tensor([1.0, 2.0])], [torch.tensor([0.5, -1.0])], [torch.zeros(2)], 0.1
    )
    assert_close(new_params[0], [0.95, 2.1], what="sgd_momentum_step(..., lr=0.1): new_params[0]")


def test_sgd_momentum_two_steps(student):
    """two steps with momentum 0.9 and weight decay 0.1 (PyTorch's convention)"""
    p, v = [torch.tensor([1.0])], [torch.zeros(1)]
    for _ in range(2):
        p, v = student.sgd_momentum_step(
            p, [torch.tensor([1.0])], v, 0.1, momentum=0.9, weight_decay=0.1
        )
    # step 1: g = 1 + 0.1 * 1 = 1.1, v = 1.1, p = 1 - 0.11 = 0.89
    # step 2: g = 1 + 0.089 = 1.089, v = 0.99 + 1.089 = 2.079, p = 0.89 - 0.2079 = 0.6821
    assert_close(v[0], [2.079], what="the velocity after two steps")
    assert_close(p[0], [0.6821], what="the parameter after two steps")


def test_adam_first_step(student):
    """the first Adam step moves each entry by about lr, against its gradient's sign"""
    params, m, v = student.adam_step(
        [torch.zeros(3)],
        [torch.tensor([0.5, -2.0, 1.0])],
        [torch.zeros(3)],
        [torch.zeros(3)],
        1,
        lr=0.1,
    )
    assert_close(m[0], [0.05, -0.2, 0.1], what="new_m[0] = (1 - beta1) * grad")
    assert_close(v[0], [0.00025, 0.004, 0.001], what="new_v[0] = (1 - beta2) * grad^2")
    assert_close(params[0], [-0.1, 0.1, -0.1], what="new_params[0]")


def test_schedule_values(student):
    """cosine_lr(s, 1.0, 10, warmup_steps=2) for s = 0, 1, 2, 6"""
    for step, expected in ((0, 0.5), (1, 1.0), (2, 1.0), (6, 0.5)):
        got = student.cosine_lr(step, 1.0, 10, warmup_steps=2)
        assert_close(float(got), expected, what=f"cosine_lr({step}, 1.0, 10, warmup_steps=2)")


def test_schedule_no_warmup(student):
    """without warmup, cosine_lr(1, 0.1, 4) = 0.1 * (1 + cos(pi / 4)) / 2"""
    got = student.cosine_lr(1, 0.1, 4)
    assert_close(float(got), 0.05 * (1 + math.cos(math.pi / 4)), what="cosine_lr(1, 0.1, 4)")
