"""Public tests of the gan assignment: run them with `autograder check gan.ipynb`.

Small fixed examples with known answers, and one short training run. Passing them is a good
sign, not a guarantee: the hidden tests use other batches, shapes and data.
"""

from __future__ import annotations

import math

import torch

from autograder.testing import as_tensor, assert_close

LOG2 = math.log(2.0)


def test_losses_at_logit_zero(student):
    """at logit 0 (D says 50/50) every BCE term is log 2: L_D = 2 log 2, L_G = log 2"""
    assert_close(
        student.discriminator_loss(torch.zeros(4), torch.zeros(6)),
        2 * LOG2,
        what="discriminator_loss(zeros [4], zeros [6])",
        squeeze=True,
    )
    assert_close(
        student.generator_loss(torch.zeros(3, 1)),
        LOG2,
        what="generator_loss(zeros [3, 1])",
        squeeze=True,
    )


def test_losses_small_example(student):
    """a hand-checkable example: softplus(-real).mean() + softplus(fake).mean()"""
    real = torch.tensor([2.0, -1.0])
    fake = torch.tensor([[0.5], [-3.0], [1.0]])
    sp = torch.nn.functional.softplus
    assert_close(
        student.discriminator_loss(real, fake),
        sp(-real).mean() + sp(fake).mean(),
        what="discriminator_loss",
        squeeze=True,
    )
    assert_close(
        student.generator_loss(fake), sp(-fake).mean(), what="generator_loss", squeeze=True
    )


def test_losses_large_logits_are_finite(student):
    """generator_loss([-40]) is 40, not inf (use the stable form)"""
    assert_close(
        student.generator_loss(torch.tensor([-40.0])),
        40.0,
        what="generator_loss([-40])",
        squeeze=True,
    )


def test_train_gan_matches_a_gaussian(student):
    """train_gan(real, 500, 0) on a 2-D Gaussian: generated mean within 0.25, covariance 0.35"""
    g = torch.Generator().manual_seed(5)
    cov = torch.tensor([[1.0, 0.5], [0.5, 1.5]])
    real = (
        torch.tensor([0.5, 2.0]) + torch.randn(3000, 2, generator=g) @ torch.linalg.cholesky(cov).T
    )
    generator = student.train_gan(real, 500, 0)
    generator.eval()
    latent = student.LATENT_DIM
    samples = as_tensor(generator(torch.randn(2000, latent, generator=g)), "the samples")
    assert list(samples.shape) == [2000, 2], (
        f"expected samples [2000, 2], got {list(samples.shape)}"
    )
    samples = samples.double()
    mean_err = float((samples.mean(0) - real.double().mean(0)).abs().max())
    cov_err = float((torch.cov(samples.T) - torch.cov(real.double().T)).abs().max())
    assert mean_err <= 0.25, f"the generated mean is off by {mean_err:.3f} (limit 0.25)"
    assert cov_err <= 0.35, f"the generated covariance is off by {cov_err:.3f} (limit 0.35)"
