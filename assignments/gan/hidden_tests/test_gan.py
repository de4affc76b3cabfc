"""Hidden tests of the gan assignment (instructor only; never shipped to students).

Fixtures, provided by the grader:
- `student`: proxy to the submitted notebook; calls run in the sandbox, arguments and results
  cross as copies of plain data, the returned generator stays there and comes back as a handle;
- `reference`: the namespace of `reference_solutions/gan/gan.ipynb` (unused: the expected
  losses come from `torch.nn.functional.binary_cross_entropy_with_logits`, computed here).

Every input is built here from explicit generators. Question weights (partial credit =
points x passed weight / total weight):
- losses (3 points, total weight 10): discriminator_matches_torch 5 x 1,
  generator_matches_torch 4 x 1, large_logits 1;
- train (5 points, total weight 2): mean 1, covariance 1 (mean only: half the points).
  `train_gan(real, 500, seed)` is called once per submission (by the first train test); the
  other reuses its samples.
The train tests come last: a `train_gan` that hangs costs one call timeout, after the losses
have been graded.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from autograder.grader.proxy import Handle, StudentCodeError
from autograder.testing import as_tensor, assert_close


def bce(logits: torch.Tensor, label: float) -> torch.Tensor:
    """Mean binary cross-entropy of `logits` against a constant label, in float64."""
    flat = logits.reshape(-1).double()
    return F.binary_cross_entropy_with_logits(flat, torch.full_like(flat, label))


def logits_of(seed: int, batch: int, layout: str, dtype=torch.float32) -> torch.Tensor:
    """Random logits (spread about +-3) of shape [batch] ("flat") or [batch, 1] ("column")."""
    g = torch.Generator().manual_seed(seed)
    values = 3.0 * torch.randn(batch, generator=g, dtype=torch.float64)
    values = values if layout == "flat" else values.reshape(batch, 1)
    return values.to(dtype)


def check_scalar(got: object, expected: torch.Tensor, what: str) -> None:
    # a scalar: 0-d tensor or Python float; a one-element tensor of another shape is accepted
    assert_close(got, expected, what=what, squeeze=True)


# ---------------------------------------------------------------------------------------------
# losses (3 points)

# name, real batch, fake batch, layout, dtype
D_CASES = [
    ("flat-8-8", 8, 8, "flat", torch.float32),
    ("flat-5-12", 5, 12, "flat", torch.float32),
    ("column-16-4", 16, 4, "column", torch.float32),
    ("column-1-7", 1, 7, "column", torch.float32),
    ("flat-float64-10-3", 10, 3, "flat", torch.float64),
]


@pytest.mark.parametrize(
    ("name", "b_real", "b_fake", "layout", "dtype"), D_CASES, ids=[c[0] for c in D_CASES]
)
def test_losses_discriminator_matches_torch(student, name, b_real, b_fake, layout, dtype):
    """discriminator_loss = mean BCE(real, 1) + mean BCE(fake, 0) (batches may differ in size)"""
    k = [c[0] for c in D_CASES].index(name)
    real = logits_of(10 + k, b_real, layout, dtype)
    fake = logits_of(20 + k, b_fake, layout, dtype)
    got = student.discriminator_loss(real.clone(), fake.clone())
    check_scalar(
        got,
        bce(real, 1.0) + bce(fake, 0.0),
        f"discriminator_loss(real_logits, fake_logits) with logits of shapes "
        f"{list(real.shape)} and {list(fake.shape)} ({str(dtype).replace('torch.', '')})",
    )


# name, batch, layout, dtype
G_CASES = [
    ("flat-8", 8, "flat", torch.float32),
    ("column-5", 5, "column", torch.float32),
    ("single", 1, "flat", torch.float32),
    ("column-float64-20", 20, "column", torch.float64),
]


@pytest.mark.parametrize(("name", "batch", "layout", "dtype"), G_CASES, ids=[c[0] for c in G_CASES])
def test_losses_generator_matches_torch(student, name, batch, layout, dtype):
    """generator_loss is the non-saturating loss: mean BCE(fake, 1)"""
    fake = logits_of(30 + [c[0] for c in G_CASES].index(name), batch, layout, dtype)
    check_scalar(
        student.generator_loss(fake.clone()),
        bce(fake, 1.0),
        f"generator_loss(fake_logits) with logits of shape {list(fake.shape)} "
        f"({str(dtype).replace('torch.', '')})",
    )


def test_losses_large_logits(student):
    """both losses stay finite and exact for logits as large as +-60 (stable form)"""
    real = torch.tensor([25.0, -40.0, 60.0, 3.0])
    fake = torch.tensor([[-30.0], [45.0], [0.5]])
    check_scalar(
        student.discriminator_loss(real.clone(), fake.clone()),
        bce(real, 1.0) + bce(fake, 0.0),
        "discriminator_loss with real logits [25, -40, 60, 3] and fake logits [-30, 45, 0.5] "
        "(log(sigmoid(x)) computed naively is -inf in float32 here)",
    )
    fake_g = torch.tensor([-50.0, 30.0, 2.0])
    check_scalar(
        student.generator_loss(fake_g.clone()),
        bce(fake_g, 1.0),
        "generator_loss with fake logits [-50, 30, 2] (log(sigmoid(-50)) computed naively is "
        "-inf in float32)",
    )


# ---------------------------------------------------------------------------------------------
# train (5 points)

DATA_MEAN = (1.5, -2.0)
DATA_COV = ((2.0, 0.8), (0.8, 0.6))
DATA_N = 4000
DATA_SEED = 77
STEPS = 500  # the contract allows 500 to 2000
TRAIN_SEED = 3  # the `seed` argument of train_gan
SAMPLES = 2000
NOISE_SEED = 78
MEAN_TOL = 0.25
COV_TOL = 0.35


def gaussian_data() -> torch.Tensor:
    g = torch.Generator().manual_seed(DATA_SEED)
    chol = torch.linalg.cholesky(torch.tensor(DATA_COV, dtype=torch.float64))
    z = torch.randn(DATA_N, 2, generator=g, dtype=torch.float64)
    return (torch.tensor(DATA_MEAN, dtype=torch.float64) + z @ chol.T).to(torch.float32)


def generate(student) -> torch.Tensor:
    """Train the student's GAN once and return 2000 generated samples [2000, 2] (float64)."""
    real = gaussian_data()
    generator = student.train_gan(real.clone(), STEPS, TRAIN_SEED)
    what = f"train_gan(real, {STEPS}, {TRAIN_SEED}) with real of shape {list(real.shape)}"
    if not isinstance(generator, Handle):
        raise AssertionError(
            f"{what} should return the generator, a torch.nn.Module; got {type(generator).__name__}"
        )
    latent = student.LATENT_DIM
    if not isinstance(latent, int) or isinstance(latent, bool) or not 1 <= latent <= 4096:
        raise AssertionError(f"LATENT_DIM should be a positive int, got {latent!r}"[:300])
    with contextlib.suppress(StudentCodeError):  # a callable without eval() is called as it is
        generator.eval()
    z = torch.randn(SAMPLES, latent, generator=torch.Generator().manual_seed(NOISE_SEED))
    samples = as_tensor(generator(z), f"the generator's output on noise [{SAMPLES}, {latent}]")
    if list(samples.shape) != [SAMPLES, 2]:
        raise AssertionError(
            f"the generator maps noise [{SAMPLES}, {latent}] to shape {list(samples.shape)}; "
            f"expected [{SAMPLES}, 2]"
        )
    if samples.is_complex() or not bool(torch.isfinite(samples.to(torch.float64)).all()):
        raise AssertionError("the generated samples are not all finite real numbers")
    return samples.to(torch.float64)


