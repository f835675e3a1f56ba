"""One description of every cell variant, so each test file can run the
same functions of `rnncore.functional` and `rnncore.reference` on the same
random arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Variant:
    name: str
    cell: str  # "lstm" | "gru" | "rnn"
    gates: int
    options: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


VARIANTS = [
    Variant("lstm", "lstm", 4),
    Variant("gru", "gru", 3, {"reset_after": True}),
    Variant("gru_reset_before", "gru", 3, {"reset_after": False}),
    Variant("rnn_tanh", "rnn", 1, {"nonlinearity": "tanh"}),
    Variant("rnn_relu", "rnn", 1, {"nonlinearity": "relu"}),
]


def make_args(v: Variant, T, B, I, H, dtype, rng, bias=True, states=True):
    """Random (positional args) for v's forward: x, state(s), weights, biases."""
    G = v.gates
    scale = 1.0 / np.sqrt(H)

    def u(*shape):
        return rng.uniform(-scale, scale, shape).astype(dtype)

    x = rng.standard_normal((T, B, I)).astype(dtype)
    state = [rng.standard_normal((B, H)).astype(dtype) if states else None
             for _ in range(2 if v.cell == "lstm" else 1)]
    weights = [u(G * H, I), u(G * H, H)]
    biases = [u(G * H), u(G * H)] if bias else [None, None]
    return [x, *state, *weights, *biases]


def forward(module, v: Variant, args, **kw):
    """Run v's forward from `module`; returns (outputs tuple, cache)."""
    fn = getattr(module, f"{v.cell}_forward")
    out = fn(*args, **v.options, **kw)
    return out[:-1], out[-1]


def backward(module, v: Variant, cache, dy, d_states):
    fn = getattr(module, f"{v.cell}_backward")
    return fn(cache, dy, *d_states)


def random_lengths(T, B, rng):
    """Unsorted lengths in [1, T] that contain 1 and T when B allows."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T
    if B > 1:
        lengths[-1] = 1
    return rng.permutation(lengths).astype(np.int64)


def rel_err(a, b):
    """max |a - b| / max |b| (absolute when b is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(initial=0.0), 1e-30)
    return np.abs(a - b).max(initial=0.0) / scale


TOL = {np.float32: 1e-5, np.float64: 1e-10}
