"""rnncore.functional.PrepackedLSTM / PrepackedGRU / PrepackedRNN: weights copied once
and kept packed across calls.  Every call must give the bits of the plain
forward function on the same weights, whatever the thread count, the ISA
or the calls made before it."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

import rnncore
from cellcases import ALL_VARIANTS, arg_names, make_args, random_lengths
from rnncore import _core
from rnncore import functional as F

PACKED = {"lstm": F.PrepackedLSTM, "gru": F.PrepackedGRU, "rnn": F.PrepackedRNN}
SHAPES = [  # (T, B, I, H)
    (1, 1, 3, 5),     # one step: the input projection reads W in place
    (5, 1, 6, 16),    # batch 1, T <= 8: W_hh read in place every step
    (30, 1, 7, 40),   # batch 1, longer: W_hh packed
    (40, 1, 7, 40),   # batch 1, two chunks of 16 steps: the fused step (AVX-512)
    (36, 2, 9, 48),   # batch 2: the fused step too
    (9, 3, 5, 17),
    (12, 16, 8, 33),  # several threads' shares, H not a multiple of 16
    (1, 6, 256, 40),  # one step at a few rows: the plain call swaps (W_ih), prepacked does not
    (1, 12, 128, 128),
]


def split(v, args):
    """(x, states, weights dict, call options) of make_args' list."""
    named = dict(zip(arg_names(v), args))
    states = [named[n] for n in ("h0", "c0") if n in named]
    weights = {k: named[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                     "weight_hr") if k in named}
    return named["x"], states, weights, dict(v.options)


def plain(v, x, states, weights, options, **kw):
    """The outputs of the ordinary forward function (no cache)."""
    if v.cell == "lstm":
        w = dict(weights)
        hr = w.pop("weight_hr", None)
        return F.lstm_forward(x, *states, *w.values(), weight_hr=hr, keep_cache=False,
                              **kw)[:3]
    fwd = F.gru_forward if v.cell == "gru" else F.rnn_forward
    return fwd(x, *states, *weights.values(), keep_cache=False, **options, **kw)[:2]


def packed_of(v, weights):
    w = dict(weights)
    hr = w.pop("weight_hr", None)
    if v.cell == "lstm":
        return F.PrepackedLSTM(*w.values(), weight_hr=hr)
    return PACKED[v.cell](*w.values())


def call(v, p, x, states, options, **kw):
    return p(x, *states, **options, **kw)


@pytest.fixture
def threads():
    before = rnncore.get_num_threads()
    yield
    rnncore.set_num_threads(before)


@pytest.mark.parametrize("v", ALL_VARIANTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%dB%dI%dH%d" % s)
def test_same_bits_as_plain_forward(v, dtype, shape, rng, threads):
    T, B, I, H = shape
    x, states, weights, options = split(v, make_args(v, T, B, I, H, dtype, rng))
    p = packed_of(v, weights)
    for nt in (1, 2, 3, 1, 2):  # new thread counts, then packs made before
        rnncore.set_num_threads(nt)
        want = plain(v, x, states, weights, options)
        for _ in range(2):
            got = call(v, p, x, states, options)
            assert len(got) == len(want)
            for a, b in zip(got, want):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("v", ALL_VARIANTS, ids=str)
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_reverse_no_bias_no_states(v, reverse, rng, threads):
    T, B, I, H = 11, 5, 4, 24
    args = make_args(v, T, B, I, H, np.float32, rng, bias=False, states=False)
    x, states, weights, options = split(v, args)
    lengths = random_lengths(T, B, rng)
    p = packed_of(v, weights)
    for nt in (1, 2):
        rnncore.set_num_threads(nt)
        want = plain(v, x, states, weights, options, lengths=lengths, reverse=reverse)
        got = call(v, p, x, states, options, lengths=lengths, reverse=reverse)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_one_object_serves_other_shapes_and_options(rng):
    """The packs depend on the weights, not on T, B or the call's options."""
    v = ALL_VARIANTS[1]  # GRU: reset_after changes which rows are packed together
    x, states, weights, _ = split(v, make_args(v, 20, 4, 6, 32, np.float64, rng))
    p = packed_of(v, weights)
    for T, B in [(20, 4), (3, 1), (40, 9), (1, 2)]:
        xs = rng.standard_normal((T, B, 6))
        for reset_after in (True, False):
            want = plain(v, xs, [None], weights, {"reset_after": reset_after})
            got = p(xs, reset_after=reset_after)
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)


