"""Checks of rnncore.reference, the NumPy oracle every fast path is tested against.

- Every gradient of every cell variant (the projected LSTM included)
  agrees with float64 central finite differences of a random linear
  functional of the outputs.
- The variable-length semantics hold: zeros after each sequence's end,
  final states from each sequence's own last step, reverse direction
  starting at len_b - 1, and padding that never influences anything --
  not even NaN, checked for rnncore.functional too.
- The paper GRU (no PyTorch counterpart) matches its equations written out.
"""

import dataclasses

import numpy as np
import pytest

from cellcases import (
    ALL_VARIANTS,
    arg_names,
    backward,
    forward,
    make_args,
    output_grads,
    padded,
    rel_err,
    replace_args,
    state_names,
)
from rnncore import functional as F
from rnncore import reference as R

T, B, I, H = 4, 3, 3, 4
LENGTHS = np.array([3, 4, 1])  # unsorted, includes 1 and T
BY_NAME = {v.name: v for v in ALL_VARIANTS}


@pytest.fixture(params=ALL_VARIANTS, ids=str)
def variant(request):
    return request.param


def make_case(v, bias=True, dtype=np.float64, seed=0):
    """Random arguments of one forward call, a list named by ``arg_names(v)``."""
    return make_args(v, T, B, I, H, dtype, np.random.default_rng(seed), bias=bias)


def weight_names(v):
    return [name for name in arg_names(v) if name.startswith(("weight", "bias"))]


def assert_same(actual, expected):
    """Equal bit for bit, element by element; None exactly where ``expected`` has None."""
    assert len(actual) == len(expected)
    names = getattr(expected, "_fields", range(len(expected)))
    for name, a, e in zip(names, actual, expected):
        if e is None:
            assert a is None, name
        else:
            np.testing.assert_array_equal(a, e, err_msg=str(name))


# --------------------------------------------------------------------------
# Gradients against finite differences
# --------------------------------------------------------------------------


def numerical_grad(loss, arr, eps=1e-6):
    """Central differences of ``loss()`` w.r.t. every element of ``arr`` (perturbed in place)."""
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        saved = arr[idx]
        arr[idx] = saved + eps
        up = loss()
        arr[idx] = saved - eps
        down = loss()
        arr[idx] = saved
        grad[idx] = (up - down) / (2 * eps)
    return grad


