"""Public tests of the rnn assignment: run them with `autograder check rnn.ipynb`.

Small examples checked against PyTorch's own layers. Passing them is a good sign, not a
guarantee: the hidden tests use other sizes, weights and sequence lengths.
"""

from __future__ import annotations

import torch

from autograder.testing import assert_close


def lstm_weights(n_in: int, H: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [
        0.5 * torch.randn(*shape, generator=g)
        for shape in ((4 * H, n_in), (4 * H, H), (4 * H,), (4 * H,))
    ]


def test_lstm_cell_bias_only(student):
    """with every weight 0 and bias b: c_new = sigmoid(b_f) c + sigmoid(b_i) tanh(b_g)"""
    H = 2
    b = torch.tensor([0.0, 0.0, 10.0, 10.0, 1.0, -1.0, 0.0, 0.0])  # i, f, g, o blocks of 2
    c = torch.tensor([[1.0, 2.0]])
    h_new, c_new = student.lstm_cell(
        torch.ones(1, 3),
        torch.ones(1, H),
        c,
        torch.zeros(4 * H, 3),
        torch.zeros(4 * H, H),
        b,
        torch.zeros(4 * H),
    )
    sig, tanh = torch.sigmoid, torch.tanh
    want_c = sig(torch.tensor(10.0)) * c + sig(torch.tensor(0.0)) * tanh(torch.tensor([1.0, -1.0]))
    assert_close(c_new, want_c, what="c_new (gate order i, f, g, o)")
    assert_close(h_new, 0.5 * tanh(want_c), what="h_new")


def test_lstm_cell_matches_lstmcell(student):
    """lstm_cell equals torch.nn.LSTMCell with the same weights"""
    n_in, H = 3, 4
    W_ih, W_hh, b_ih, b_hh = lstm_weights(n_in, H, seed=0)
    cell = torch.nn.LSTMCell(n_in, H)
    with torch.no_grad():
        for p, v in zip(
            (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh),
            (W_ih, W_hh, b_ih, b_hh),
            strict=True,
        ):
            p.copy_(v)
    g = torch.Generator().manual_seed(1)
    x, h, c = (
        torch.randn(2, n_in, generator=g),
        torch.randn(2, H, generator=g),
        torch.randn(2, H, generator=g),
    )
    with torch.no_grad():
        want_h, want_c = cell(x, (h, c))
    h_new, c_new = student.lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh)
    assert_close(c_new, want_c, what="c_new")
    assert_close(h_new, want_h, what="h_new")


def test_lstm_forward_matches_lstm(student):
    """lstm_forward equals a one-layer torch.nn.LSTM (outputs and final states)"""
    T, N, n_in, H = 4, 2, 3, 5
    W_ih, W_hh, b_ih, b_hh = lstm_weights(n_in, H, seed=2)
    lstm = torch.nn.LSTM(n_in, H)
    with torch.no_grad():
        for p, v in zip(
            (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0),
            (W_ih, W_hh, b_ih, b_hh),
            strict=True,
        ):
            p.copy_(v)
    g = torch.Generator().manual_seed(3)
    x, h0, c0 = (
        torch.randn(T, N, n_in, generator=g),
        torch.randn(N, H, generator=g),
        torch.randn(N, H, generator=g),
    )
    with torch.no_grad():
        want_out, (want_h, want_c) = lstm(x, (h0[None], c0[None]))
    outputs, (h_T, c_T) = student.lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh)
    assert_close(outputs, want_out, what="outputs [T, N, H]")
    assert_close(h_T, want_h[0], what="h_T", squeeze=True)
    assert_close(c_T, want_c[0], what="c_T", squeeze=True)