def test_weights_are_copied_and_frozen(rng):
    v = ALL_VARIANTS[0]
    x, states, weights, options = split(v, make_args(v, 6, 2, 3, 8, np.float32, rng))
    original = {k: a.copy() for k, a in weights.items()}
    p = packed_of(v, weights)
    p(x, *states)  # packed from the copies now
    for a in weights.values():
        a[...] = 0.5  # the caller's arrays change; the packed layer does not
    want = plain(v, x, states, original, options)
    for a, b in zip(p(x, *states), want):
        np.testing.assert_array_equal(a, b)
    held = p.weights()
    for k, a in original.items():
        np.testing.assert_array_equal(held[k], a)
        assert not held[k].flags.writeable
    with pytest.raises(ValueError):
        held["weight_hh"][0, 0] = 1.0


def test_packed_bytes(rng, threads):
    v = ALL_VARIANTS[0]
    H, I = 64, 32
    x, states, weights, options = split(v, make_args(v, 10, 8, I, H, np.float32, rng))
    p = packed_of(v, weights)
    assert p.packed_bytes == 0
    rnncore.set_num_threads(1)
    p(x, *states)
    one = p.packed_bytes
    assert one >= 4 * H * (I + H) * 4  # W_ih and W_hh, padded to whole panels
    p(x, *states)
    assert p.packed_bytes == one  # nothing repacked per call
    rnncore.set_num_threads(2)
    p(x, *states)
    assert p.packed_bytes > one  # the 2-thread shares beside the 1-thread ones
    two = p.packed_bytes
    for _ in range(3):
        p(x, *states)
    assert p.packed_bytes == two
    assert "PrepackedLSTM(input_size=32, hidden_size=64" in repr(p)


def test_calls_from_several_threads(rng):
    v = ALL_VARIANTS[0]
    x, states, weights, options = split(v, make_args(v, 25, 3, 16, 48, np.float32, rng))
    p = packed_of(v, weights)
    want = plain(v, x, states, weights, options)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(p(x, *states))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    assert len(results) == 20
    for got in results:
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(len(_core._available_isas()) < 2, reason="one ISA on this CPU")
def test_isa_change_repacks(rng):
    """Panels packed for one ISA's kernels are not used by another's."""
    v = ALL_VARIANTS[0]
    x, states, weights, options = split(v, make_args(v, 30, 1, 8, 40, np.float32, rng))
    p = packed_of(v, weights)
    before = rnncore.cpu_info()["isa"]
    try:
        for isa in _core._available_isas():
            _core._set_isa(isa)
            want = plain(v, x, states, weights, options)
            for a, b in zip(p(x, *states), want):
                np.testing.assert_array_equal(a, b)
    finally:
        _core._set_isa(before)


# -- bad input ---------------------------------------------------------------

def lstm_weights(dtype=np.float32, H=4, I=3):
    return [np.zeros((4 * H, I), dtype), np.zeros((4 * H, H), dtype),
            np.zeros(4 * H, dtype), np.zeros(4 * H, dtype)]


