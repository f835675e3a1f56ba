"""rnncore.LSTM / GRU / RNN on their own (no torch): construction, shapes,
lengths, gradients by finite differences (with dropout), caches and modes,
parameters and state dicts, argument errors, and no_grad.

Agreement with torch.nn is in test_layers_torch.py."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import rnncore
from cellcases import TOL, rel_err

I, H = 3, 4
KINDS = {
    "lstm": (rnncore.LSTM, {}),
    "lstm_proj": (rnncore.LSTM, {"proj_size": 2}),
    "gru": (rnncore.GRU, {}),
    "gru_reset_before": (rnncore.GRU, {"reset_after": False}),
    "rnn_tanh": (rnncore.RNN, {}),
    "rnn_relu": (rnncore.RNN, {"nonlinearity": "relu"}),
}


def make(kind, **config):
    cls, options = KINDS[kind]
    return cls(I, H, **options, **{"seed": 0, **config})


def as_tuple(states):
    return states if isinstance(states, tuple) else (states,)


def pack(layer, states):
    return tuple(states) if isinstance(layer, rnncore.LSTM) else states[0]


# -- construction --------------------------------------------------------------


def test_parameter_names_and_shapes_follow_pytorch():
    lstm = rnncore.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    shapes = {name: p.shape for name, p in lstm.params.items()}
    layer0 = {"weight_ih": (20, 3), "weight_hh": (20, 2), "bias_ih": (20,), "bias_hh": (20,),
              "weight_hr": (2, 5)}
    layer1 = {**layer0, "weight_ih": (20, 4)}
    expected = {}
    for k, roles in enumerate((layer0, layer1)):
        for suffix in ("", "_reverse"):
            expected.update({f"{role}_l{k}{suffix}": shape for role, shape in roles.items()})
    assert list(shapes) == list(expected) and shapes == expected
    assert list(rnncore.GRU(3, 5, bias=False).params) == ["weight_ih_l0", "weight_hh_l0"]
    assert rnncore.RNN(3, 5, num_layers=2).params["weight_ih_l1"].shape == (5, 5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_initialisation_is_uniform_and_reproducible(kind, dtype):
    a, b, c = (make(kind, num_layers=2, dtype=dtype, seed=s) for s in (7, 7, 8))
    bound = 1 / np.sqrt(H)
    for name, p in a.params.items():
        assert p.dtype == dtype and p.flags.c_contiguous
        assert np.abs(p).max() <= bound and np.abs(p).max() > bound / 2
        np.testing.assert_array_equal(p, b.params[name])
        assert not np.array_equal(p, c.params[name])
        assert a.grads[name].shape == p.shape and not a.grads[name].any()


BAD_CONFIGS = [  # (kind, arguments, error, words the message must contain)
    ("lstm", dict(input_size=0), ValueError, "input_size"),
    ("lstm", dict(hidden_size=4.0), TypeError, "hidden_size"),
    ("gru", dict(hidden_size=True), TypeError, "hidden_size"),
    ("rnn_tanh", dict(num_layers=0), ValueError, "num_layers"),
    ("lstm", dict(bias=1), TypeError, "bias"),
    ("gru", dict(batch_first="yes"), TypeError, "batch_first"),
    ("lstm", dict(dropout=1.0), ValueError, "dropout"),
    ("lstm", dict(dropout=-0.1), ValueError, "dropout"),
    ("rnn_tanh", dict(dropout="0.5"), TypeError, "dropout"),
    ("gru", dict(bidirectional=None), TypeError, "bidirectional"),
    ("lstm", dict(proj_size=4), ValueError, "proj_size"),
    ("lstm", dict(proj_size=-1), ValueError, "proj_size"),
    ("rnn_tanh", dict(nonlinearity="sigmoid"), ValueError, "nonlinearity"),
    ("gru", dict(reset_after=0), TypeError, "reset_after"),
    ("lstm", dict(dtype="float16"), ValueError, "dtype"),
    ("gru", dict(dtype="double-ish"), TypeError, "dtype"),
    ("rnn_tanh", dict(seed=-1), ValueError, "seed"),
    ("lstm", dict(seed=1.5), TypeError, "seed"),
]


@pytest.mark.parametrize("kind,arguments,error,word", BAD_CONFIGS)
def test_bad_hyperparameters_are_named(kind, arguments, error, word):
    cls, options = KINDS[kind]
    config = {"input_size": I, "hidden_size": H, **options, **arguments}
    with pytest.raises(error, match=word):
        cls(**config)


def test_dropout_with_one_layer_warns_like_pytorch():
    with pytest.warns(UserWarning, match="num_layers=1"):
        rnncore.LSTM(I, H, dropout=0.2)


def test_pytorch_positional_order_and_repr():
    rnn = rnncore.RNN(2, 3, 2, "relu", False, True)
    assert (rnn.nonlinearity, rnn.bias, rnn.batch_first) == ("relu", False, True)
    assert repr(rnn) == "RNN(2, 3, num_layers=2, bias=False, batch_first=True, nonlinearity='relu')"
    lstm = rnncore.LSTM(2, 3, 1, True, False, 0.0, True, 1, dtype="float64")
    assert (lstm.bidirectional, lstm.proj_size, lstm.dtype) == (True, 1, np.float64)
    with pytest.raises(AttributeError, match="fixed"):
        lstm.hidden_size = 5
    assert type(lstm)(**lstm.config).config == lstm.config


# -- forward semantics ---------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_lengths_mean_each_sequence_alone(kind, rng):
    """Every sequence of a padded batch gets the outputs and final states it gets alone."""
    layer = make(kind, num_layers=2, bidirectional=True, dtype="float64")
    T, lengths = 6, np.array([4, 6, 1])
    x = rng.standard_normal((T, 3, I))
    x_padded = x.copy()
    for b, n in enumerate(lengths):
        x_padded[n:, b] = 1e3  # padding must not matter
    y, finals = layer(x_padded, lengths=lengths)
    for b, n in enumerate(lengths):
        y_b, finals_b = layer(x[:n, b:b + 1])
        assert rel_err(y[:n, b:b + 1], y_b) <= TOL[np.float64]
        assert not y[n:, b].any()
        for f, f_b in zip(as_tuple(finals), as_tuple(finals_b)):
            assert rel_err(f[:, b:b + 1], f_b) <= TOL[np.float64]


@pytest.mark.parametrize("kind", ["lstm_proj", "gru"])
def test_batch_first_and_unbatched_are_layouts_of_the_same_thing(kind, rng):
    tm = make(kind, num_layers=2, bidirectional=True)
    bf = make(kind, num_layers=2, bidirectional=True, batch_first=True)
    x = rng.standard_normal((5, 2, I)).astype(np.float32)
    y, finals = tm(x)
    y_bf, finals_bf = bf(np.ascontiguousarray(x.transpose(1, 0, 2)))
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    assert y_bf.flags.c_contiguous
    # One sequence alone is a different batch size: the products may sum in
    # another order, so agreement is to rounding, not to the bit.
    y_1, finals_1 = tm(x[:, 1])
    assert rel_err(y_1, y[:, 1]) <= TOL[np.float32]
    for f, f_bf, f_1 in zip(as_tuple(finals), as_tuple(finals_bf), as_tuple(finals_1)):
        np.testing.assert_array_equal(f_bf, f)
        assert rel_err(f_1, f[:, 1]) <= TOL[np.float32]
    dx, d0 = tm.backward(np.ones_like(y_1), pack(tm, [np.ones_like(f) for f in as_tuple(finals_1)]))
    assert dx.shape == (5, I) and all(d.shape == f.shape for d, f in zip(as_tuple(d0), as_tuple(finals_1)))


def test_zero_initial_state_is_the_default(rng):
    lstm = make("lstm_proj", num_layers=2)
    x = rng.standard_normal((4, 2, I)).astype(np.float32)
    zeros = (np.zeros((2, 2, 2), np.float32), np.zeros((2, 2, H), np.float32))
    np.testing.assert_array_equal(lstm(x)[0], lstm(x, zeros)[0])
    np.testing.assert_array_equal(lstm(x)[0], lstm(x, (None, zeros[1]))[0])


# -- gradients -----------------------------------------------------------------


def loss_and_inputs(layer, rng, T=4, B=3):
    """Random x, initial states and loss weights; loss = <wy, y> + sum <wf, final>."""
    x = rng.standard_normal((B, T, I) if layer.batch_first else (T, B, I))
    y, finals = layer(x, keep_cache=False)
    states = [rng.standard_normal(f.shape) for f in as_tuple(finals)]
    wy = rng.standard_normal(y.shape)
    wf = [rng.standard_normal(f.shape) for f in as_tuple(finals)]
    return x, states, wy, wf


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", [
    dict(num_layers=3, dropout=0.4),
    dict(num_layers=2, bidirectional=True, batch_first=True, dropout=0.5),
    dict(bidirectional=True, bias=False),
], ids=["L3-dropout", "L2-bi-bf-dropout", "bi-nobias"])
def test_backward_is_the_gradient(kind, config, rng):
    """Directional finite differences in float64 of the whole stack, dropout included:
    a layer rebuilt from the same seed draws the same masks in its first forward."""
    config = {**config, "dtype": "float64", "seed": 5}
    lengths = np.array([4, 1, 3])
    x, states, wy, wf = loss_and_inputs(make(kind, **config), rng)
    params = make(kind, **config).state_dict()

    def loss(x, states, params):
        fresh = make(kind, **config)
        fresh.load_state_dict(params)
        y, finals = fresh(x, pack(fresh, states), lengths=lengths)
        return np.sum(wy * y) + sum(np.sum(w * f) for w, f in zip(wf, as_tuple(finals)))

    layer = make(kind, **config)
    y, finals = layer(x, pack(layer, states), lengths=lengths)
    dx, d0 = layer.backward(wy, pack(layer, wf))
    vx = rng.standard_normal(x.shape)
    vs = [rng.standard_normal(s.shape) for s in states]
    vp = {name: rng.standard_normal(p.shape) for name, p in params.items()}
    predicted = (np.sum(dx * vx) + sum(np.sum(d * v) for d, v in zip(as_tuple(d0), vs))
                 + sum(np.sum(layer.grads[name] * v) for name, v in vp.items()))
    eps = 1e-6

    def shifted(sign):
        return loss(x + sign * eps * vx, [s + sign * eps * v for s, v in zip(states, vs)],
                    {name: p + sign * eps * vp[name] for name, p in params.items()})

    measured = (shifted(1) - shifted(-1)) / (2 * eps)
    assert abs(measured - predicted) <= 1e-6 * max(1.0, abs(predicted))
    padded = np.zeros(x.shape, bool)
    for b, n in enumerate(lengths):
        padded[(b, slice(n, None)) if layer.batch_first else (slice(n, None), b)] = True
    assert not dx[padded].any()


def test_grads_accumulate_and_zero_grad_keeps_the_arrays(rng):
    gru = make("gru", num_layers=2)
    x = rng.standard_normal((4, 2, I)).astype(np.float32)
    dy = rng.standard_normal((4, 2, H)).astype(np.float32)
    gru(x)
    gru.backward(dy)
    once = {name: g.copy() for name, g in gru.grads.items()}
    arrays = dict(gru.grads)
    gru(x)
    gru.backward(dy)
    for name, g in gru.grads.items():
        assert g is arrays[name]
        assert rel_err(g, 2 * once[name]) <= TOL[np.float32]
    gru.zero_grad()
    assert all(g is arrays[name] and not g.any() for name, g in gru.grads.items())


def test_params_are_live_for_an_optimizer(rng):
    rnn = make("rnn_tanh", num_layers=2, dtype="float64")
    x = rng.standard_normal((5, 2, I))
    target = rng.standard_normal((5, 2, H))
    losses = []
    for _ in range(20):
        rnn.zero_grad()
        y, _ = rnn(x)
        losses.append(0.5 * np.sum((y - target) ** 2))
        rnn.backward(y - target)
        for name, p in rnn.params.items():
            p -= 0.05 * rnn.grads[name]  # in place: the layer computes with these arrays
    assert losses[-1] < 0.5 * losses[0]


# -- caches and modes ----------------------------------------------------------


def test_backward_needs_the_cache_of_the_last_forward(rng):
    lstm = make("lstm", num_layers=2)
    x = rng.standard_normal((3, 2, I)).astype(np.float32)
    with pytest.raises(RuntimeError, match="no forward pass"):
        lstm.backward(None)
    lstm(x)
    lstm.backward(None)
    with pytest.raises(RuntimeError, match="previous backward"):
        lstm.backward(None)
    lstm(x)
    lstm(x, keep_cache=False)  # the most recent forward pass decides
    with pytest.raises(RuntimeError, match="kept no cache"):
        lstm.backward(None)


def test_cache_defaults_follow_mode_and_no_grad(rng):
    gru = make("gru", num_layers=2, dropout=0.5)
    x = rng.standard_normal((3, 2, I)).astype(np.float32)
    assert gru.training and gru.eval() is gru and not gru.training
    gru(x)
    with pytest.raises(RuntimeError, match="keep_cache=True"):
        gru.backward(None)
    gru(x, keep_cache=True)  # eval mode, explicit cache: gradients without dropout
    gru.backward(None)
    assert gru.train() is gru and gru.training
    with rnncore.no_grad():
        gru(x)
        with pytest.raises(RuntimeError, match="no_grad"):
            gru.backward(None)
        gru(x, keep_cache=True)  # explicit wins
        gru.backward(None)
    gru(x)
    gru.backward(None)
    with pytest.raises(TypeError, match="mode"):
        gru.train("yes")
    with pytest.raises(TypeError, match="keep_cache"):
        gru(x, keep_cache=1)


def test_dropout_only_in_train_mode_and_reproducible_from_seed(rng):
    x = rng.standard_normal((6, 3, I)).astype(np.float32)
    a, b, c = (make("lstm", num_layers=3, dropout=0.5, seed=s) for s in (1, 1, 2))
    c.load_state_dict(a.state_dict())
    ya, yb, yc = a(x)[0], b(x)[0], c(x)[0]
    np.testing.assert_array_equal(ya, yb)  # same seed: same weights, same masks
    assert not np.array_equal(ya, yc)  # same weights, other masks
    assert not np.array_equal(a(x)[0], ya)  # new masks every forward pass
    a.eval(), c.eval()
    np.testing.assert_array_equal(a(x)[0], c(x)[0])
    np.testing.assert_array_equal(a(x)[0], a(x)[0])


def test_dropout_mask_is_inverted_dropout():
    lstm = make("lstm", num_layers=2, dropout=0.25)
    mask = lstm._dropout_mask((200, 50))
    assert mask.dtype == np.float32
    assert set(np.unique(mask)) == {0, np.float32(1 / 0.75)}
    assert abs((mask == 0).mean() - 0.25) < 0.02


def test_no_grad_nests_is_per_thread_and_decorates():
    from rnncore._grad_mode import is_grad_enabled

    seen = []
    with rnncore.no_grad():
        with rnncore.no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
        thread = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        thread.start()
        thread.join()
    assert is_grad_enabled() and seen == [True]

    @rnncore.no_grad()
    def inside():
        return is_grad_enabled()

    assert inside() is False and is_grad_enabled()


# -- state dicts ---------------------------------------------------------------


def test_state_dict_is_a_copy_and_loads_back(rng):
    a, b = make("lstm_proj", num_layers=2, seed=1), make("lstm_proj", num_layers=2, seed=2)
    state = a.state_dict()
    assert all(state[name] is not p and np.array_equal(state[name], p) for name, p in a.params.items())
    arrays = dict(b.params)
    b.load_state_dict({name: v.astype(np.float64) for name, v in state.items()})
    for name, p in b.params.items():
        assert p is arrays[name] and p.dtype == np.float32  # copied into the live arrays
        np.testing.assert_array_equal(p, state[name])


def test_load_state_dict_reports_every_problem_at_once():
    gru = make("gru", num_layers=2)
    before = gru.state_dict()
    bad = gru.state_dict()
    del bad["weight_hh_l1"], bad["bias_ih_l0"]
    bad["weight_ih_l0"] = np.zeros((2, 2), np.float32)
    bad["bias_hh_l0"] = np.zeros(3 * H, np.int64)
    bad["weight_hh_l0"] = [[0.0] * H] * (3 * H)
    bad["weight_hr_l0"] = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError) as info:
        gru.load_state_dict(bad)
    message = str(info.value)
    for words in ("missing: weight_hh_l1", "missing: bias_ih_l0", "unexpected: weight_hr_l0",
                  "weight_ih_l0: expected shape (12, 3), got (2, 2)", "bias_hh_l0: expected floating",
                  "weight_hh_l0: expected a numpy.ndarray"):
        assert words in message
    for name, p in gru.params.items():
        np.testing.assert_array_equal(p, before[name])  # nothing loaded
    with pytest.raises(TypeError, match="state_dict"):
        gru.load_state_dict([("weight_ih_l0", before["weight_ih_l0"])])


def test_importing_rnncore_and_loading_arrays_never_imports_torch(tmp_path):
    code = ("import sys, rnncore; m = rnncore.LSTM(2, 3); m.load_state_dict(m.state_dict()); "
            "m.save(sys.argv[1]); rnncore.load(sys.argv[1]); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.npz")], check=True)


# -- argument errors -----------------------------------------------------------


def forward_errors(rng):
    f32 = np.float32
    x = rng.standard_normal((4, 2, I)).astype(f32)
    h0 = np.zeros((4, 2, 2), f32)  # 2 layers x 2 directions, proj_size 2
    c0 = np.zeros((4, 2, H), f32)
    return [  # (x, h0, lengths, error, message pattern)
        (x.tolist(), None, None, TypeError, "x must be a numpy.ndarray"),
        (x.astype(np.float64), None, None, TypeError, "x must have dtype float32"),
        (x[..., :2], None, None, ValueError, r"x must have shape \[T, B, I\].*got \(4, 2, 2\)"),
        (x[None], None, None, ValueError, "x must have shape"),
        (x[:0], None, None, ValueError, "x must have shape"),
        (x, h0, None, TypeError, "h0 must be a tuple"),
        (x, (h0[:2], c0), None, ValueError, r"h0 must have shape \[num_layers\*D, B, H_out\] = \(4, 2, 2\)"),
        (x, (h0, c0[..., :2]), None, ValueError, r"c0 must have shape \[num_layers\*D, B, H\] = \(4, 2, 4\)"),
        (x, (h0, c0.astype(np.float64)), None, TypeError, "c0 must have dtype float32"),
        (x, None, [4, 5], ValueError, "lengths"),
        (x, None, [4], ValueError, "lengths"),
        (x, None, [4.0, 2.0], TypeError, "lengths"),
    ]


def test_forward_errors_name_the_argument(rng):
    lstm = make("lstm_proj", num_layers=2, bidirectional=True)
    for x, h0, lengths, error, pattern in forward_errors(rng):
        with pytest.raises(error, match=pattern):
            lstm(x, h0, lengths)


def test_backward_errors_name_the_argument(rng):
    lstm = make("lstm", num_layers=2, batch_first=True)
    x = rng.standard_normal((2, 5, I)).astype(np.float32)
    y, (h_n, c_n) = lstm(x)
    for dy, dh, error, pattern in [
        (y.transpose(1, 0, 2), None, ValueError, r"dy must have shape \[B, T, D\*H_out\] = \(2, 5, 4\)"),
        (y.astype(np.float64), None, TypeError, "dy must have dtype float32"),
        (y, h_n, TypeError, "dh_n must be a tuple"),
        (y, (h_n[0], None), ValueError, r"dh_n must have shape \[num_layers\*D, B, H_out\]"),
        (y, (None, c_n[:, :1]), ValueError, "dc_n must have shape"),
    ]:
        with pytest.raises(error, match=pattern):
            lstm.backward(dy, dh)
    lstm.backward(y, (h_n, None))  # failed checks did not use up the cache