@pytest.fixture(scope="session")
def gan_result() -> dict[str, object]:
    """One training per submission: each grading run of the hidden tests is one session."""
    return {}


def generated(student, cache: dict[str, object]) -> torch.Tensor:
    if "failure" in cache:
        raise AssertionError(cache["failure"])
    if "samples" not in cache:
        try:
            cache["samples"] = generate(student)
        except Exception as exc:
            cache["failure"] = str(exc) or type(exc).__name__
            raise
    samples = cache["samples"]
    assert isinstance(samples, torch.Tensor)
    return samples


def fmt(t: torch.Tensor) -> str:
    return str([round(v, 3) for v in t.reshape(-1).tolist()])


def test_train_mean(student, gan_result):
    """the mean of 2000 generated samples is within 0.25 of the data's mean, entry by entry"""
    samples = generated(student, gan_result)
    want = gaussian_data().to(torch.float64).mean(0)
    got = samples.mean(0)
    if float((got - want).abs().max()) > MEAN_TOL:
        raise AssertionError(
            f"the mean of 2000 generated samples is {fmt(got)}, the data's is {fmt(want)}; "
            f"every entry must be within {MEAN_TOL}"
        )


def test_train_covariance(student, gan_result):
    """the covariance of 2000 generated samples is within 0.35 of the data's, entry by entry"""
    samples = generated(student, gan_result)
    want = torch.cov(gaussian_data().to(torch.float64).T)
    got = torch.cov(samples.T)
    if float((got - want).abs().max()) > COV_TOL:
        raise AssertionError(
            f"the covariance of 2000 generated samples is {fmt(got)} (row by row), the data's "
            f"is {fmt(want)}; every entry must be within {COV_TOL}"
        )