def test_construction_checks_name_the_argument():
    w = lstm_weights()
    with pytest.raises(ValueError, match="PrepackedLSTM: weight_ih must be C-contiguous"):
        F.PrepackedLSTM(np.zeros((16, 6), np.float32)[:, ::2], w[1])
    with pytest.raises(ValueError, match="PrepackedLSTM: weight_hh"):
        F.PrepackedLSTM(w[0], np.zeros((12, 4), np.float32))
    with pytest.raises(ValueError, match="PrepackedGRU: weight_ih"):
        F.PrepackedGRU(np.zeros((9, 3), np.float32), np.zeros((12, 4), np.float32))
    with pytest.raises(ValueError, match="bias_ih and bias_hh must both"):
        F.PrepackedLSTM(w[0], w[1], w[2])
    with pytest.raises(TypeError, match="PrepackedRNN: weight_hh must have dtype float32 or float64"):
        F.PrepackedRNN(np.zeros((4, 3), np.int64), np.zeros((4, 4), np.int64))
    with pytest.raises(TypeError, match="PrepackedLSTM: weight_ih has dtype float64"):
        F.PrepackedLSTM(w[0].astype(np.float64), w[1])
    with pytest.raises(TypeError, match="PrepackedLSTM: weight_hh must be a numpy.ndarray"):
        F.PrepackedLSTM(w[0], [[0.0] * 4] * 16)
    with pytest.raises(ValueError, match=r"PrepackedLSTM: weight_hh must have shape \[4H, P\]"):
        F.PrepackedLSTM(*w, weight_hr=np.zeros((5, 4), np.float32))  # P=5 but W_hh is [16, 4]
    with pytest.raises(TypeError):
        F.PrepackedGRU(*w, weight_hr=np.zeros((2, 4), np.float32))