# Backward is linear in (dy, dh_n, dc_n), so checking each entry point alone covers their sums.
# Without biases the math is that with zero biases (test_no_bias_is_zero_bias), so biases are always on.
@pytest.mark.parametrize("source", ["y", "final_state"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
def test_gradients_match_finite_differences(variant, lengths, reverse, source):
    args = make_case(variant)
    outs, cache = forward(R, variant, args, lengths=lengths, reverse=reverse)
    dy, dfinals = output_grads(outs, np.random.default_rng(1))
    if source == "y":
        dfinals = [None] * len(dfinals)
    else:
        dy = None
    # loss = Σ dy * y + Σ_k dfinal_k * final_k; a None weight is a term left out
    loss_weights = [dy, *dfinals]

    def loss():
        outs, _ = forward(R, variant, args, lengths=lengths, reverse=reverse, keep_cache=False)
        return sum(np.sum(w * out) for w, out in zip(loss_weights, outs) if w is not None)

    grads = backward(R, variant, cache, dy, dfinals)._asdict()
    named = dict(zip(arg_names(variant), args))
    assert {"d" + name for name in named} <= set(grads)
    for name, grad in grads.items():
        arr = named.get(name[1:])
        if arr is None:  # dweight_hr of an LSTM without projection
            assert grad is None, name
            continue
        expected = numerical_grad(loss, arr)
        assert np.abs(expected).max() > 0, f"{name} is identically 0: the check would be vacuous"
        assert grad.dtype == arr.dtype
        assert grad.shape == arr.shape
        err = rel_err(grad, expected)
        assert err < 1e-6, f"{name}: relative error {err:.2e}"


def test_no_bias_is_zero_bias(variant):
    """Biases None compute exactly what zero biases do, and have no gradients."""
    args = make_case(variant)
    names = arg_names(variant)
    zeros = {name: np.zeros_like(args[names.index(name)]) for name in ("bias_ih", "bias_hh")}
    no_bias = replace_args(variant, args, bias_ih=None, bias_hh=None)
    outs, cache = forward(R, variant, replace_args(variant, args, **zeros), lengths=LENGTHS, reverse=True)
    outs2, cache2 = forward(R, variant, no_bias, lengths=LENGTHS, reverse=True)
    assert_same(outs2, outs)
    dy, dfinals = output_grads(outs, np.random.default_rng(1))
    grads = backward(R, variant, cache, dy, dfinals)
    grads2 = backward(R, variant, cache2, dy, dfinals)
    assert_same(grads2, grads._replace(dbias_ih=None, dbias_hh=None))


# --------------------------------------------------------------------------
# Variable lengths and direction
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_padded_batch_equals_each_sequence_alone(variant, reverse):
    """Outputs, final states and gradients of a padded batch are those of its unpadded sequences."""
    args = make_case(variant)
    named = dict(zip(arg_names(variant), args))
    (y, *finals), cache = forward(R, variant, args, lengths=LENGTHS, reverse=reverse)
    dy, dfinals = output_grads([y, *finals], np.random.default_rng(2))
    grads = backward(R, variant, cache, dy, dfinals)._asdict()

    assert np.all(y[padded(LENGTHS, T)] == 0)
    assert np.all(grads["dx"][padded(LENGTHS, T)] == 0)
    # the final hidden state is the output of the sequence's own last step
    last = np.zeros(B, dtype=int) if reverse else LENGTHS - 1
    np.testing.assert_array_equal(finals[0], y[last, np.arange(B)])

    def assert_close(actual, expected):  # the same math on fewer rows: equal up to rounding
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)

    summed = {name: np.zeros_like(named[name]) for name in weight_names(variant)}
    for b, n in enumerate(LENGTHS):
        one_row = {name: named[name][b : b + 1] for name in state_names(variant)}
        alone = replace_args(variant, args, x=named["x"][:n, b : b + 1], **one_row)
        (y_b, *finals_b), cache_b = forward(R, variant, alone, reverse=reverse)
        grads_b = backward(R, variant, cache_b, dy[:n, b : b + 1], [d[b : b + 1] for d in dfinals])._asdict()

        assert_close(y[:n, b], y_b[:, 0])
        for final, final_b in zip(finals, finals_b):
            assert_close(final[b], final_b[0])
        assert_close(grads["dx"][:n, b], grads_b["dx"][:, 0])
        for name in state_names(variant):
            assert_close(grads["d" + name][b], grads_b["d" + name][0])
        for name in summed:
            summed[name] += grads_b["d" + name]
    for name, total in summed.items():
        assert_close(grads["d" + name], total)


@pytest.mark.parametrize("module", [R, F], ids=["reference", "functional"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_nan_padding_never_reaches_results(module, variant, reverse):
    """NaN in x and dy at padded positions: every output and every gradient is
    finite and bit for bit what zero padding gives (dx is 0 at the padding)."""
    args = make_case(variant)
    pad = padded(LENGTHS, T)

    def run(fill):
        x = args[0].copy()
        x[pad] = fill
        outs, cache = forward(module, variant, [x, *args[1:]], lengths=LENGTHS, reverse=reverse)
        dy, dfinals = output_grads(outs, np.random.default_rng(3))  # the same draws in every run
        dy[pad] = fill
        return [*outs, *backward(module, variant, cache, dy, dfinals)]

    zero_padded, nan_padded = run(0.0), run(np.nan)
    assert_same(nan_padded, zero_padded)
    assert all(np.all(np.isfinite(a)) for a in nan_padded if a is not None)
    dx = nan_padded[len(state_names(variant)) + 1]
    assert np.all(dx[pad] == 0)


def test_reverse_runs_the_flipped_sequence(variant):
    """Without lengths, reverse=True is the forward run on x[::-1], outputs flipped back."""
    args = make_case(variant)
    (y, *finals), _ = forward(R, variant, args, reverse=True)
    (y_f, *finals_f), _ = forward(R, variant, replace_args(variant, args, x=args[0][::-1].copy()))
    np.testing.assert_array_equal(y, y_f[::-1])
    assert_same(finals, finals_f)


def test_full_lengths_equal_no_lengths(variant):
    args = make_case(variant)
    outs, cache = forward(R, variant, args)
    outs2, cache2 = forward(R, variant, args, lengths=[T] * B)
    assert_same(outs2, outs)
    dy, _ = output_grads(outs, np.random.default_rng(4))
    no_dfinals = [None] * (len(outs) - 1)
    assert_same(backward(R, variant, cache2, dy, no_dfinals), backward(R, variant, cache, dy, no_dfinals))


# --------------------------------------------------------------------------
# Defaults, dtypes, caches and errors
# --------------------------------------------------------------------------


def test_none_means_zeros(variant):
    """h0/c0 None, dy None and dh_n/dc_n None all stand for zeros."""
    args = make_case(variant)
    named = dict(zip(arg_names(variant), args))
    states = state_names(variant)
    zeros = replace_args(variant, args, **{name: np.zeros_like(named[name]) for name in states})
    nones = replace_args(variant, args, **{name: None for name in states})
    outs, cache = forward(R, variant, zeros, lengths=LENGTHS)
    outs2, cache2 = forward(R, variant, nones, lengths=LENGTHS)
    assert_same(outs2, outs)
    y, h_n, *c_n = outs
    with_nones = backward(R, variant, cache2, None, [np.ones_like(h_n), *(None for _ in c_n)])
    with_zeros = backward(R, variant, cache, np.zeros_like(y), [np.ones_like(h_n), *map(np.zeros_like, c_n)])
    assert_same(with_nones, with_zeros)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_computes_in_the_input_dtype(variant, dtype):
    args = make_case(variant, dtype=dtype)
    outs, cache = forward(R, variant, args, lengths=LENGTHS)
    grads = backward(R, variant, cache, np.ones_like(outs[0]), [None] * (len(outs) - 1))
    assert all(out.dtype == dtype for out in outs)
    assert all(g.dtype == dtype for g in grads if g is not None)


def test_keep_cache_false(variant):
    args = make_case(variant)
    outs, cache = forward(R, variant, args, lengths=LENGTHS)
    outs2, no_cache = forward(R, variant, args, lengths=LENGTHS, keep_cache=False)
    assert no_cache is None
    assert_same(outs2, outs)
    with pytest.raises(ValueError, match="keep_cache=False"):
        backward(R, variant, None, np.ones_like(outs[0]), [None] * (len(outs) - 1))


@pytest.mark.parametrize("missing", ["bias_ih", "bias_hh"])
def test_one_bias_alone_is_refused(variant, missing):
    """PyTorch layers have both biases or none; so does every call."""
    message = f"^{variant.cell}_forward: bias_ih and bias_hh must both be given or both be None$"
    with pytest.raises(ValueError, match=message):
        forward(R, variant, replace_args(variant, make_case(variant), **{missing: None}))


def test_rejects_bad_arguments():
    v = BY_NAME["gru"]
    args = make_case(v)
    _, h0, weight_ih, weight_hh, _, _ = args
    with pytest.raises(TypeError, match="weight_hh"):
        forward(R, v, replace_args(v, args, weight_hh=weight_hh.astype(np.float32)))
    with pytest.raises(ValueError, match="weight_ih"):
        forward(R, v, replace_args(v, args, weight_ih=weight_ih[:, :-1]))
    with pytest.raises(ValueError, match="h0"):
        forward(R, v, replace_args(v, args, h0=h0[:-1]))
    for bad in ([0, 1, 1], [T + 1, 1, 1], [1, 1]):
        with pytest.raises(ValueError, match="lengths"):
            forward(R, v, args, lengths=bad)
    with pytest.raises(TypeError, match="lengths"):
        forward(R, v, args, lengths=[1.0, 2.0, 3.0])
    rnn = BY_NAME["rnn_tanh"]
    with pytest.raises(ValueError, match="nonlinearity"):
        forward(R, dataclasses.replace(rnn, options={"nonlinearity": "sigmoid"}), make_case(rnn))
    _, cache = forward(R, v, args)
    with pytest.raises(ValueError, match="dy"):
        backward(R, v, cache, np.ones((T, B, H + 1)), [None])
    with pytest.raises(ValueError, match="gru_forward"):
        R.lstm_backward(cache, None)


def test_rejects_bad_projection_arguments():
    """With weight_hr [P,H]: weight_hh must be [4H,P], h0 and dh_n [B,P], c0 and dc_n [B,H]."""
    v = BY_NAME["lstm_proj"]
    args = make_case(v)
    h0, c0, weight_hr = args[1], args[2], args[-1]
    assert weight_hr.shape[0] != weight_hr.shape[1]  # P != H, or the shape checks would be vacuous
    with pytest.raises(TypeError, match="weight_hr"):
        forward(R, v, replace_args(v, args, weight_hr=weight_hr.astype(np.float32)))
    with pytest.raises(ValueError, match="weight_hr"):
        forward(R, v, replace_args(v, args, weight_hr=weight_hr[0]))
    with pytest.raises(ValueError, match="weight_hh"):
        forward(R, v, replace_args(v, args, weight_hh=np.zeros((4 * H, H))))
    with pytest.raises(ValueError, match="h0"):
        forward(R, v, replace_args(v, args, h0=c0))
    with pytest.raises(ValueError, match="c0"):
        forward(R, v, replace_args(v, args, c0=h0))
    (y, h_n, c_n), cache = forward(R, v, args)
    with pytest.raises(ValueError, match="dy"):
        backward(R, v, cache, np.ones((T, B, H)), [None, None])
    with pytest.raises(ValueError, match="dh_n"):
        backward(R, v, cache, y, [c_n, None])
    with pytest.raises(ValueError, match="dc_n"):
        backward(R, v, cache, y, [None, h_n])


# --------------------------------------------------------------------------
# The paper GRU against its equations (PyTorch has no such cell)
# --------------------------------------------------------------------------


def test_gru_reset_before_matches_equations():
    v = BY_NAME["gru_reset_before"]
    args = make_case(v)
    (y, h_n), _ = forward(R, v, args)
    x, h, weight_ih, weight_hh, bias_ih, bias_hh = args

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    W_ir, W_iz, W_in = np.split(weight_ih, 3)
    W_hr, W_hz, W_hn = np.split(weight_hh, 3)
    b_ir, b_iz, b_in = np.split(bias_ih, 3)
    b_hr, b_hz, b_hn = np.split(bias_hh, 3)
    for t in range(T):
        r = sigmoid(x[t] @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = sigmoid(x[t] @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = np.tanh(x[t] @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(y[t], h, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h_n, h, rtol=1e-13, atol=1e-15)
