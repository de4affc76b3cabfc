"""Public tests of the cnn assignment: run them with `autograder check cnn.ipynb`.

Small fixed examples with known answers, and one short training run. Passing them is a good
sign, not a guarantee: the hidden tests use other shapes, strides, paddings and data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autograder.testing import as_tensor, assert_close

EDGE = [[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]  # a vertical-edge detector


def test_conv2d_edge_detector(student):
    """conv2d with a 3x3 vertical-edge kernel on a 4x4 image with a dark first column"""
    x = torch.tensor([[[[0.0, 1.0, 1.0, 1.0]] * 4]])  # [1, 1, 4, 4]: a dark first column
    w = torch.tensor([[EDGE]])  # [1, 1, 3, 3]
    got = student.conv2d(x, w)
    assert_close(got, [[[[-3.0, 0.0], [-3.0, 0.0]]]], what="conv2d(x, edge kernel)")


def test_conv2d_padding_stride_bias(student):
    """conv2d with bias, stride 2 and padding 1 equals torch.nn.functional.conv2d"""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    b = torch.randn(4, generator=g)
    got = student.conv2d(x, w, b, stride=2, padding=1)
    assert_close(
        got,
        F.conv2d(x, w, b, stride=2, padding=1),
        what="conv2d(x, w, b, stride=2, padding=1)",
    )


def test_maxpool_default_stride(student):
    """max_pool2d(x, 2) on a 4x4 example: the stride defaults to the kernel size"""
    x = torch.tensor(
        [
            [
                [
                    [1.0, 2.0, -1.0, 0.0],
                    [3.0, 0.5, -2.0, -3.0],
                    [0.0, 0.0, 4.0, 1.0],
                    [-1.0, -5.0, 2.0, 2.5],
                ]
            ]
        ]
    )
    assert_close(student.max_pool2d(x, 2), [[[[3.0, 0.0], [0.0, 4.0]]]], what="max_pool2d(x, 2)")


def test_maxpool_overlapping(student):
    """max_pool2d(x, 3, stride=1) equals torch.nn.functional.max_pool2d"""
    x = torch.randn(1, 2, 5, 5, generator=torch.Generator().manual_seed(1))
    assert_close(student.max_pool2d(x, 3, stride=1), F.max_pool2d(x, 3, 1), what="max_pool2d")


def test_digits_short_training(student):
    """train_digits returns a module mapping [m, 1, 8, 8] to [m, 10]; accuracy >= 0.80"""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(123))
    train, held = perm[:1200], perm[1200:1500]
    model = student.train_digits(X[train], y[train])
    model.eval()
    logits = as_tensor(model(X[held]), "the trained module's output")
    assert list(logits.shape) == [300, 10], (
        f"the module should map [300, 1, 8, 8] to [300, 10] logits, got {list(logits.shape)}"
    )
    accuracy = float((logits.argmax(dim=1) == y[held]).double().mean())
    assert accuracy >= 0.80, f"accuracy {accuracy:.3f} on 300 other digits (aim for 0.95)"
