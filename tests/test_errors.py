"""Bad arguments to rnncore.functional raise TypeError/ValueError naming the
argument, never a crash and never a silent conversion."""

from __future__ import annotations

import numpy as np
import pytest

from cellcases import VARIANTS, backward, forward, make_args
from rnncore import functional as F

T, B, I, H = 4, 3, 5, 6


def names(v):
    states = ["h0", "c0"] if v.cell == "lstm" else ["h0"]
    return ["x", *states, "weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def call_with(v, rng, name, value):
    args = make_args(v, T, B, I, H, np.float32, rng)
    args[names(v).index(name)] = value
    return forward(F, v, args)


def every_array_arg():
    return [(v, n) for v in VARIANTS for n in names(v)]


def arg_id(p):
    return str(p) if not isinstance(p, str) else p


@pytest.mark.parametrize("v,name", every_array_arg(), ids=arg_id)
def test_wrong_dtype_names_the_argument(v, name, rng):
    value = make_args(v, T, B, I, H, np.float32, rng)[names(v).index(name)]
    for bad in (value.astype(np.float64), value.astype(np.int32), value.astype(np.float16)):
        if name == "x" and bad.dtype == np.float64:
            continue  # x sets the dtype; the others then mismatch (tested below)
        with pytest.raises(TypeError, match=name):
            call_with(v, rng, name, bad)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_mixed_dtypes_are_refused(v, rng):
    args = make_args(v, T, B, I, H, np.float32, rng)
    args[0] = args[0].astype(np.float64)  # x float64, weights float32
    with pytest.raises(TypeError, match="dtype"):
        forward(F, v, args)


@pytest.mark.parametrize("v,name", every_array_arg(), ids=arg_id)
def test_wrong_rank_and_shape_name_the_argument(v, name, rng):
    value = make_args(v, T, B, I, H, np.float32, rng)[names(v).index(name)]
    bad_values = [value[..., None], np.zeros((0,) * value.ndim, np.float32)]
    if name != "x":  # x's shape defines T, B and I: any 3-D x is valid alone
        bad_values.append(value[..., :-1])
    for bad in bad_values:
        with pytest.raises(ValueError, match=name):
            call_with(v, rng, name, np.ascontiguousarray(bad))


@pytest.mark.parametrize("v,name", every_array_arg(), ids=arg_id)
def test_non_contiguous_is_refused(v, name, rng):
    value = make_args(v, T, B, I, H, np.float32, rng)[names(v).index(name)]
    doubled = np.repeat(value, 2, axis=-1)[..., ::2]
    assert not doubled.flags.c_contiguous and doubled.shape == value.shape
    with pytest.raises(ValueError, match=f"{name} must be C-contiguous"):
        call_with(v, rng, name, doubled)


@pytest.mark.parametrize("v,name", every_array_arg(), ids=arg_id)
def test_lists_are_not_arrays(v, name, rng):
    value = make_args(v, T, B, I, H, np.float32, rng)[names(v).index(name)]
    with pytest.raises(TypeError, match=f"{name} must be a numpy.ndarray"):
        call_with(v, rng, name, value.tolist())


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("lengths,error,match", [
    (np.array([4, 0, 2]), ValueError, r"lengths\[1\] = 0 is out of range"),
    (np.array([5, 1, 2]), ValueError, r"lengths\[0\] = 5 is out of range"),
    (np.array([-1, 1, 2]), ValueError, r"lengths\[0\] = -1"),
    (np.array([4, 1]), ValueError, "lengths must have shape"),
    (np.array([[4, 1, 2]]), ValueError, "lengths must have shape"),
    (np.array([4.0, 1.0, 2.0]), TypeError, "lengths must hold integers"),
    ("abc", TypeError, "lengths must hold integers"),
])
def test_bad_lengths(v, lengths, error, match, rng):
    args = make_args(v, T, B, I, H, np.float32, rng)
    with pytest.raises(error, match=match):
        forward(F, v, args, lengths=lengths)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_one_bias_alone_is_refused(v, rng):
    args = make_args(v, T, B, I, H, np.float32, rng)
    args[-1] = None
    with pytest.raises(ValueError, match="bias_ih and bias_hh"):
        forward(F, v, args)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("flag", ["reverse", "keep_cache"])
def test_flags_must_be_bool(v, flag, rng):
    args = make_args(v, T, B, I, H, np.float32, rng)
    with pytest.raises(TypeError, match=flag):
        forward(F, v, args, **{flag: 1})


def test_bad_nonlinearity(rng):
    v = VARIANTS[3]
    args = make_args(v, T, B, I, H, np.float32, rng)
    with pytest.raises(ValueError, match="nonlinearity"):
        F.rnn_forward(*args, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="nonlinearity"):
        F.rnn_forward(*args, nonlinearity=None)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_backward_checks_its_gradients(v, rng):
    args = make_args(v, T, B, I, H, np.float32, rng)
    (y, *states), cache = forward(F, v, args)
    with pytest.raises(ValueError, match="dy must have shape"):
        backward(F, v, cache, y[:-1].copy(), [])
    with pytest.raises(TypeError, match="dy has dtype float64"):
        backward(F, v, cache, y.astype(np.float64), [])
    with pytest.raises(ValueError, match="dh_n must have shape"):
        backward(F, v, cache, y, [states[0][:, :-1].copy()])
    if v.cell == "lstm":
        with pytest.raises(TypeError, match="dc_n"):
            backward(F, v, cache, y, [states[0], states[1].astype(np.float64)])


def test_backward_refuses_a_cache_of_another_cell(rng):
    v = VARIANTS[0]
    (y, *_), cache = forward(F, v, make_args(v, T, B, I, H, np.float32, rng))
    with pytest.raises(TypeError, match="gru_forward"):
        F.gru_backward(cache, y)
    with pytest.raises(TypeError, match="lstm_forward"):
        F.lstm_backward("not a cache", y)
