"""Checks of rnncore.reference, the NumPy oracle every fast path is tested against.

- Every gradient of every cell variant agrees with float64 central finite
  differences of a random linear functional of the outputs.
- The variable-length semantics hold: zeros after each sequence's end,
  final states from each sequence's own last step, reverse direction
  starting at len_b - 1, and padding that never influences anything.
- The paper GRU (no PyTorch counterpart) matches its equations written out.
"""

from typing import NamedTuple

import numpy as np
import pytest

from rnncore import reference as ref

T, B, I, H = 4, 3, 3, 4
LENGTHS = np.array([3, 4, 1])  # unsorted, includes 1 and T


class Variant(NamedTuple):
    cell: str  # "lstm", "gru" or "rnn": the name of the forward/backward pair
    G: int  # gates
    options: dict  # keyword options of the forward call


VARIANTS = {
    "lstm": Variant("lstm", 4, {}),
    "gru": Variant("gru", 3, {"reset_after": True}),
    "gru_paper": Variant("gru", 3, {"reset_after": False}),
    "rnn_tanh": Variant("rnn", 1, {"nonlinearity": "tanh"}),
    "rnn_relu": Variant("rnn", 1, {"nonlinearity": "relu"}),
}


@pytest.fixture(params=list(VARIANTS))
def variant(request):
    return VARIANTS[request.param]


def state_names(v):
    return ("h0", "c0") if v.cell == "lstm" else ("h0",)