def test_call_checks_name_the_argument():
    p = F.PrepackedLSTM(*lstm_weights())
    with pytest.raises(ValueError, match=r"PrepackedLSTM: x must be \[T, B, I\] with I = 3"):
        p(np.zeros((2, 1, 5), np.float32))
    with pytest.raises(TypeError, match="PrepackedLSTM: x has dtype float64"):
        p(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match="lstm_forward: x must have shape"):
        p(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="lstm_forward: h0"):
        p(np.zeros((2, 1, 3), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="lstm_forward: lengths"):
        p(np.zeros((2, 1, 3), np.float32), lengths=np.array([3]))
    with pytest.raises(TypeError, match="reverse must be a bool"):
        p(np.zeros((2, 1, 3), np.float32), reverse=1)
    g = F.PrepackedRNN(np.zeros((4, 3), np.float32), np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        g(np.zeros((2, 1, 3), np.float32), nonlinearity="sigmoid")


def test_core_packed_argument_checks():
    w = lstm_weights()
    x = np.zeros((2, 1, 3), np.float32)
    lstm = F.PrepackedLSTM(*w)._packed
    gru = F.PrepackedGRU(np.zeros((12, 3), np.float32), np.zeros((12, 4), np.float32))._packed
    none5 = (None,) * 5
    with pytest.raises(ValueError, match="keep_cache must be False"):
        _core.lstm_forward(x, None, None, *none5, None, False, True, packed=lstm)
    with pytest.raises(ValueError, match="packed holds gru weights, not lstm"):
        _core.lstm_forward(x, None, None, *none5, None, False, False, packed=gru)
    with pytest.raises(ValueError, match="not both"):
        _core.lstm_forward(x, None, None, *w, None, None, False, False, packed=lstm)
    with pytest.raises(TypeError, match="packed must be a PackedWeights"):
        _core.gru_forward(x, None, *(None,) * 4, None, False, True, False, packed=object())
    with pytest.raises(ValueError, match="cell must be 'lstm', 'gru' or 'rnn'"):
        _core.PackedWeights("lstmx", *w, None, "PrepackedLSTM")


# -- layers: LSTM.prepacked(), GRU.prepacked(), RNN.prepacked() ------------------------

LAYERS = [
    (rnncore.LSTM, {}),
    (rnncore.LSTM, {"proj_size": 3}),
    (rnncore.GRU, {}),
    (rnncore.GRU, {"reset_after": False}),
    (rnncore.RNN, {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize("cls,options", LAYERS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_packed_same_bits_as_eval_forward(cls, options, batch_first, rng, threads):
    layer = cls(5, 8, num_layers=2, bidirectional=True, batch_first=batch_first, dropout=0.3,
                seed=1, **options)
    packed = layer.prepacked()
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)  # [T or B, B or T, I]
    B = x.shape[0] if batch_first else x.shape[1]
    lengths = rng.integers(1, 8 if batch_first else 4, size=B)
    states = [rng.standard_normal((4, B, n)).astype(np.float32)
              for n in layer._stack.state_sizes()]
    h0 = tuple(states) if cls is rnncore.LSTM else states[0]
    layer.eval()
    for nt in (1, 2):
        rnncore.set_num_threads(nt)
        for args in ((x,), (x, h0, lengths), (x[:, 0] if not batch_first else x[0],)):
            want = layer(*args)
            got = packed(*args)
            np.testing.assert_array_equal(got[0], want[0])
            for a, b in zip(np.atleast_1d(got[1]) if cls is not rnncore.LSTM else got[1],
                            np.atleast_1d(want[1]) if cls is not rnncore.LSTM else want[1]):
                np.testing.assert_array_equal(a, b)
    assert packed.packed_bytes > 0
    assert repr(packed).startswith(f"PrepackedLayer({cls.__name__}(5, 8")


def test_layer_packed_keeps_the_weights_it_was_made_with(rng):
    layer = rnncore.GRU(4, 6, seed=0)
    x = rng.standard_normal((5, 2, 4)).astype(np.float32)
    packed = layer.prepacked()
    with rnncore.no_grad():
        before = layer(x)[0]
    for p in layer.params.values():
        p *= 0.5  # an optimizer step, in place
    np.testing.assert_array_equal(packed(x)[0], before)
    with rnncore.no_grad():
        assert not np.array_equal(layer(x)[0], before)
    np.testing.assert_array_equal(layer.prepacked()(x)[0], layer.eval()(x)[0])


def test_layer_packed_checks_its_arguments():
    packed = rnncore.LSTM(3, 4).prepacked()
    with pytest.raises(TypeError, match="LSTM: x must have dtype float32"):
        packed(np.zeros((2, 1, 3)))
    with pytest.raises(ValueError, match="LSTM: x must have shape"):
        packed(np.zeros((2, 1, 5), np.float32))
    with pytest.raises(TypeError, match="LSTM: h0 must be a tuple"):
        packed(np.zeros((2, 1, 3), np.float32), np.zeros((1, 1, 4), np.float32))
    with pytest.raises(ValueError, match="lengths"):
        packed(np.zeros((2, 1, 3), np.float32), None, [3])


# -- rnncore.models: decoding steps on prepacked weights ---------------------

@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_decoder_frozen_steps_same_bits(cell, rng):
    from rnncore.models import Seq2Seq

    model = Seq2Seq(cell=cell, vocab_size=7, hidden_size=16, num_layers=2, seed=0)
    X = [rng.integers(0, 7, 5) for _ in range(4)]
    model.fit(X, X, epochs=1, lr=0.01, progress=False)
    dec, N = model.decoder, 6
    memory = (rng.standard_normal((5, N, 16)).astype(np.float32), np.full(N, 5))
    tokens = rng.integers(0, 7, N)

    def steps():
        state, out = (dec.zero_states(N), memory), []
        for _ in range(4):
            logp, state = dec.decode_step(tokens, state)
            out.append(logp)
        return out, state[0]

    want = steps()
    before = dec._steps
    with dec.frozen_steps():
        got = steps()
        assert all(c._prepacked is not None for c in dec._steps)
    assert dec._steps is before  # restored
    for a, b in zip(got[0] + list(got[1]), want[0] + list(want[1])):
        np.testing.assert_array_equal(a, b)
    # Beam search over several hypotheses runs on frozen steps: the same
    # translations as on the layer's own weights.
    srcs = [np.array([1, 2, 3, 4]), np.array([5, 0, 6])]
    used = []
    frozen = dec.frozen_steps

    def spy():
        used.append(True)
        return frozen()

    dec.frozen_steps = spy
    got = model.translate(srcs, method="beam", beam_size=3, max_len=6)
    assert used
    dec.frozen_steps = contextlib.nullcontext
    want = model.translate(srcs, method="beam", beam_size=3, max_len=6)
    del dec.frozen_steps
    assert [a.tolist() for a in got] == [b.tolist() for b in want]
