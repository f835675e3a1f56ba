"""rnncore.LSTMCell / GRUCell / RNNCell: one step, against torch.nn's cells and
against the layers whose weights they share (step-by-step decoding)."""

from __future__ import annotations

import numpy as np
import pytest

import rnncore
from cellcases import TOL, rel_err

I, H, B = 3, 5, 2
CELLS = {  # name: (rnncore class, torch.nn class name, options, rnncore layer class)
    "lstm": (rnncore.LSTMCell, "LSTMCell", {}, rnncore.LSTM),
    "gru": (rnncore.GRUCell, "GRUCell", {}, rnncore.GRU),
    "rnn_tanh": (rnncore.RNNCell, "RNNCell", {"nonlinearity": "tanh"}, rnncore.RNN),
    "rnn_relu": (rnncore.RNNCell, "RNNCell", {"nonlinearity": "relu"}, rnncore.RNN),
}


def as_tuple(states):
    return states if isinstance(states, tuple) else (states,)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_step_matches_torch_cell(torch, name, dtype, bias, batched, rng):
    cls, torch_name, options, _ = CELLS[name]
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    ref = getattr(torch.nn, torch_name)(I, H, bias, **options, dtype=torch_dtype)
    cell = cls(I, H, bias, **options, dtype=np.dtype(dtype).name)
    assert list(cell.params) == list(ref.state_dict())
    cell.load_state_dict(ref.state_dict())
    lead = (B,) if batched else ()
    x = rng.standard_normal((*lead, I)).astype(dtype)
    states = tuple(rng.standard_normal((*lead, H)).astype(dtype) for _ in range(2 if name == "lstm" else 1))
    hx = states if name == "lstm" else states[0]
    got = as_tuple(cell(x, hx))
    expected = as_tuple(ref(torch.tensor(x), tuple(map(torch.tensor, states)) if name == "lstm"
                            else torch.tensor(states[0])))
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == dtype and g.shape == tuple(e.shape)
        assert rel_err(g, e.detach().numpy()) <= TOL[dtype]


@pytest.mark.parametrize("name,options", [
    ("lstm", {}), ("lstm", {"proj_size": 2}), ("gru", {}), ("gru", {"reset_after": False}),
    ("rnn_tanh", {}), ("rnn_relu", {}),
], ids=["lstm", "lstm_proj", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"])
def test_cells_from_a_layer_decode_like_the_layer(name, options, rng):
    """Two stacked forward cells stepped through time give the layer's outputs;
    the reverse cell stepped through the reversed sequence gives the reverse half."""
    cls, _, cell_options, layer_cls = CELLS[name]
    options = {**cell_options, **options}
    T = 6
    x = rng.standard_normal((T, B, I))
    stack = layer_cls(I, H, num_layers=2, **options, dtype="float64", seed=1)
    y, finals = stack(x)
    cells = [cls.from_layer(stack, k) for k in range(2)]
    states = [None, None]
    for t in range(T):
        inp = x[t]
        for k, cell in enumerate(cells):
            states[k] = cell(inp, states[k])
            inp = as_tuple(states[k])[0]
        assert rel_err(inp, y[t]) <= TOL[np.float64]
    for k in range(2):
        for s, f in zip(as_tuple(states[k]), as_tuple(finals)):
            assert rel_err(s, f[k]) <= TOL[np.float64]

    bi = layer_cls(I, H, bidirectional=True, **options, dtype="float64", seed=2)
    y, _ = bi(x)
    backward_cell = cls.from_layer(bi, 0, reverse=True)
    state = None
    for t in reversed(range(T)):
        state = backward_cell(x[t], state)
        assert rel_err(as_tuple(state)[0], y[t, :, y.shape[2] // 2:]) <= TOL[np.float64]


def test_from_layer_shares_the_arrays():
    lstm = rnncore.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2, seed=0)
    cell = rnncore.LSTMCell.from_layer(lstm, 1, reverse=True)
    assert cell.input_size == 4 and cell.hidden_size == H and cell.proj_size == 2
    assert cell.dtype == lstm.dtype and cell.bias
    for role, p in cell.params.items():
        assert p is lstm.params[f"{role}_l1_reverse"]
    x = np.ones((1, 4), np.float32)
    before = cell(x)[0]
    lstm.params["bias_ih_l1_reverse"] += 1  # an optimizer step on the layer shows in the cell
    assert not np.array_equal(cell(x)[0], before)


def test_from_layer_errors():
    gru = rnncore.GRU(I, H, num_layers=2)
    with pytest.raises(TypeError, match="rnncore.LSTM"):
        rnncore.LSTMCell.from_layer(gru)
    with pytest.raises(ValueError, match="k must be in"):
        rnncore.GRUCell.from_layer(gru, 2)
    with pytest.raises(ValueError, match="bidirectional"):
        rnncore.GRUCell.from_layer(gru, 0, reverse=True)
    with pytest.raises(TypeError, match="reverse"):
        rnncore.GRUCell.from_layer(gru, 0, reverse=1)


def test_construction_and_forward_errors(rng):
    with pytest.raises(TypeError, match="hidden_size"):
        rnncore.GRUCell(I, "5")
    with pytest.raises(ValueError, match="proj_size"):
        rnncore.LSTMCell(I, H, proj_size=H)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnncore.RNNCell(I, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="dtype"):
        rnncore.RNNCell(I, H, dtype="int8")
    cell = rnncore.LSTMCell(I, H, proj_size=2, seed=0)
    x = rng.standard_normal((B, I)).astype(np.float32)
    h, c = np.zeros((B, 2), np.float32), np.zeros((B, H), np.float32)
    for args, error, pattern in [
        ((x.astype(np.float64),), TypeError, "x must have dtype float32"),
        ((x[:, :2],), ValueError, r"x must have shape \[B, I\] or \[I\] with I = 3"),
        ((x[None],), ValueError, "x must have shape"),
        ((x, h), TypeError, "hx must be a tuple"),
        ((x, (c, c)), ValueError, r"h must have shape \[B, 2\] = \(2, 2\), got \(2, 5\)"),
        ((x, (h, h)), ValueError, r"c must have shape \[B, 5\]"),
        ((x[0], (h, c)), ValueError, r"h must have shape \[2\]"),
    ]:
        with pytest.raises(error, match=pattern):
            cell(*args)


def test_cell_defaults_and_repr():
    cell = rnncore.RNNCell(I, H, False, "relu", dtype="float64", seed=3)
    assert repr(cell) == "RNNCell(3, 5, bias=False, nonlinearity='relu', dtype='float64', seed=3)"
    assert list(cell.params) == ["weight_ih", "weight_hh"]
    assert np.abs(cell.params["weight_hh"]).max() <= 1 / np.sqrt(H)
    np.testing.assert_array_equal(cell(np.zeros((B, I))), np.zeros((B, H)))
