"""Fuzzing every public entry point with Hypothesis.

Each test draws a valid call -- shapes (edge sizes included), dtypes,
lengths, flags and values (ordinary, tiny, extreme, NaN, inf) -- and, half
of the time, one defect: a wrong type, dtype, rank or shape, an empty
dimension, a non-contiguous or misaligned view, a bad length or flag.  A
valid call must return the right result (checked against
:mod:`rnncore.reference`, an independent composition of it for stacked
layers, or torch.nn for the adapter); a defective one must raise the
ValueError or TypeError its defect calls for, naming the argument.
Anything else fails.

Profiles (``RNNCORE_FUZZ_PROFILE``): ``ci`` (default) is short and
derandomized, the same examples every run; ``long`` draws thousands of
new examples per test and keeps failures in ``.hypothesis/`` (see
``tools/fuzz.sh``).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():
    # When a test fails, Hypothesis imports libcst to suggest an @example patch, and
    # libcst raises a DeprecationWarning (mypy_extensions.TypedDict): with warnings as
    # errors every fuzz failure would become a pytest INTERNALERROR.  Import it now.
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

import rnncore
from cellcases import (ALL_VARIANTS, arg_names, backward, forward, make_args, misaligned, output_size, quiet,
                       rel_err)
from rnncore import functional as F
from rnncore import losses, optim
from rnncore import reference as R

PROFILE = os.environ.get("RNNCORE_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"RNNCORE_FUZZ_PROFILE must be 'ci' or 'long', got {PROFILE!r}")
LONG = PROFILE == "long"


def fuzz(examples):
    """Settings for a test worth ``examples`` examples in CI (50 times more when long)."""
    return settings(max_examples=examples * (50 if LONG else 1), deadline=None, derandomize=not LONG,
                    database=settings.default.database if LONG else None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


TOL = {np.float32: 1e-4, np.float64: 1e-9}
DTYPES = [np.float32, np.float64]
WRONG_DTYPES = [np.int32, np.int64, np.float16, np.complex64, np.bool_]
VALUES = ["ordinary", "tiny", "extreme", "nan", "inf"]



def strided(a):
    """The same values in a non-contiguous view."""
    return np.repeat(a, 2, axis=-1)[..., ::2]


def apply_values(kind, arrays, dtype, rng):
    """Scale or poison the float arrays in place for the value regime ``kind``."""
    present = [a for a in arrays if a is not None]
    if kind == "tiny":
        for a in present:
            a *= dtype(1e-30)
    elif kind == "extreme":
        present[0] *= dtype(1e15 if dtype == np.float32 else 1e150)  # x; weights stay ordinary
    elif kind in ("nan", "inf"):
        target = present[rng.integers(len(present))]
        value = np.nan if kind == "nan" else rng.choice([np.inf, -np.inf])
        target.flat[rng.integers(target.size)] = value


def check_like_reference(kind, fast, ref, dtype, pad=None):
    """The check a valid result passes in value regime ``kind`` (see the module docstring)."""
    for a, b in zip(fast, ref):
        if a is None:
            assert b is None
            continue
        assert a.dtype == dtype and a.shape == b.shape
        if kind in ("ordinary", "tiny"):
            assert np.isfinite(a).all() and rel_err(a, b) <= TOL[dtype]
        elif kind == "extreme":
            assert np.isfinite(a).all()  # saturates; finite in, finite out
        elif kind == "nan":
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            finite = np.isfinite(b)
            assert rel_err(a[finite], b[finite]) <= TOL[dtype]


# --------------------------------------------------------------------------
# Functional kernels
# --------------------------------------------------------------------------

# defect -> (expected exception, pattern the message must contain; {name} is the argument)
ARRAY_DEFECTS = {
    "dtype": (TypeError, "{name} (has|must have) dtype"),
    "rank": (ValueError, "{name} must have shape"),
    "shape": (ValueError, "must have shape"),
    "empty": (ValueError, "(must have shape|every dimension must be at least 1)"),
    "noncontiguous": (ValueError, "{name} must be C-contiguous"),
    "misaligned": (ValueError, "{name} is not aligned"),
    "list": (TypeError, "{name} must be a numpy.ndarray"),
}
CALL_DEFECTS = {
    "lengths_range": (ValueError, r"lengths\[\d+\] = -?\d+ is out of range"),
    "lengths_shape": (ValueError, "lengths must have shape"),
    "lengths_dtype": (TypeError, "lengths must hold integers"),
    "flag": (TypeError, "(reverse|keep_cache) must be a bool"),
    "one_bias": (ValueError, "bias_ih and bias_hh must both be given or both be None"),
}


def break_array(defect, a, rng, other_floats=True):
    """``a`` with ``defect``; ``other_floats=False`` keeps a dtype defect off float32/float64
    (x sets the call's dtype: another float there is a mismatch blamed on the others)."""
    if defect == "dtype":
        wrong = [d for d in WRONG_DTYPES + (DTYPES if other_floats else []) if d != a.dtype]
        return np.zeros(a.shape, wrong[rng.integers(len(wrong))])
    if defect == "rank":
        return a[..., None] if rng.integers(2) else a.reshape(-1)[:1].reshape(())
    if defect == "shape":
        return np.zeros(a.shape[:-1] + (a.shape[-1] + 1,), a.dtype)
    if defect == "empty":
        axis = rng.integers(a.ndim)
        return np.zeros(a.shape[:axis] + (0,) + a.shape[axis + 1:], a.dtype)
    if defect == "noncontiguous":
        return strided(a)
    if defect == "misaligned":
        return misaligned(a)
    return a.tolist()


@st.composite
def functional_calls(draw):
    v = draw(st.sampled_from(ALL_VARIANTS))
    dtype = draw(st.sampled_from(DTYPES))
    T, B, I = (draw(st.integers(1, n)) for n in (6, 5, 6))
    H = draw(st.one_of(st.integers(1, 20), st.integers(40, 64)))  # the latter uses the thread pool
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    args = make_args(v, T, B, I, H, dtype, rng, bias=draw(st.booleans()), states=draw(st.booleans()))
    kind = draw(st.sampled_from(VALUES))
    apply_values(kind, args, dtype, rng)
    lengths = None
    if kind != "nan" and draw(st.booleans()):  # NaN weights leak through padding: see test_reliability
        lengths = rng.integers(1, T + 1, size=B)
    options = dict(lengths=lengths, reverse=draw(st.booleans()), keep_cache=True)
    defect = draw(st.one_of(st.none(), st.sampled_from(sorted(ARRAY_DEFECTS) + sorted(CALL_DEFECTS))))
    expected = None
    if defect in ARRAY_DEFECTS:
        names = [n for n, a in zip(arg_names(v), args) if a is not None]
        name = draw(st.sampled_from(names))
        k = arg_names(v).index(name)
        broken = break_array(defect, args[k], rng, other_floats=name != "x")
        if defect == "noncontiguous" and broken.flags.c_contiguous:
            defect, broken = None, args[k]  # a single-element last axis stays contiguous
        args[k] = broken
        if defect:
            error, pattern = ARRAY_DEFECTS[defect]
            expected = (error, pattern.format(name=name))
    elif defect:
        if defect == "lengths_range":
            options["lengths"] = np.full(B, T)
            options["lengths"][rng.integers(B)] = rng.choice([0, -1, T + 1])
        elif defect == "lengths_shape":
            options["lengths"] = np.ones(B + 1, np.int64)
        elif defect == "lengths_dtype":
            options["lengths"] = np.ones(B, np.float64)
        elif defect == "flag":
            options[draw(st.sampled_from(["reverse", "keep_cache"]))] = draw(st.sampled_from([1, "yes", None]))
        elif args[arg_names(v).index("bias_ih")] is not None:
            args[arg_names(v).index("bias_hh")] = None
        else:
            defect = None
        if defect:
            expected = CALL_DEFECTS[defect]
    return v, dtype, kind, args, options, expected


@fuzz(80)
@given(functional_calls(), st.data())
def test_functional_kernels(call, data):
    v, dtype, kind, args, options, expected = call
    if expected:
        error, pattern = expected
        with pytest.raises(error, match=f"{v.cell}_forward: .*{pattern}"):
            forward(F, v, args, **options)
        return
    (y, *states), cache = forward(F, v, args, **options)
    (ry, *rstates), rcache = quiet(forward, R, v, args, **options)
    if v.options.get("nonlinearity") == "relu" and kind == "nan":
        kind = "inf"  # the ReLU kernel drops NaN (test_reliability); only invariants here
    check_like_reference(kind, [y, *states], [ry, *rstates], dtype)
    if options["lengths"] is not None:
        assert (y[np.arange(y.shape[0])[:, None] >= options["lengths"]] == 0).all()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dy = rng.standard_normal(y.shape).astype(dtype)
    d_states = [rng.standard_normal(s.shape).astype(dtype) if data.draw(st.booleans()) else None for s in states]
    defect = data.draw(st.sampled_from([None, None, "dy", "dh_n", "cache"]))
    if defect == "dy":
        with pytest.raises((TypeError, ValueError), match=f"{v.cell}_backward: dy"):
            backward(F, v, cache, break_array(data.draw(st.sampled_from(["dtype", "rank", "shape"])), dy, rng),
                     d_states)
    elif defect == "dh_n":
        with pytest.raises((TypeError, ValueError), match=f"{v.cell}_backward: dh_n"):
            backward(F, v, cache, dy, [break_array("shape", states[0], rng)] + d_states[1:])
    elif defect == "cache":
        bad, error = data.draw(st.sampled_from([(None, ValueError), ("cache", TypeError), (0, TypeError)]))
        with pytest.raises(error, match=f"{v.cell}_backward: cache"):
            backward(F, v, bad, dy, d_states)
    else:
        grads = backward(F, v, cache, dy, d_states)
        ref = quiet(backward, R, v, rcache, dy, d_states)
        check_like_reference(kind, grads, ref, dtype)


# --------------------------------------------------------------------------
# Layers, against an independent composition of the reference
# --------------------------------------------------------------------------


def layer_options(layer):
    if isinstance(layer, rnncore.GRU):
        return {"reset_after": layer.reset_after}
    if isinstance(layer, rnncore.RNN):
        return {"nonlinearity": layer.nonlinearity}
    return {}


def reference_layer(layer, x, states, lengths, dy):
    """y, final states and (given dy) dx of ``layer`` on time-major ``x``, composed from
    rnncore.reference one layer and direction at a time."""
    cell = type(layer).__name__.lower()
    D = 2 if layer.bidirectional else 1
    p, opts = layer.params, layer_options(layer)
    fwd, bwd = getattr(R, f"{cell}_forward"), getattr(R, f"{cell}_backward")
    inputs, caches, finals = x, [], []
    for k in range(layer.num_layers):
        ys = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            s0 = [None if s is None else s[k * D + d] for s in states]
            extra = {"weight_hr": p["weight_hr" + sfx]} if "weight_hr" + sfx in p else {}
            y, *s_n, cache = quiet(fwd, inputs, *s0, p["weight_ih" + sfx], p["weight_hh" + sfx],
                                   p.get("bias_ih" + sfx), p.get("bias_hh" + sfx), lengths=lengths,
                                   reverse=bool(d), **opts, **extra)
            ys.append(y)
            finals.append(s_n)
            caches.append(cache)
        inputs = np.concatenate(ys, axis=2)
    finals = [np.stack(f) for f in zip(*finals)]
    dx = None
    if dy is not None:
        width = inputs.shape[2] // D
        for k in reversed(range(layer.num_layers)):
            parts = [quiet(bwd, caches[k * D + d], np.ascontiguousarray(dy[..., d * width:(d + 1) * width])).dx
                     for d in range(D)]
            dy = sum(parts[1:], parts[0])
        dx = dy
    return inputs, finals, dx


LAYER_CLASSES = [rnncore.LSTM, rnncore.GRU, rnncore.RNN]


@st.composite
def layer_configs(draw):
    cls = draw(st.sampled_from(LAYER_CLASSES))
    H = draw(st.integers(1, 12))
    kw = dict(input_size=draw(st.integers(1, 5)), hidden_size=H, num_layers=draw(st.integers(1, 3)),
              bias=draw(st.booleans()), batch_first=draw(st.booleans()), bidirectional=draw(st.booleans()),
              dtype=draw(st.sampled_from(["float32", "float64"])), seed=draw(st.integers(0, 2**63)))
    if cls is rnncore.LSTM and H > 1:
        kw["proj_size"] = draw(st.integers(0, H - 1))
    if cls is rnncore.GRU:
        kw["reset_after"] = draw(st.booleans())
    if cls is rnncore.RNN:
        kw["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    return cls, kw


CONFIG_DEFECTS = [
    ("hidden_size", 0, ValueError), ("hidden_size", -3, ValueError), ("hidden_size", "4", TypeError),
    ("hidden_size", 4.0, TypeError), ("hidden_size", True, TypeError), ("input_size", None, TypeError),
    ("num_layers", 0, ValueError), ("num_layers", 2**64, ValueError), ("dropout", 1.0, ValueError),
    ("dropout", -0.5, ValueError), ("dropout", float("nan"), ValueError), ("dropout", "0.1", TypeError),
    ("bias", 1, TypeError), ("batch_first", "yes", TypeError), ("bidirectional", None, TypeError),
    ("dtype", "float16", ValueError), ("dtype", "no such dtype", TypeError), ("seed", -1, ValueError),
    ("seed", 1.5, TypeError),
]


@fuzz(40)
@given(layer_configs(), st.data())
def test_layer_constructors(config, data):
    cls, kw = config
    name, value, error = data.draw(st.sampled_from(CONFIG_DEFECTS))
    with pytest.raises(error, match=f"{cls.__name__}: {name}"):
        cls(**{**kw, name: value})


@fuzz(60)
@given(layer_configs(), st.data())
def test_layers(config, data):
    cls, kw = config
    layer = cls(**kw)
    dtype = layer.dtype.type
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    T, B = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    batched = data.draw(st.booleans())
    x = rng.standard_normal((T, B, layer.input_size)).astype(dtype)  # time-major
    D, LD = 2 if layer.bidirectional else 1, layer.num_layers * (2 if layer.bidirectional else 1)
    sizes = (layer._stack.out_size, layer.hidden_size)[: 2 if cls is rnncore.LSTM else 1]
    states = [rng.standard_normal((LD, B, n)).astype(dtype) if data.draw(st.booleans()) else None for n in sizes]
    lengths = rng.integers(1, T + 1, size=B) if batched and data.draw(st.booleans()) else None
    if not batched:
        x, states = x[:, :1], [None if s is None else s[:, :1] for s in states]

    def caller(a):  # time-major [T, B, F] -> the layer's layout
        if not batched:
            return a[:, 0]
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if layer.batch_first else a

    h0 = tuple(None if s is None else caller_state(s, batched) for s in states)
    h0 = h0 if cls is rnncore.LSTM else h0[0]
    defect = data.draw(st.sampled_from([None, None, "x_dtype", "x_rank", "x_width", "x_empty", "x_list", "h0",
                                        "lengths", "keep_cache"]))
    inputs = dict(x=caller(x), h0=h0, lengths=lengths, keep_cache=True)
    if defect:
        error, pattern = break_layer_input(defect, inputs, layer, rng)
        with pytest.raises(error, match=pattern):
            layer(**inputs)
        return
    y, h_n = layer(**inputs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, _ = layer.backward(dy)
    dy_tm = dy[:, None] if not batched else (dy.transpose(1, 0, 2) if layer.batch_first else dy)
    ry, rfinals, rdx = reference_layer(layer, x, states, lengths, np.ascontiguousarray(dy_tm))
    assert y.shape == caller(ry).shape and y.dtype == dtype
    assert rel_err(y, caller(ry)) <= TOL[dtype] and rel_err(dx, caller(rdx)) <= TOL[dtype]
    finals = h_n if isinstance(h_n, tuple) else (h_n,)
    for got, want in zip(finals, rfinals):
        assert rel_err(got, want if batched else want[:, 0]) <= TOL[dtype]


def caller_state(s, batched):
    return s if batched else s[:, 0]


def break_layer_input(defect, inputs, layer, rng):
    owner = type(layer).__name__
    x = inputs["x"]
    if defect == "x_dtype":
        inputs["x"] = x.astype(np.float64 if x.dtype == np.float32 else np.float32)
        return TypeError, f"{owner}: x must have dtype"
    if defect == "x_rank":
        inputs["x"] = x.reshape(x.shape + (1, 1))
        return ValueError, f"{owner}: x must have shape"
    if defect == "x_width":
        inputs["x"] = np.zeros(x.shape[:-1] + (x.shape[-1] + 1,), x.dtype)
        return ValueError, f"{owner}: x must have shape"
    if defect == "x_empty":
        inputs["x"] = np.zeros((0,) + x.shape[1:], x.dtype)
        return ValueError, f"{owner}: x must have shape"
    if defect == "x_list":
        inputs["x"] = x.tolist()
        return TypeError, f"{owner}: x must be a numpy.ndarray"
    if defect == "h0":
        wrong = np.zeros((layer.num_layers * 2 + 1, 1, 1), layer.dtype)
        inputs["h0"] = (wrong, None) if isinstance(layer, rnncore.LSTM) else wrong
        return ValueError, f"{owner}: h0 must have shape"
    if defect == "lengths":
        inputs["lengths"] = [0] * (x.shape[0] if x.ndim == 2 else x.shape[0 if layer.batch_first else 1])
        return ValueError, "lengths"
    inputs["keep_cache"] = "yes"
    return TypeError, f"{owner}: keep_cache must be a bool"


# --------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------

CELL_CLASSES = {rnncore.LSTMCell: "lstm", rnncore.GRUCell: "gru", rnncore.RNNCell: "rnn"}


@fuzz(50)
@given(st.sampled_from(list(CELL_CLASSES)), st.data())
def test_cells(cls, data):
    I, H = data.draw(st.integers(1, 5)), data.draw(st.integers(2, 10))
    kw = dict(bias=data.draw(st.booleans()), dtype=data.draw(st.sampled_from(["float32", "float64"])),
              seed=data.draw(st.integers(0, 100)))
    if cls is rnncore.LSTMCell:
        kw["proj_size"] = data.draw(st.integers(0, H - 1))
    cell = cls(I, H, **kw)
    dtype = cell.dtype.type
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    B = data.draw(st.integers(1, 4))
    P = kw.get("proj_size") or H
    x = rng.standard_normal((B, I)).astype(dtype)
    states = [rng.standard_normal((B, n)).astype(dtype) for n in ((P, H) if cls is rnncore.LSTMCell else (H,))]
    hx = tuple(states) if cls is rnncore.LSTMCell else states[0]
    defect = data.draw(st.sampled_from([None, None, "x_dtype", "x_width", "hx_shape", "hx_type"]))
    if defect == "x_dtype":
        with pytest.raises(TypeError, match=f"{cls.__name__}: x must have dtype"):
            cell(x.astype(np.float16), hx)
        return
    if defect == "x_width":
        with pytest.raises(ValueError, match=f"{cls.__name__}: x must have shape"):
            cell(np.zeros((B, I + 1), dtype), hx)
        return
    if defect == "hx_shape":
        bad = np.zeros((B + 1, P), dtype)
        with pytest.raises(ValueError, match=f"{cls.__name__}: h must have shape"):
            cell(x, (bad, states[1]) if cls is rnncore.LSTMCell else bad)
        return
    if defect == "hx_type":
        with pytest.raises(TypeError, match=cls.__name__):
            cell(x, [states[0]] if cls is rnncore.LSTMCell else states[0].tolist())
        return
    out = cell(x, hx)
    p = cell.params
    extra = {"weight_hr": p["weight_hr"]} if "weight_hr" in p else {}
    opts = {k: kw_value for k, kw_value in cell.config.items() if k in ("reset_after", "nonlinearity")}
    _, *ref, _ = quiet(getattr(R, f"{CELL_CLASSES[cls]}_forward"), x[None], *states, p["weight_ih"],
                       p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), **opts, **extra)
    for got, want in zip(out if isinstance(out, tuple) else (out,), ref):
        assert got.dtype == dtype and rel_err(got, want) <= TOL[dtype]


# --------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------


@fuzz(60)
@given(st.data())
def test_losses(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    shape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    scale = data.draw(st.sampled_from([1.0, 1e-20, 1e15]))
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    reduction = data.draw(st.sampled_from(["mean", "sum"]))
    mask = rng.random(shape[:1]) < 0.7 if data.draw(st.booleans()) else None
    which = data.draw(st.sampled_from(["mse", "bce", "ce"]))
    defect = data.draw(st.sampled_from([None, None, "dtype", "shape", "reduction", "mask"]))
    if which == "ce":
        assume(shape[-1] >= 1)
        args = (x, rng.integers(0, shape[-1], size=shape[:-1]))
        fn = losses.cross_entropy
        mask = mask if mask is None or len(shape) > 1 else None
    else:
        target = rng.uniform(0, 1, shape).astype(dtype)
        args = (x, target)
        fn = losses.mse_loss if which == "mse" else losses.binary_cross_entropy_with_logits
    kwargs = {"reduction": reduction, "mask": mask}
    if defect == "dtype":
        args = (np.zeros(shape, np.int32),) + args[1:]
        with pytest.raises(TypeError, match="must have dtype|must be a numpy"):
            fn(*args, **kwargs)
        return
    if defect == "shape":
        args = (args[0], np.zeros(shape + (2,), args[1].dtype))
        with pytest.raises(ValueError, match="target must have shape"):
            fn(*args, **kwargs)
        return
    if defect == "reduction":
        with pytest.raises(ValueError, match="reduction must be one of"):
            fn(*args, **{**kwargs, "reduction": "avg"})
        return
    if defect == "mask":
        with pytest.raises(TypeError, match="mask must be a numpy.ndarray of bool"):
            fn(*args, **{**kwargs, "mask": np.ones(shape[:1], np.int8)})
        return
    with np.errstate(over="ignore"):  # mse of 1e15 squares to 1e30 in float32: finite, near the top
        loss, grad = fn(*args, **kwargs)
    assert isinstance(loss, float) and grad.shape == x.shape and grad.dtype == dtype
    assert np.isfinite(loss) and np.isfinite(grad).all()
    if which == "mse" and mask is None:
        diff = x.astype(np.float64) - args[1]
        want = (diff**2).sum() / (diff.size if reduction == "mean" and diff.size else 1)
        assert abs(loss - want) <= 1e-4 * max(abs(want), 1e-30)


# --------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------

OPTIMIZERS = {
    "SGD": (optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "RMSprop": (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    "Adam": (optim.Adam, dict(lr=0.01)),
    "AdamW": (optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
}


@fuzz(60)
@given(st.sampled_from(sorted(OPTIMIZERS)), st.data())
def test_optimizers(name, data):
    cls, kw = OPTIMIZERS[name]
    dtype = data.draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shapes = data.draw(st.lists(st.lists(st.integers(0, 3), max_size=2).map(tuple), min_size=1, max_size=3))
    params = {f"p{k}": rng.standard_normal(s).astype(dtype) for k, s in enumerate(shapes)}
    defect = data.draw(st.sampled_from([None, None, "lr", "grads_shape", "grads_dtype", "grads_missing",
                                        "nonfinite"]))
    if defect == "lr":
        lr, error = data.draw(st.sampled_from([(-1.0, ValueError), (float("nan"), ValueError), ("0.1", TypeError)]))
        with pytest.raises(error, match="lr"):
            cls(params, **{**kw, "lr": lr})
        return
    opt = cls(params, **kw)
    grads = {k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()}
    before = {k: p.copy() for k, p in params.items()}
    if defect in ("grads_shape", "grads_dtype", "grads_missing"):
        key = data.draw(st.sampled_from(sorted(grads)))
        if defect == "grads_shape":
            grads[key] = np.zeros(grads[key].shape + (1,), dtype)
        elif defect == "grads_dtype":
            grads[key] = grads[key].astype(np.float16)
        else:
            del grads[key]
        with pytest.raises(ValueError, match=f"(?s)grads does not match:.*{key}"):
            opt.step(grads)
    elif defect == "nonfinite" and any(g.size for g in grads.values()):
        key = data.draw(st.sampled_from(sorted(k for k, g in grads.items() if g.size)))
        grads[key].flat[0] = np.nan
        with pytest.raises(FloatingPointError, match=f"non-finite gradients: {key}"):
            opt.step(grads)
    else:
        opt.step(grads)
        assert opt.steps == 1
        for k, p in params.items():
            assert p.dtype == dtype and np.isfinite(p).all()
        return
    for k, p in params.items():
        np.testing.assert_array_equal(p, before[k])


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


@fuzz(60)
@given(st.sampled_from(["lstm", "gru", "rnn_cell"]), st.data())
def test_damaged_files_are_refused_or_load_unchanged(tmp_path_factory, kind, data):
    """Any truncation or byte damage: a ValueError, or (damage to bytes zip ignores)
    a module identical to the one saved."""
    module = {"lstm": lambda: rnncore.LSTM(2, 3, num_layers=2, proj_size=2, seed=0),
              "gru": lambda: rnncore.GRU(3, 2, bidirectional=True, dtype="float64", seed=1),
              "rnn_cell": lambda: rnncore.RNNCell(2, 4, nonlinearity="relu", seed=2)}[kind]()
    path = tmp_path_factory.mktemp("files") / "m.npz"
    module.save(path)
    data_bytes = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "append"]))
    if how == "truncate":
        data_bytes = data_bytes[: data.draw(st.integers(0, len(data_bytes) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            data_bytes[data.draw(st.integers(0, len(data_bytes) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "overwrite":
        start = data.draw(st.integers(0, len(data_bytes) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=64))
        data_bytes[start:start + len(chunk)] = chunk
    else:
        data_bytes += data.draw(st.binary(min_size=1, max_size=64))
    path.write_bytes(bytes(data_bytes))
    try:
        loaded = rnncore.load(path)
    except ValueError:
        return
    assert type(loaded) is type(module) and loaded.config == module.config
    for name, p in module.params.items():
        np.testing.assert_array_equal(loaded.params[name], p)


# --------------------------------------------------------------------------
# The torch adapter, against torch.nn
# --------------------------------------------------------------------------


@fuzz(30)
@given(layer_configs(), st.data())
def test_torch_adapter(torch, config, data):
    import rnncore.torch as rt

    cls, kw = config
    kw = {k: v for k, v in kw.items() if k not in ("seed", "reset_after") and not (k == "dtype")}
    if kw.get("proj_size") and cls is not rnncore.LSTM:
        kw.pop("proj_size")
    dtype = torch.float64
    ours = {rnncore.LSTM: rt.LSTM, rnncore.GRU: rt.GRU, rnncore.RNN: rt.RNN}[cls](**kw, dtype=dtype)
    theirs = getattr(torch.nn, cls.__name__)(**kw, dtype=dtype)
    theirs.load_state_dict(ours.state_dict())
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31)))
    T, B = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    shape = (B, T, kw["input_size"]) if kw["batch_first"] else (T, B, kw["input_size"])
    x = torch.randn(*shape, dtype=dtype, generator=gen)
    defect = data.draw(st.sampled_from([None, None, "dtype", "type", "rank", "lengths"]))
    if defect == "dtype":
        with pytest.raises(TypeError, match="input must have dtype"):
            ours(x.float())
        return
    if defect == "type":
        with pytest.raises(TypeError, match="input must be a torch.Tensor"):
            ours(x.numpy())
        return
    if defect == "rank":
        with pytest.raises(ValueError, match="input must be 3-d"):
            ours(x[..., None])
        return
    if defect == "lengths":
        with pytest.raises(ValueError, match="lengths"):
            ours(x, lengths=torch.full((B,), T + 1))
        return
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, _ = ours(x1)
    y2, _ = theirs(x2)
    w = torch.randn(y1.shape, dtype=dtype, generator=gen)
    (y1 * w).sum().backward()
    (y2 * w).sum().backward()
    assert torch.allclose(y1, y2, rtol=1e-9, atol=1e-10)
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-9, atol=1e-10)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-10), name


# --------------------------------------------------------------------------
# The bad-calls script stays clean
# --------------------------------------------------------------------------


def _bad_calls():
    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "bad_calls.py"
    spec = importlib.util.spec_from_file_location("bad_calls", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@fuzz(2)
@given(st.integers(0, 2**32 - 1))
def test_bad_calls_script(seed):
    """300 random bad calls at the whole API (tools/bad_calls.py): only allowed outcomes
    (a failure prints the calls to stderr)."""
    assert _bad_calls().main(["--calls", "300", "--seed", str(seed)]) == 0
