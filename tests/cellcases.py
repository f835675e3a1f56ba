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
    projected: bool = False  # an LSTM with weight_hr (PyTorch's proj_size)

    def __str__(self) -> str:
        return self.name


VARIANTS = [
    Variant("lstm", "lstm", 4),
    Variant("gru", "gru", 3, {"reset_after": True}),
    Variant("gru_reset_before", "gru", 3, {"reset_after": False}),
    Variant("rnn_tanh", "rnn", 1, {"nonlinearity": "tanh"}),
    Variant("rnn_relu", "rnn", 1, {"nonlinearity": "relu"}),
]

# Kept out of VARIANTS, whose argument lists end at the biases; files that
# cover the projection use ALL_VARIANTS.
LSTM_PROJ = Variant("lstm_proj", "lstm", 4, projected=True)
ALL_VARIANTS = [*VARIANTS, LSTM_PROJ]


def output_size(v: Variant, H):
    """P, the width of h and y: H // 2 (at least 1) with a projection, else H."""
    return max(1, H // 2) if v.projected else H


def state_names(v: Variant):
    return ["h0", "c0"] if v.cell == "lstm" else ["h0"]


def arg_names(v: Variant):
    """Names of the array arguments of v's forward, in make_args' order;
    they are also the gradients' names without the leading "d"."""
    names = ["x", *state_names(v), "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    return names + (["weight_hr"] if v.projected else [])


def replace_args(v: Variant, args, **changes):
    """A copy of the argument list `args` with the named ones replaced."""
    names = arg_names(v)
    assert set(changes) <= set(names), f"{v} has no argument {set(changes) - set(names)}"
    return [changes.get(name, a) for name, a in zip(names, args)]


def make_args(v: Variant, T, B, I, H, dtype, rng, bias=True, states=True):
    """Random arguments for v's forward, named by arg_names(v): x, state(s),
    weights, biases (and weight_hr for a projected LSTM)."""
    G, P = v.gates, output_size(v, H)
    scale = 1.0 / np.sqrt(H)

    def u(*shape):
        return rng.uniform(-scale, scale, shape).astype(dtype)

    x = rng.standard_normal((T, B, I)).astype(dtype)
    width = {"h0": P, "c0": H}
    state = [rng.standard_normal((B, width[name])).astype(dtype) if states else None
             for name in state_names(v)]
    weights = [u(G * H, I), u(G * H, P)]
    biases = [u(G * H), u(G * H)] if bias else [None, None]
    projection = [u(P, H)] if v.projected else []
    return [x, *state, *weights, *biases, *projection]


def forward(module, v: Variant, args, **kw):
    """Run v's forward from `module` (arguments passed by name); returns
    (outputs tuple, cache)."""
    names = arg_names(v)
    assert len(args) == len(names), f"{v}: {len(args)} arguments for {names}"
    fn = getattr(module, f"{v.cell}_forward")
    out = fn(**dict(zip(names, args)), **v.options, **kw)
    return out[:-1], out[-1]


def backward(module, v: Variant, cache, dy, d_states):
    fn = getattr(module, f"{v.cell}_backward")
    return fn(cache, dy, *d_states)


def output_grads(outs, rng):
    """Random gradients shaped like forward's outputs: (dy, [dh_n, (dc_n)])."""
    dy, *d_states = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs]
    return dy, d_states


def random_lengths(T, B, rng):
    """Unsorted lengths in [1, T] that contain 1 and T when B allows."""
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T
    if B > 1:
        lengths[-1] = 1
    return rng.permutation(lengths).astype(np.int64)


def padded(lengths, T):
    """Boolean mask [T, B], True at the padded positions t >= lengths[b]."""
    return np.arange(T)[:, None] >= np.asarray(lengths)[None, :]


def rel_err(a, b):
    """max |a - b| / max |b| (absolute when b is all zeros)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(initial=0.0), 1e-30)
    return np.abs(a - b).max(initial=0.0) / scale


TOL = {np.float32: 1e-5, np.float64: 1e-10}


def quiet(fn, *args, **kwargs):
    """Call ``fn`` (typically the plain-NumPy reference) without NumPy's
    warnings about NaN and overflow."""
    with np.errstate(all="ignore"):
        return fn(*args, **kwargs)


def misaligned(a):
    """``a``'s values, C-contiguous, at an address one byte off the dtype's alignment."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert out.flags.c_contiguous and not out.flags.aligned
    return out