def make_inputs(v, bias=True, dtype=np.float64, seed=0):
    """Random arguments of one forward call, as a dict named like the API (biases may be None)."""
    rng = np.random.default_rng(seed)

    def rand(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(dtype)

    inputs = {"x": rand(T, B, I)}
    inputs.update({name: rand(B, H, scale=0.5) for name in state_names(v)})
    inputs["weight_ih"] = rand(v.G * H, I, scale=0.5)
    inputs["weight_hh"] = rand(v.G * H, H, scale=0.5)
    inputs["bias_ih"] = rand(v.G * H, scale=0.5) if bias else None
    inputs["bias_hh"] = rand(v.G * H, scale=0.5) if bias else None
    return inputs


def forward(v, inputs, **kwargs):
    """Call ``{cell}_forward``; return ``y``, the tuple of final states and the cache."""
    states = [inputs[name] for name in state_names(v)]
    weights = [inputs[name] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    out = getattr(ref, f"{v.cell}_forward")(inputs["x"], *states, *weights, **v.options, **kwargs)
    return out[0], tuple(out[1:-1]), out[-1]


def backward(v, cache, dy, dfinals):
    """Call ``{cell}_backward``; return the gradients as a dict ``{"dx": ..., "dh0": ...}``."""
    return getattr(ref, f"{v.cell}_backward")(cache, dy, *dfinals)._asdict()


def padded(lengths):
    """Boolean mask [T,B], True at t >= len_b."""
    return np.arange(T)[:, None] >= np.asarray(lengths)[None, :]


def assert_grads_equal(grads, expected):
    assert grads.keys() == expected.keys()
    for name, g in grads.items():
        if expected[name] is None:
            assert g is None, name
        else:
            np.testing.assert_array_equal(g, expected[name], err_msg=name)


# --------------------------------------------------------------------------
# Gradients against finite differences
# --------------------------------------------------------------------------


def rel_err(a, b):
    """max |a - b| / max(|a|, |b|) over the array; 0 when both are 0."""
    scale = max(np.abs(a).max(), np.abs(b).max())
    return 0.0 if scale == 0 else np.abs(a - b).max() / scale


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


@pytest.mark.parametrize("source", ["y", "final_state", "both"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_gradients_match_finite_differences(variant, bias, lengths, reverse, source):
    inputs = make_inputs(variant, bias=bias)
    rng = np.random.default_rng(1)
    # loss = Σ dy * y + Σ_k dfinal_k * final_k; a None weight is a term left out
    dy = rng.standard_normal((T, B, H)) if source != "final_state" else None
    dfinals = [rng.standard_normal((B, H)) if source != "y" else None for _ in state_names(variant)]

    def loss():
        y, finals, _ = forward(variant, inputs, lengths=lengths, reverse=reverse, keep_cache=False)
        terms = [np.sum(w * out) for w, out in zip([dy, *dfinals], [y, *finals]) if w is not None]
        return sum(terms)

    _, _, cache = forward(variant, inputs, lengths=lengths, reverse=reverse)
    grads = backward(variant, cache, dy, dfinals)

    assert set(grads) == {"d" + name for name in inputs}
    for name, arr in inputs.items():
        if arr is None:
            assert grads["d" + name] is None, name
            continue
        expected = numerical_grad(loss, arr)
        assert np.abs(expected).max() > 0, f"d{name} is identically 0: the check would be vacuous"
        assert grads["d" + name].dtype == arr.dtype
        assert grads["d" + name].shape == arr.shape
        err = rel_err(grads["d" + name], expected)
        assert err < 1e-6, f"d{name}: relative error {err:.2e}"


# --------------------------------------------------------------------------
# Variable lengths and direction
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_padded_batch_equals_each_sequence_alone(variant, reverse):
    """Outputs, final states and gradients of a padded batch are those of its unpadded sequences."""
    inputs = make_inputs(variant)
    rng = np.random.default_rng(2)
    dy = rng.standard_normal((T, B, H))
    dfinals = [rng.standard_normal((B, H)) for _ in state_names(variant)]
    y, finals, cache = forward(variant, inputs, lengths=LENGTHS, reverse=reverse)
    grads = backward(variant, cache, dy, dfinals)

    assert np.all(y[padded(LENGTHS)] == 0)
    assert np.all(grads["dx"][padded(LENGTHS)] == 0)
    # the final hidden state is the output of the sequence's own last step
    last = np.zeros(B, dtype=int) if reverse else LENGTHS - 1
    np.testing.assert_array_equal(finals[0], y[last, np.arange(B)])

    summed = {name: np.zeros_like(arr) for name, arr in inputs.items() if name.startswith(("weight", "bias"))}
    for b, n in enumerate(LENGTHS):
        alone = {name: arr[b : b + 1] for name, arr in inputs.items() if name.endswith("0")}
        alone["x"] = inputs["x"][:n, b : b + 1]
        alone.update({name: inputs[name] for name in summed})
        y_b, finals_b, cache_b = forward(variant, alone, reverse=reverse)
        grads_b = backward(variant, cache_b, dy[:n, b : b + 1], [d[b : b + 1] for d in dfinals])

        np.testing.assert_allclose(y[:n, b], y_b[:, 0], rtol=1e-13, atol=1e-15)
        for final, final_b in zip(finals, finals_b):
            np.testing.assert_allclose(final[b], final_b[0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grads["dx"][:n, b], grads_b["dx"][:, 0], rtol=1e-12, atol=1e-14)
        for name in state_names(variant):
            np.testing.assert_allclose(grads["d" + name][b], grads_b["d" + name][0], rtol=1e-12, atol=1e-14)
        for name in summed:
            summed[name] += grads_b["d" + name]
    for name, total in summed.items():
        np.testing.assert_allclose(grads["d" + name], total, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_padding_never_influences_results(variant, reverse):
    """Changing x and dy at padded positions changes nothing; dx there is 0."""
    inputs = make_inputs(variant)
    rng = np.random.default_rng(3)
    dy = rng.standard_normal((T, B, H))
    dfinals = [rng.standard_normal((B, H)) for _ in state_names(variant)]
    pad = padded(LENGTHS)

    y, finals, cache = forward(variant, inputs, lengths=LENGTHS, reverse=reverse)
    grads = backward(variant, cache, dy, dfinals)

    inputs["x"] = inputs["x"].copy()
    inputs["x"][pad] = 100 * rng.standard_normal((pad.sum(), I))
    dy_changed = dy.copy()
    dy_changed[pad] = 100 * rng.standard_normal((pad.sum(), H))
    y2, finals2, cache2 = forward(variant, inputs, lengths=LENGTHS, reverse=reverse)
    grads2 = backward(variant, cache2, dy_changed, dfinals)

    np.testing.assert_array_equal(y2, y)
    for final2, final in zip(finals2, finals):
        np.testing.assert_array_equal(final2, final)
    assert np.all(grads2["dx"][pad] == 0)
    assert_grads_equal(grads2, grads)


def test_reverse_runs_the_flipped_sequence(variant):
    """Without lengths, reverse=True is the forward run on x[::-1], outputs flipped back."""
    inputs = make_inputs(variant)
    y, finals, _ = forward(variant, inputs, reverse=True)
    flipped = dict(inputs, x=inputs["x"][::-1].copy())
    y_f, finals_f, _ = forward(variant, flipped)
    np.testing.assert_array_equal(y, y_f[::-1])
    for final, final_f in zip(finals, finals_f):
        np.testing.assert_array_equal(final, final_f)


def test_full_lengths_equal_no_lengths(variant):
    inputs = make_inputs(variant)
    dy = np.random.default_rng(4).standard_normal((T, B, H))
    y, finals, cache = forward(variant, inputs)
    y2, finals2, cache2 = forward(variant, inputs, lengths=[T] * B)
    np.testing.assert_array_equal(y2, y)
    for final2, final in zip(finals2, finals):
        np.testing.assert_array_equal(final2, final)
    assert_grads_equal(backward(variant, cache2, dy, [None] * len(finals)), backward(variant, cache, dy, [None] * len(finals)))


# --------------------------------------------------------------------------
# Defaults, dtypes, caches and errors
# --------------------------------------------------------------------------


def test_none_means_zeros(variant):
    """h0/c0 None, dy None and dh_n/dc_n None all stand for zeros."""
    inputs = make_inputs(variant)
    zeros = dict(inputs, **{name: np.zeros((B, H)) for name in state_names(variant)})
    nones = dict(inputs, **{name: None for name in state_names(variant)})
    y, finals, cache = forward(variant, zeros, lengths=LENGTHS)
    y2, finals2, cache2 = forward(variant, nones, lengths=LENGTHS)
    np.testing.assert_array_equal(y2, y)
    for final2, final in zip(finals2, finals):
        np.testing.assert_array_equal(final2, final)
    n_states = len(state_names(variant))
    dfinals = [np.ones((B, H))] + [None] * (n_states - 1)
    assert_grads_equal(
        backward(variant, cache2, None, dfinals),
        backward(variant, cache, np.zeros((T, B, H)), [np.ones((B, H))] + [np.zeros((B, H))] * (n_states - 1)),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_computes_in_the_input_dtype(variant, dtype):
    inputs = make_inputs(variant, dtype=dtype)
    y, finals, cache = forward(variant, inputs, lengths=LENGTHS)
    grads = backward(variant, cache, np.ones((T, B, H), dtype=dtype), [None] * len(finals))
    assert y.dtype == dtype and all(f.dtype == dtype for f in finals)
    assert all(g.dtype == dtype for g in grads.values())


def test_keep_cache_false(variant):
    inputs = make_inputs(variant)
    y, finals, cache = forward(variant, inputs, lengths=LENGTHS)
    y2, finals2, no_cache = forward(variant, inputs, lengths=LENGTHS, keep_cache=False)
    assert no_cache is None
    np.testing.assert_array_equal(y2, y)
    with pytest.raises(ValueError, match="keep_cache=False"):
        backward(variant, None, np.ones((T, B, H)), [None] * len(finals))


def test_rejects_bad_arguments():
    v = VARIANTS["gru"]
    inputs = make_inputs(v)
    with pytest.raises(TypeError, match="weight_hh"):
        forward(v, dict(inputs, weight_hh=inputs["weight_hh"].astype(np.float32)))
    with pytest.raises(ValueError, match="weight_ih"):
        forward(v, dict(inputs, weight_ih=inputs["weight_ih"][:, :-1]))
    with pytest.raises(ValueError, match="h0"):
        forward(v, dict(inputs, h0=inputs["h0"][:-1]))
    for bad in ([0, 1, 1], [T + 1, 1, 1], [1, 1]):
        with pytest.raises(ValueError, match="lengths"):
            forward(v, inputs, lengths=bad)
    with pytest.raises(TypeError, match="lengths"):
        forward(v, inputs, lengths=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="nonlinearity"):
        forward(Variant("rnn", 1, {"nonlinearity": "sigmoid"}), make_inputs(VARIANTS["rnn_tanh"]))
    _, _, cache = forward(v, inputs)
    with pytest.raises(ValueError, match="dy"):
        backward(v, cache, np.ones((T, B, H + 1)), [None])
    with pytest.raises(ValueError, match="gru_forward"):
        ref.lstm_backward(cache, None)


# --------------------------------------------------------------------------
# The paper GRU against its equations (PyTorch has no such cell)
# --------------------------------------------------------------------------


def test_gru_reset_before_matches_equations():
    inputs = make_inputs(VARIANTS["gru_paper"])
    y, (h_n,), _ = forward(VARIANTS["gru_paper"], inputs)

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    W_ir, W_iz, W_in = np.split(inputs["weight_ih"], 3)
    W_hr, W_hz, W_hn = np.split(inputs["weight_hh"], 3)
    b_ir, b_iz, b_in = np.split(inputs["bias_ih"], 3)
    b_hr, b_hz, b_hn = np.split(inputs["bias_hh"], 3)
    h = inputs["h0"]
    for t in range(T):
        x = inputs["x"][t]
        r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = np.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(y[t], h, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h_n, h, rtol=1e-13, atol=1e-15)
