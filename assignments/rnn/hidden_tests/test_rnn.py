"""Hidden tests of the rnn assignment (instructor only; never shipped to students).

Fixtures, provided by the grader:
- `student`: proxy to the submitted notebook; calls run in the sandbox, arguments and results
  cross as copies of plain data;
- `reference`: the namespace of `reference_solutions/rnn/rnn.ipynb` (unused: the expected
  values come from `torch.nn.LSTMCell` and `torch.nn.LSTM` with the same weights, computed
  here in float64).

Every input is built here from explicit generators. Question weights (partial credit =
points x passed weight / total weight):
- lstm_cell (4 points, total weight 7): matches_torch 6 x 1, zero_state 1;
- lstm_seq (4 points, total weight 7): matches_torch 6 x 1, zero_state 1.
"""

from __future__ import annotations

import pytest
import torch

from autograder.testing import assert_close


def lstm_weights(seed: int, n_in: int, H: int, dtype: torch.dtype, scale: float = 0.6):
    """W_ih [4H, I], W_hh [4H, H], b_ih [4H], b_hh [4H]: gates far from saturation or not."""
    g = torch.Generator().manual_seed(seed)

    def draw(*shape: int) -> torch.Tensor:
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    return draw(4 * H, n_in), draw(4 * H, H), draw(4 * H), draw(4 * H)


def torch_cell(n_in: int, H: int, weights) -> torch.nn.LSTMCell:
    """A float64 nn.LSTMCell holding exactly these weights (trusted side)."""
    cell = torch.nn.LSTMCell(n_in, H).double()
    with torch.no_grad():
        for param, value in zip(
            (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), weights, strict=True
        ):
            param.copy_(value.double())
    return cell


def torch_lstm(n_in: int, H: int, weights) -> torch.nn.LSTM:
    """A float64 one-layer nn.LSTM holding exactly these weights (trusted side)."""
    lstm = torch.nn.LSTM(n_in, H).double()
    with torch.no_grad():
        for param, value in zip(
            (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0),
            weights,
            strict=True,
        ):
            param.copy_(value.double())
    return lstm


def pair(value: object, what: str) -> tuple[object, object]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise AssertionError(
            f"{what} should return a pair (h_new, c_new), got {type(value).__name__}"
        )
    return value[0], value[1]


def clones(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.clone() for t in tensors]


# ---------------------------------------------------------------------------------------------
# lstm_cell (4 points)

# name, N, I, H, dtype, weight scale (2.0 saturates some gates)
CELL_CASES = [
    ("n3-i5-h4", 3, 5, 4, torch.float32, 0.6),
    ("n1-i1-h1", 1, 1, 1, torch.float32, 0.6),
    ("n7-i10-h20", 7, 10, 20, torch.float32, 0.6),
    ("n16-i3-h8", 16, 3, 8, torch.float32, 0.6),
    ("n2-i6-h3-float64", 2, 6, 3, torch.float64, 0.6),
    ("n4-i2-h5-large-weights", 4, 2, 5, torch.float32, 2.0),
]


def check_cell(
    student, seed: int, N: int, n_in: int, H: int, dtype, scale=0.6, *, zero_state: bool = False
):
    weights = lstm_weights(seed, n_in, H, dtype, scale)
    g = torch.Generator().manual_seed(seed + 1000)
    x = torch.randn(N, n_in, generator=g, dtype=torch.float64).to(dtype)
    if zero_state:
        h, c = torch.zeros(N, H, dtype=dtype), torch.zeros(N, H, dtype=dtype)
    else:
        h = torch.randn(N, H, generator=g, dtype=torch.float64).to(dtype)
        c = (2.0 * torch.randn(N, H, generator=g, dtype=torch.float64)).to(dtype)
    with torch.no_grad():
        want_h, want_c = torch_cell(n_in, H, weights)(x.double(), (h.double(), c.double()))
    what = (
        f"lstm_cell with x [{N}, {n_in}], h and c [{N}, {H}]"
        f"{' (both zero)' if zero_state else ''}, {str(dtype).replace('torch.', '')}"
    )
    got_h, got_c = pair(student.lstm_cell(*clones(x, h, c, *weights)), what)
    assert_close(got_c, want_c, what=f"c_new of {what}")
    assert_close(got_h, want_h, what=f"h_new of {what}")


