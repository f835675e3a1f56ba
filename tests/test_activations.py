"""The float activations inside the gate kernels, under every ISA.

tanh is read through a tanh RNN step whose pre-activation is x (given as
the bias, zero weights: the products stay free of inf and NaN, which a
product would spread to every unit), the sigmoid through the output gate of
an LSTM step whose other gates saturate (i = g = 1, so
h = sigmoid(x) * tanh(1)).  The sweep crosses the branch
point of tanh (|x| = 0.625), the clamps of exp (-87, 88), tiny and huge
values, infinities and NaN, and has a length that leaves a partial vector.
Bound (gates_impl.h): 1e-6 absolute; tanh keeps 1e-6 relative below 0.625.
"""
from __future__ import annotations

import numpy as np
import pytest

import rnncore
from rnncore import _core
from rnncore import functional as F


@pytest.fixture(params=_core._available_isas())
def isa(request):
    before = rnncore.cpu_info()["isa"]
    _core._set_isa(request.param)
    yield request.param
    _core._set_isa(before)


def sweep() -> np.ndarray:
    dense = np.linspace(-12.0, 12.0, 601)
    edges = [0.625, 0.6249999, 0.6250001, 87.0, 88.0, 89.0, 100.0, 1e4, 1e30]
    tiny = [1e-3, 1e-7, 1e-20, 1e-38, 1e-44]
    x = np.concatenate([dense, edges, tiny, np.geomspace(1e-6, 50.0, 200)])
    x = np.concatenate([x, -x, [0.0, np.inf, -np.inf, np.nan]])
    return x.astype(np.float32)


def via_rnn_tanh(x: np.ndarray) -> np.ndarray:
    n = x.size
    h0 = np.zeros((1, n), np.float32)
    y, _, _ = F.rnn_forward(
        np.zeros((1, 1, 1), np.float32), h0, np.zeros((n, 1), np.float32),
        np.zeros((n, n), np.float32), x, np.zeros(n, np.float32), keep_cache=False,
    )
    return y.reshape(n)


def via_lstm_sigmoid(x: np.ndarray) -> np.ndarray:
    n = x.size
    bias = np.zeros(4 * n, np.float32)
    bias[:n] = 50.0  # i = 1
    bias[2 * n:3 * n] = 20.0  # g = tanh(20) = 1
    bias[3 * n:] = x  # the output gate's pre-activation
    zeros = np.zeros((1, n), np.float32)
    y, _, _, _ = F.lstm_forward(
        np.zeros((1, 1, 1), np.float32), zeros, zeros,
        np.zeros((4 * n, 1), np.float32), np.zeros((4 * n, n), np.float32),
        bias, np.zeros(4 * n, np.float32), keep_cache=False,
    )
    return y.reshape(n).astype(np.float64) / np.tanh(np.float64(1.0))


def check(got: np.ndarray, x: np.ndarray, want: np.ndarray, what: str) -> None:
    finite = ~np.isnan(x)
    assert np.all(np.isnan(got[~finite])), f"{what}: NaN in, not NaN out"
    err = np.abs(got[finite].astype(np.float64) - want[finite])
    worst = np.argmax(err)
    assert err[worst] <= 1e-6, (
        f"{what}: error {err[worst]:.3g} at x = {x[finite][worst]!r}"
    )


def test_tanh(isa):
    x = sweep()
    got = via_rnn_tanh(x)
    want = np.tanh(x.astype(np.float64))
    check(got, x, want, f"tanh [{isa}]")
    small = (np.abs(x) < 0.625) & (np.abs(x) > 1e-30)
    rel = np.abs(got[small] - want[small]) / np.abs(want[small])
    assert rel.max() <= 1e-6, f"tanh [{isa}]: relative error {rel.max():.3g} near 0"
    assert np.all(np.abs(got[np.isfinite(x)]) <= 1.0)
    assert got[x == np.inf][0] == 1.0 and got[x == -np.inf][0] == -1.0


def test_sigmoid(isa):
    x = sweep()
    got = via_lstm_sigmoid(x)
    want = 0.5 * (1.0 + np.tanh(x.astype(np.float64) / 2.0))
    check(got, x, want, f"sigmoid [{isa}]")
    assert abs(got[x == np.inf][0] - 1.0) <= 1e-6 and got[x == -np.inf][0] <= 1e-6


def test_isas_agree_within_a_few_ulp():
    x = sweep()
    before = rnncore.cpu_info()["isa"]
    results = {}
    try:
        for name in _core._available_isas():
            _core._set_isa(name)
            results[name] = (via_rnn_tanh(x), via_lstm_sigmoid(x))
    finally:
        _core._set_isa(before)
    ok = ~np.isnan(x)
    base = results["reference"]
    for name, (t, s) in results.items():
        assert np.max(np.abs(t[ok] - base[0][ok])) <= 5e-7, name
        assert np.max(np.abs(s[ok] - base[1][ok])) <= 5e-7, name