@pytest.mark.parametrize(
    ("name", "N", "n_in", "H", "dtype", "scale"), CELL_CASES, ids=[c[0] for c in CELL_CASES]
)
def test_lstm_cell_matches_torch(student, name, N, n_in, H, dtype, scale):
    """(h_new, c_new) equal torch.nn.LSTMCell's with the same weights (gate order i, f, g, o)"""
    check_cell(student, 100 + [c[0] for c in CELL_CASES].index(name), N, n_in, H, dtype, scale)


def test_lstm_cell_zero_state(student):
    """from zero states h = c = 0 (the usual start of a sequence)"""
    check_cell(student, 150, 5, 4, 6, torch.float32, zero_state=True)


# ---------------------------------------------------------------------------------------------
# lstm_seq (4 points)

# name, T, N, I, H, dtype
SEQ_CASES = [
    ("t5-n3-i4-h6", 5, 3, 4, 6, torch.float32),
    ("t1-n2-i3-h4", 1, 2, 3, 4, torch.float32),
    ("t12-n1-i2-h3", 12, 1, 2, 3, torch.float32),
    ("t20-n4-i5-h8", 20, 4, 5, 8, torch.float32),
    ("t7-n2-i3-h5-float64", 7, 2, 3, 5, torch.float64),
    ("t3-n6-i1-h2", 3, 6, 1, 2, torch.float32),
]


def check_seq(student, seed: int, T: int, N: int, n_in: int, H: int, dtype, *, zero_state=False):
    weights = lstm_weights(seed, n_in, H, dtype)
    g = torch.Generator().manual_seed(seed + 1000)
    x = torch.randn(T, N, n_in, generator=g, dtype=torch.float64).to(dtype)
    if zero_state:
        h0, c0 = torch.zeros(N, H, dtype=dtype), torch.zeros(N, H, dtype=dtype)
    else:
        h0 = torch.randn(N, H, generator=g, dtype=torch.float64).to(dtype)
        c0 = torch.randn(N, H, generator=g, dtype=torch.float64).to(dtype)
    with torch.no_grad():
        want_out, (want_h, want_c) = torch_lstm(n_in, H, weights)(
            x.double(), (h0.double().unsqueeze(0), c0.double().unsqueeze(0))
        )
    what = (
        f"lstm_forward with x [{T}, {N}, {n_in}], h0 and c0 [{N}, {H}]"
        f"{' (both zero)' if zero_state else ''}, {str(dtype).replace('torch.', '')}"
    )
    result = student.lstm_forward(*clones(x, h0, c0, *weights))
    if not isinstance(result, tuple | list) or len(result) != 2:
        raise AssertionError(
            f"{what} should return (outputs, (h_T, c_T)), got {type(result).__name__}"
        )
    outputs, states = result
    if not isinstance(states, tuple | list) or len(states) != 2:
        raise AssertionError(
            f"{what} should return (outputs, (h_T, c_T)): the second item should be the pair "
            f"(h_T, c_T), got {type(states).__name__}"
        )
    assert_close(outputs, want_out, what=f"the outputs [T, N, H] of {what}")
    assert_close(states[0], want_h[0], what=f"h_T of {what}", squeeze=True)
    assert_close(states[1], want_c[0], what=f"c_T of {what}", squeeze=True)


@pytest.mark.parametrize(
    ("name", "T", "N", "n_in", "H", "dtype"), SEQ_CASES, ids=[c[0] for c in SEQ_CASES]
)
def test_lstm_seq_matches_torch(student, name, T, N, n_in, H, dtype):
    """outputs [T, N, H] and (h_T, c_T) equal a one-layer torch.nn.LSTM's with the same weights"""
    check_seq(student, 200 + [c[0] for c in SEQ_CASES].index(name), T, N, n_in, H, dtype)


def test_lstm_seq_zero_state(student):
    """from zero initial states h0 = c0 = 0"""
    check_seq(student, 250, 8, 3, 4, 5, torch.float32, zero_state=True)
