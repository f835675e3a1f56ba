"""Plain NumPy reference implementation of the recurrent cells.

This module is the test oracle for every fast path in rnncore. It is
written to be read, not to be fast: one step function per cell with its
equations in the docstring, one loop over time shared by all cells, and
backpropagation through time (BPTT) written out step by step from the
activations stored by the forward pass. It depends on NumPy only, so it
works before (and without) the compiled extension.

Conventions (the same as :mod:`rnncore.functional` and PyTorch):

- Time-major arrays: ``x`` [T,B,I], ``y`` [T,B,H], states ``h``, ``c`` [B,H].
- Weights use PyTorch's shapes and gate orders: ``weight_ih`` [G*H,I],
  ``weight_hh`` [G*H,H], ``bias_ih`` and ``bias_hh`` [G*H], with G = 4 for
  the LSTM (gates i, f, g, o), 3 for the GRU (r, z, n) and 1 for the dense
  RNN cell. The biases come both or neither, as in a PyTorch layer; both
  ``None`` means no bias (it acts as zero and has no gradient).
- An LSTM may project its hidden state (PyTorch's ``proj_size``): with
  ``weight_hr`` [P,H], ``h = weight_hr (o * tanh(c))``, so ``h``, ``y`` and
  the columns of ``weight_hh`` [4H,P] are P wide while ``c`` stays H wide.
- Everything is computed in the dtype of the inputs (float32 or float64).
- ``lengths`` [B]: sequence b has ``lengths[b]`` valid steps, 1 <= len <= T.
  Outputs at t >= len_b are exactly 0, the final state of sequence b is its
  state after its own last step, and with ``reverse=True`` sequence b runs
  from t = len_b - 1 down to t = 0. Padded inputs are never read, the
  output gradient at padded positions is ignored, and the input gradient
  at padded positions is 0.

Examples
--------
>>> import numpy as np
>>> from rnncore import reference as ref
>>> rng = np.random.default_rng(0)
>>> T, B, I, H = 5, 2, 3, 4
>>> x = rng.standard_normal((T, B, I))
>>> W_ih, W_hh = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H))
>>> y, h_n, c_n, cache = ref.lstm_forward(x, None, None, W_ih, W_hh, lengths=[5, 3])
>>> grads = ref.lstm_backward(cache, dy=np.ones_like(y))
>>> grads.dx.shape, grads.dbias_ih is None
((5, 2, 3), True)
"""

from typing import Callable, NamedTuple, Optional

import numpy as np

__all__ = [
    "LSTMGrads",
    "GRUGrads",
    "RNNGrads",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "rnn_forward",
    "rnn_backward",
]


# --------------------------------------------------------------------------
# Public result types
# --------------------------------------------------------------------------


class LSTMGrads(NamedTuple):
    """Gradients returned by :func:`lstm_backward`.

    ``dbias_ih`` / ``dbias_hh`` are ``None`` when the forward pass ran
    without biases, ``dweight_hr`` when it ran without a projection. With
    a projection, ``dh0`` is [B,P] and ``dweight_hh`` [4H,P].
    """

    dx: np.ndarray  # [T,B,I]
    dh0: np.ndarray  # [B,H]
    dc0: np.ndarray  # [B,H]
    dweight_ih: np.ndarray  # [4H,I]
    dweight_hh: np.ndarray  # [4H,H]
    dbias_ih: Optional[np.ndarray]  # [4H]
    dbias_hh: Optional[np.ndarray]  # [4H]
    dweight_hr: Optional[np.ndarray] = None  # [P,H]


class GRUGrads(NamedTuple):
    """Gradients returned by :func:`gru_backward` (bias fields as in LSTMGrads)."""

    dx: np.ndarray  # [T,B,I]
    dh0: np.ndarray  # [B,H]
    dweight_ih: np.ndarray  # [3H,I]
    dweight_hh: np.ndarray  # [3H,H]
    dbias_ih: Optional[np.ndarray]  # [3H]
    dbias_hh: Optional[np.ndarray]  # [3H]


class RNNGrads(NamedTuple):
    """Gradients returned by :func:`rnn_backward` (bias fields as in LSTMGrads)."""

    dx: np.ndarray  # [T,B,I]
    dh0: np.ndarray  # [B,H]
    dweight_ih: np.ndarray  # [H,I]
    dweight_hh: np.ndarray  # [H,H]
    dbias_ih: Optional[np.ndarray]  # [H]
    dbias_hh: Optional[np.ndarray]  # [H]


# --------------------------------------------------------------------------
# Internal containers
# --------------------------------------------------------------------------


class _Params(NamedTuple):
    """The weights of one layer direction (or their gradients).

    Missing biases are stored as zeros so the step functions need no
    special case; ``_Cache.has_bias`` remembers whether they were given.
    ``W_hr`` is the LSTM's projection, None without one (and for the
    other cells).
    """

    W_ih: np.ndarray  # [G*H,I]
    W_hh: np.ndarray  # [G*H,H], the LSTM with a projection [4H,P]
    b_ih: np.ndarray  # [G*H]
    b_hh: np.ndarray  # [G*H]
    W_hr: Optional[np.ndarray] = None  # [P,H]


class _Cell(NamedTuple):
    """What the shared time loop needs to know about a cell kind.

    ``step(x, state, params, **options) -> (new_state, step_cache)`` runs one
    time step for a set of rows; ``step_backward(step_cache, dstate, params,
    **options) -> (dx, dstate_prev, dparams)`` is its exact derivative.
    States are tuples: ``(h,)`` or ``(h, c)``.
    """

    name: str
    G: int
    states: tuple  # ("h",) or ("h", "c")
    step: Callable
    step_backward: Callable


class _Cache(NamedTuple):
    """Everything backward needs from one forward call."""

    cell: str
    options: dict  # cell options (reset_after, nonlinearity), passed to both passes
    params: _Params
    has_bias: bool  # bias_ih and bias_hh given
    lengths: np.ndarray  # [B]
    reverse: bool
    x_shape: tuple  # (T, B, I)
    steps: list  # steps[t] = (active [B] bool, step cache of the active rows)


# --------------------------------------------------------------------------
# Cells: one step forward and its derivative
# --------------------------------------------------------------------------


def _sigmoid(a):
    """Logistic function 1 / (1 + exp(-a)), without overflow for large |a|."""
    e = np.exp(-np.abs(a))  # in (0, 1]
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _affine_grads(da_ih, x, da_hh, h):
    """Parameter gradients of ``a_ih = x W_ih^T + b_ih`` and ``a_hh = h W_hh^T + b_hh``."""
    return _Params(da_ih.T @ x, da_hh.T @ h, da_ih.sum(axis=0), da_hh.sum(axis=0))


class _LSTMStep(NamedTuple):
    x: np.ndarray  # input of the step
    h: np.ndarray  # state before the step
    c: np.ndarray
    i: np.ndarray  # gate activations
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    tanh_c: np.ndarray  # tanh(c')


def _lstm_step(x, state, p):
    """One LSTM step.

    ::

        a = W_ih x + b_ih + W_hh h + b_hh        split into a_i, a_f, a_g, a_o
        i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
        c' = f * c + i * g
        m  = o * tanh(c')
        h' = m                 without a projection
        h' = W_hr m            with one
    """
    h, c = state
    a = x @ p.W_ih.T + p.b_ih + h @ p.W_hh.T + p.b_hh
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    m = o * tanh_c
    h_new = m if p.W_hr is None else m @ p.W_hr.T
    return (h_new, c_new), _LSTMStep(x, h, c, i, f, g, o, tanh_c)


def _lstm_step_backward(s, dstate, p):
    """Derivative of one LSTM step, from the stored activations.

    ``dh'`` and ``dc'`` are the gradients reaching the step's outputs::

        dm  = dh'                                   without a projection
        dm  = dh' W_hr    dW_hr = dh'^T m           with one (m = o * tanh(c'))
        dc  = dc' + dm * o * (1 - tanh(c')²)        all the gradient reaching c'
        do  = dm * tanh(c')
        di  = dc * g     df = dc * c     dg = dc * i
        da  = (di * i(1-i), df * f(1-f), dg * (1-g²), do * o(1-o))
        dx  = da W_ih    dh = da W_hh    dc_prev = dc * f
        dW_ih = da^T x   dW_hh = da^T h   db_ih = db_hh = Σ_b da
    """
    dh_new, dc_new = dstate
    if p.W_hr is None:
        dm, dW_hr = dh_new, None
    else:
        dm, dW_hr = dh_new @ p.W_hr, dh_new.T @ (s.o * s.tanh_c)
    dc = dc_new + dm * s.o * (1 - s.tanh_c**2)
    do = dm * s.tanh_c
    di, df, dg = dc * s.g, dc * s.c, dc * s.i
    da = np.concatenate(
        [di * s.i * (1 - s.i), df * s.f * (1 - s.f), dg * (1 - s.g**2), do * s.o * (1 - s.o)],
        axis=1,
    )
    dx = da @ p.W_ih
    dh = da @ p.W_hh
    dparams = _affine_grads(da, s.x, da, s.h)._replace(W_hr=dW_hr)
    return dx, (dh, dc * s.f), dparams


class _GRUStep(NamedTuple):
    x: np.ndarray  # input of the step
    h: np.ndarray  # state before the step
    r: np.ndarray  # gate activations
    z: np.ndarray
    n: np.ndarray
    hn: np.ndarray  # recurrent part of n's pre-activation (see _gru_step)


def _gru_step(x, state, p, reset_after):
    """One GRU step.

    ::

        r  = σ(W_ir x + b_ir + W_hr h + b_hr)
        z  = σ(W_iz x + b_iz + W_hz h + b_hz)
        reset_after=True  (PyTorch, cuDNN):  hn = W_hn h + b_hn
                                             n  = tanh(W_in x + b_in + r * hn)
        reset_after=False (the paper):       hn = W_hn (r * h) + b_hn
                                             n  = tanh(W_in x + b_in + hn)
        h' = (1 - z) * n + z * h
    """
    (h,) = state
    H = h.shape[1]
    a_i = x @ p.W_ih.T + p.b_ih  # [B,3H]: input parts of r, z, n
    a_ir, a_iz, a_in = np.split(a_i, 3, axis=1)
    a_hrz = h @ p.W_hh[: 2 * H].T + p.b_hh[: 2 * H]  # [B,2H]: recurrent parts of r, z
    r = _sigmoid(a_ir + a_hrz[:, :H])
    z = _sigmoid(a_iz + a_hrz[:, H:])
    W_hn, b_hn = p.W_hh[2 * H :], p.b_hh[2 * H :]
    if reset_after:
        hn = h @ W_hn.T + b_hn
        n = np.tanh(a_in + r * hn)
    else:
        hn = (r * h) @ W_hn.T + b_hn
        n = np.tanh(a_in + hn)
    h_new = (1 - z) * n + z * h
    return (h_new,), _GRUStep(x, h, r, z, n, hn)


def _gru_step_backward(s, dstate, p, reset_after):
    """Derivative of one GRU step, from the stored activations.

    ::

        dn = dh' * (1 - z)    dz = dh' * (h - n)    dh = dh' * z   (direct path)
        da_n = dn * (1 - n²)                        (n's pre-activation)
        reset_after=True:   dhn = da_n * r          dr = da_n * hn
                            dh += dhn W_hn          dW_hn = dhn^T h
        reset_after=False:  dhn = da_n              d(r*h) = dhn W_hn
                            dr = d(r*h) * h         dh += d(r*h) * r
                            dW_hn = dhn^T (r*h)
        da_r = dr * r(1-r)    da_z = dz * z(1-z)
        dh += (da_r, da_z) W_h{r,z}     dx = (da_r, da_z, da_n) W_ih
        dW_ih = (da_r, da_z, da_n)^T x   dW_h{r,z} = (da_r, da_z)^T h
        db_ih = Σ_b (da_r, da_z, da_n)   db_hh = Σ_b (da_r, da_z, dhn)
    """
    (dh_new,) = dstate
    H = s.h.shape[1]
    W_hrz, W_hn = p.W_hh[: 2 * H], p.W_hh[2 * H :]
    dn = dh_new * (1 - s.z)
    dz = dh_new * (s.h - s.n)
    dh = dh_new * s.z
    da_n = dn * (1 - s.n**2)
    if reset_after:
        dhn = da_n * s.r
        dr = da_n * s.hn
        dh = dh + dhn @ W_hn
        h_into_W_hn = s.h
    else:
        dhn = da_n
        d_rh = dhn @ W_hn
        dr = d_rh * s.h
        dh = dh + d_rh * s.r
        h_into_W_hn = s.r * s.h
    da_rz = np.concatenate([dr * s.r * (1 - s.r), dz * s.z * (1 - s.z)], axis=1)
    dh = dh + da_rz @ W_hrz
    da_ih = np.concatenate([da_rz, da_n], axis=1)
    dx = da_ih @ p.W_ih
    dparams = _Params(
        W_ih=da_ih.T @ s.x,
        W_hh=np.concatenate([da_rz.T @ s.h, dhn.T @ h_into_W_hn], axis=0),
        b_ih=da_ih.sum(axis=0),
        b_hh=np.concatenate([da_rz.sum(axis=0), dhn.sum(axis=0)]),
    )
    return dx, (dh,), dparams


class _RNNStep(NamedTuple):
    x: np.ndarray  # input of the step
    h: np.ndarray  # state before the step
    h_new: np.ndarray  # state after the step (the activation)


def _rnn_step(x, state, p, nonlinearity):
    """One dense (Elman) RNN step: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, act tanh or relu."""
    (h,) = state
    a = x @ p.W_ih.T + p.b_ih + h @ p.W_hh.T + p.b_hh
    h_new = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return (h_new,), _RNNStep(x, h, h_new)


def _rnn_step_backward(s, dstate, p, nonlinearity):
    """Derivative of one RNN step, from the stored activation h'.

    ::

        act'(a) = 1 - h'²  (tanh)    or    1 where h' > 0, else 0  (relu)
        da = dh' * act'(a)
        dx = da W_ih    dh = da W_hh    dW_ih = da^T x    dW_hh = da^T h
        db_ih = db_hh = Σ_b da
    """
    (dh_new,) = dstate
    dact = 1 - s.h_new**2 if nonlinearity == "tanh" else (s.h_new > 0)
    da = dh_new * dact
    return da @ p.W_ih, (da @ p.W_hh,), _affine_grads(da, s.x, da, s.h)


_LSTM = _Cell("lstm", 4, ("h", "c"), _lstm_step, _lstm_step_backward)
_GRU = _Cell("gru", 3, ("h",), _gru_step, _gru_step_backward)
_RNN = _Cell("rnn", 1, ("h",), _rnn_step, _rnn_step_backward)


# --------------------------------------------------------------------------
# The time loop, shared by all cells
# --------------------------------------------------------------------------


def _reverse_sequences(a, lengths):
    """Reverse each sequence within its own length: ``out[t, b] = a[len_b - 1 - t, b]``.

    Positions t >= len_b are copied unchanged. The map is its own inverse,
    so a reverse-direction layer is the forward loop run on
    ``_reverse_sequences(x)`` with its outputs passed through it again.
    """
    out = a.copy()
    for b, n in enumerate(lengths):
        out[:n, b] = a[n - 1 :: -1, b]
    return out


def _forward_sequence(cell, options, x, state, params, lengths, reverse):
    """Run ``cell`` over the whole sequence.

    At time step t only the *active* sequences (those with t < len_b) take
    a step; the others keep their state, so after the loop each sequence
    holds the state of its own last step, and y stays 0 where t >= len_b.

    Returns ``y`` [T,B,H], the final states and the per-step caches.
    """
    if reverse:
        x = _reverse_sequences(x, lengths)
    T, B, _ = x.shape
    state = tuple(s.copy() for s in state)
    y = np.zeros((T, B, state[0].shape[1]), dtype=x.dtype)
    steps = []
    for t in range(T):
        active = t < lengths
        state_t = tuple(s[active] for s in state)
        new_state, step_cache = cell.step(x[t, active], state_t, params, **options)
        for s, s_new in zip(state, new_state):
            s[active] = s_new
        y[t, active] = new_state[0]
        steps.append((active, step_cache))
    if reverse:
        y = _reverse_sequences(y, lengths)
    return y, state, steps


def _backward_sequence(cell, cache, dy, dstate_n):
    """BPTT through the steps recorded in ``cache``, last step first.

    ``dstate`` holds, for every sequence, the gradient reaching its current
    state. A step receives that gradient plus ``dy[t]`` (h' is both the
    output y[t] and the next step's state) and hands back the gradient of
    the state before it; sequences not active at t pass it through.

    Returns ``dx``, the gradients of the initial states, and those of the
    params as a ``_Params`` (None for absent biases and projection).
    """
    if cache.reverse:
        dy = _reverse_sequences(dy, cache.lengths)
    T = cache.x_shape[0]
    dstate = [d.copy() for d in dstate_n]
    dparams = [None if w is None else np.zeros_like(w) for w in cache.params]
    dx = np.zeros(cache.x_shape, dtype=dy.dtype)
    for t in reversed(range(T)):
        active, step_cache = cache.steps[t]
        dstate_t = [d[active] for d in dstate]
        dstate_t[0] += dy[t, active]
        dx_t, dstate_prev, dparams_t = cell.step_backward(step_cache, dstate_t, cache.params, **cache.options)
        dx[t, active] = dx_t
        for d, d_prev in zip(dstate, dstate_prev):
            d[active] = d_prev
        for acc, d in zip(dparams, dparams_t):
            if acc is not None:
                acc += d
    if cache.reverse:
        dx = _reverse_sequences(dx, cache.lengths)
    dparams = _Params(*dparams)
    if not cache.has_bias:
        dparams = dparams._replace(b_ih=None, b_hh=None)
    return dx, tuple(dstate), dparams


# --------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------


def _check_array(name, a, shape, dtype):
    """Check that ``a`` is an ndarray of the given shape and dtype; name it in the error."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (the dtype of x), got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")


def _check_lengths(lengths, T, B):
    """Return ``lengths`` as an int64 array [B] with 1 <= len <= T (all T when None)."""
    if lengths is None:
        return np.full(B, T, dtype=np.int64)
    lengths_arr = np.asarray(lengths)
    if lengths_arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers, got dtype {lengths_arr.dtype}")
    if lengths_arr.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), got {lengths_arr.shape}")
    if B and (lengths_arr.min() < 1 or lengths_arr.max() > T):
        raise ValueError(f"lengths must lie in [1, T={T}], got {lengths_arr.tolist()}")
    return lengths_arr.astype(np.int64)


def _check_2d(name, a, dims):
    """Check that ``a`` is a 2-d ndarray, before its shape sizes the other arguments."""
    if not isinstance(a, np.ndarray) or a.ndim != 2:
        got = getattr(a, "shape", type(a).__name__)
        raise ValueError(f"{name} must be a 2-d numpy.ndarray {dims}, got {got}")


def _check_params(cell, x, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr=None):
    """Check the weights against ``x`` and each other; return ``_Params`` and whether there are biases.

    ``weight_hh`` [G*H,H] fixes H; with a projection, ``weight_hr`` [P,H]
    fixes P and H and ``weight_hh`` must be [4H,P].
    """
    G, I = cell.G, x.shape[2]
    if weight_hr is None:
        _check_2d("weight_hh", weight_hh, f"[{G}*H,H]")
        H = P = weight_hh.shape[1]
    else:
        _check_2d("weight_hr", weight_hr, "[P,H]")
        P, H = weight_hr.shape
        _check_array("weight_hr", weight_hr, (P, H), x.dtype)
    _check_array("weight_hh", weight_hh, (G * H, P), x.dtype)
    _check_array("weight_ih", weight_ih, (G * H, I), x.dtype)
    if (bias_ih is None) != (bias_hh is None):
        fn = f"{cell.name}_forward"
        raise ValueError(f"{fn}: bias_ih and bias_hh must both be given or both be None")
    has_bias = bias_ih is not None
    if has_bias:
        _check_array("bias_ih", bias_ih, (G * H,), x.dtype)
        _check_array("bias_hh", bias_hh, (G * H,), x.dtype)
    else:
        bias_ih = bias_hh = np.zeros(G * H, dtype=x.dtype)
    return _Params(weight_ih, weight_hh, bias_ih, bias_hh, weight_hr), has_bias


def _state_sizes(cell, params):
    """Width of each state: h as wide as W_hh has columns (H, or P with a projection), c is H."""
    H = params.W_hh.shape[0] // cell.G
    return tuple(params.W_hh.shape[1] if name == "h" else H for name in cell.states)


def _prepare_forward(cell, x, states, weights, lengths):
    """Check the forward arguments; return params, has_bias, initial states, lengths."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        got = getattr(x, "dtype", type(x).__name__)
        raise TypeError(f"x must be a float32 or float64 numpy.ndarray, got {got}")
    if x.ndim != 3:
        raise ValueError(f"x must have shape [T,B,I], got {x.shape}")
    T, B, _ = x.shape
    params, has_bias = _check_params(cell, x, *weights)
    initial = []
    for name, s, size in zip(cell.states, states, _state_sizes(cell, params)):
        if s is not None:
            _check_array(f"{name}0", s, (B, size), x.dtype)
        initial.append(np.zeros((B, size), dtype=x.dtype) if s is None else s)
    return params, has_bias, tuple(initial), _check_lengths(lengths, T, B)


def _run_forward(cell, options, x, states, weights, lengths, reverse, keep_cache):
    """Check arguments, run the sequence, and build the cache if asked for."""
    params, has_bias, initial, lengths = _prepare_forward(cell, x, states, weights, lengths)
    y, final, steps = _forward_sequence(cell, options, x, initial, params, lengths, bool(reverse))
    cache = None
    if keep_cache:
        cache = _Cache(cell.name, options, params, has_bias, lengths, bool(reverse), x.shape, steps)
    return y, final, cache


def _run_backward(cell, cache, dy, dstate_n):
    """Check the backward arguments (dy and final-state gradients may be None) and run BPTT."""
    if cache is None:
        raise ValueError(
            "cache is None: the forward ran with keep_cache=False; run it with keep_cache=True to call backward"
        )
    if not isinstance(cache, _Cache):
        got = type(cache).__name__
        raise TypeError(f"cache must come from rnncore.reference.{cell.name}_forward, got {got}")
    if cache.cell != cell.name:
        raise ValueError(f"cache comes from {cache.cell}_forward, not {cell.name}_forward")
    T, B, _ = cache.x_shape
    dtype = cache.params.W_hh.dtype
    sizes = _state_sizes(cell, cache.params)
    if dy is None:
        dy = np.zeros((T, B, sizes[0]), dtype=dtype)
    _check_array("dy", dy, (T, B, sizes[0]), dtype)
    filled = []
    for name, d, size in zip(cell.states, dstate_n, sizes):
        if d is not None:
            _check_array(f"d{name}_n", d, (B, size), dtype)
        filled.append(np.zeros((B, size), dtype=dtype) if d is None else d)
    return _backward_sequence(cell, cache, dy, filled)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def lstm_forward(
    x,
    h0,
    c0,
    weight_ih,
    weight_hh,
    bias_ih=None,
    bias_hh=None,
    *,
    weight_hr=None,
    lengths=None,
    reverse=False,
    keep_cache=True,
):
    """Run an LSTM layer (one direction) over a sequence.

    Gates (G = 4, order i, f, g, o) on ``W_ih x + b_ih + W_hh h + b_hh``::

        i = σ   f = σ   g = tanh   o = σ
        c' = f * c + i * g
        h' = o * tanh(c')              without a projection
        h' = W_hr (o * tanh(c'))       with one (PyTorch's proj_size)

    Parameters
    ----------
    x : ndarray [T,B,I]
        Input sequence, time-major, float32 or float64.
    h0, c0 : ndarray [B,H] or None
        Initial hidden and cell state (None: zeros). With a projection
        ``h0`` is [B,P].
    weight_ih : ndarray [4H,I]
        Input-to-hidden weights, gates stacked in the order i, f, g, o.
    weight_hh : ndarray [4H,H]
        Hidden-to-hidden weights ([4H,P] with a projection).
    bias_ih, bias_hh : ndarray [4H] or None
        Biases, both or neither (None: no bias, and no bias gradient in
        backward).
    weight_hr : ndarray [P,H] or None
        Projection of the hidden state (None: no projection, P = H).
    lengths : array_like of int [B] or None
        Valid steps of each sequence, any order, 1 <= len <= T (None: all T).
    reverse : bool
        Run each sequence backwards in time, from t = len_b - 1 down to 0.
    keep_cache : bool
        Keep what :func:`lstm_backward` needs (False: the cache is None).

    Returns
    -------
    y : ndarray [T,B,H] ([T,B,P] with a projection)
        Hidden state at every step (0 where t >= len_b).
    h_n, c_n : ndarray [B,H] (h_n [B,P] with a projection)
        State of each sequence after its own last step.
    cache : object or None
        Opaque, for :func:`lstm_backward`.

    Raises
    ------
    ValueError
        If only one of ``bias_ih`` and ``bias_hh`` is given, or a shape is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((3, 2, 5)); W_ih = np.full((8, 5), 0.1); W_hh = np.full((8, 2), 0.1)
    >>> y, h_n, c_n, cache = lstm_forward(x, None, None, W_ih, W_hh)
    >>> y.shape, h_n.shape
    ((3, 2, 2), (2, 2))

    With a projection to P = 1 (``weight_hh`` then has P columns):

    >>> W_hr = np.full((1, 2), 0.1); W_hh_p = np.full((8, 1), 0.1)
    >>> y, h_n, c_n, cache = lstm_forward(x, None, None, W_ih, W_hh_p, weight_hr=W_hr)
    >>> y.shape, h_n.shape, c_n.shape
    ((3, 2, 1), (2, 1), (2, 2))
    """
    weights = (weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)
    y, (h_n, c_n), cache = _run_forward(_LSTM, {}, x, (h0, c0), weights, lengths, reverse, keep_cache)
    return y, h_n, c_n, cache


def lstm_backward(cache, dy, dh_n=None, dc_n=None):
    """Backpropagation through time for :func:`lstm_forward`.

    Parameters
    ----------
    cache : object
        The cache returned by :func:`lstm_forward` with ``keep_cache=True``.
    dy : ndarray [T,B,H] ([T,B,P] with a projection) or None
        Gradient of the loss w.r.t. y (None: zeros). Ignored at t >= len_b.
    dh_n, dc_n : ndarray [B,H] (dh_n [B,P] with a projection) or None
        Gradients w.r.t. the final states (None: zeros).

    Returns
    -------
    LSTMGrads
        ``dx`` (0 at t >= len_b), ``dh0``, ``dc0``, ``dweight_ih``,
        ``dweight_hh``, ``dbias_ih``, ``dbias_hh`` (None without biases),
        ``dweight_hr`` (None without a projection).

    Raises
    ------
    ValueError
        If the forward ran with ``keep_cache=False`` (``cache`` is None).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((3, 1, 2)); W_ih = np.full((4, 2), 0.1); W_hh = np.full((4, 1), 0.1)
    >>> y, h_n, c_n, cache = lstm_forward(x, None, None, W_ih, W_hh)
    >>> lstm_backward(cache, None, dh_n=np.ones((1, 1))).dweight_ih.shape
    (4, 2)
    """
    dx, (dh0, dc0), dp = _run_backward(_LSTM, cache, dy, (dh_n, dc_n))
    return LSTMGrads(dx, dh0, dc0, dp.W_ih, dp.W_hh, dp.b_ih, dp.b_hh, dp.W_hr)


def gru_forward(
    x,
    h0,
    weight_ih,
    weight_hh,
    bias_ih=None,
    bias_hh=None,
    *,
    lengths=None,
    reverse=False,
    reset_after=True,
    keep_cache=True,
):
    """Run a GRU layer (one direction) over a sequence.

    Gates (G = 3, order r, z, n)::

        r = σ(W_ir x + b_ir + W_hr h + b_hr),  z likewise
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))    reset_after=True
        n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)    reset_after=False
        h' = (1 - z) * n + z * h

    Parameters
    ----------
    x : ndarray [T,B,I]
        Input sequence, time-major, float32 or float64.
    h0 : ndarray [B,H] or None
        Initial hidden state (None: zeros).
    weight_ih : ndarray [3H,I]
        Input-to-hidden weights, gates stacked in the order r, z, n.
    weight_hh : ndarray [3H,H]
        Hidden-to-hidden weights.
    bias_ih, bias_hh : ndarray [3H] or None
        Biases, both or neither (None: no bias, and no bias gradient in
        backward).
    lengths : array_like of int [B] or None
        Valid steps of each sequence, any order, 1 <= len <= T (None: all T).
    reverse : bool
        Run each sequence backwards in time, from t = len_b - 1 down to 0.
    reset_after : bool
        True: PyTorch's and cuDNN's GRU. False: the original paper's.
    keep_cache : bool
        Keep what :func:`gru_backward` needs (False: the cache is None).

    Returns
    -------
    y : ndarray [T,B,H]
        Hidden state at every step (0 where t >= len_b).
    h_n : ndarray [B,H]
        State of each sequence after its own last step.
    cache : object or None
        Opaque, for :func:`gru_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((3, 2, 5)); W_ih = np.full((6, 5), 0.1); W_hh = np.full((6, 2), 0.1)
    >>> y, h_n, cache = gru_forward(x, None, W_ih, W_hh, lengths=[3, 1], reverse=True)
    >>> y.shape, h_n.shape
    ((3, 2, 2), (2, 2))
    """
    weights = (weight_ih, weight_hh, bias_ih, bias_hh)
    options = {"reset_after": bool(reset_after)}
    y, (h_n,), cache = _run_forward(_GRU, options, x, (h0,), weights, lengths, reverse, keep_cache)
    return y, h_n, cache


def gru_backward(cache, dy, dh_n=None):
    """Backpropagation through time for :func:`gru_forward`.

    Parameters
    ----------
    cache : object
        The cache returned by :func:`gru_forward` with ``keep_cache=True``.
    dy : ndarray [T,B,H] or None
        Gradient of the loss w.r.t. y (None: zeros). Ignored at t >= len_b.
    dh_n : ndarray [B,H] or None
        Gradient w.r.t. the final state (None: zeros).

    Returns
    -------
    GRUGrads
        ``dx`` (0 at t >= len_b), ``dh0``, ``dweight_ih``, ``dweight_hh``,
        ``dbias_ih``, ``dbias_hh`` (None without biases).

    Raises
    ------
    ValueError
        If the forward ran with ``keep_cache=False`` (``cache`` is None).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((3, 1, 2)); W_ih = np.full((3, 2), 0.1); W_hh = np.full((3, 1), 0.1)
    >>> y, h_n, cache = gru_forward(x, None, W_ih, W_hh)
    >>> gru_backward(cache, np.ones_like(y)).dh0.shape
    (1, 1)
    """
    dx, (dh0,), dp = _run_backward(_GRU, cache, dy, (dh_n,))
    return GRUGrads(dx, dh0, dp.W_ih, dp.W_hh, dp.b_ih, dp.b_hh)


def rnn_forward(
    x,
    h0,
    weight_ih,
    weight_hh,
    bias_ih=None,
    bias_hh=None,
    *,
    lengths=None,
    reverse=False,
    nonlinearity="tanh",
    keep_cache=True,
):
    """Run a dense (Elman) RNN layer (one direction) over a sequence.

    ``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with act tanh or relu (G = 1).

    Parameters
    ----------
    x : ndarray [T,B,I]
        Input sequence, time-major, float32 or float64.
    h0 : ndarray [B,H] or None
        Initial hidden state (None: zeros).
    weight_ih : ndarray [H,I]
        Input-to-hidden weights.
    weight_hh : ndarray [H,H]
        Hidden-to-hidden weights.
    bias_ih, bias_hh : ndarray [H] or None
        Biases, both or neither (None: no bias, and no bias gradient in
        backward).
    lengths : array_like of int [B] or None
        Valid steps of each sequence, any order, 1 <= len <= T (None: all T).
    reverse : bool
        Run each sequence backwards in time, from t = len_b - 1 down to 0.
    nonlinearity : {"tanh", "relu"}
        The activation.
    keep_cache : bool
        Keep what :func:`rnn_backward` needs (False: the cache is None).

    Returns
    -------
    y : ndarray [T,B,H]
        Hidden state at every step (0 where t >= len_b).
    h_n : ndarray [B,H]
        State of each sequence after its own last step.
    cache : object or None
        Opaque, for :func:`rnn_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((3, 2, 5)); W_ih = np.full((4, 5), 0.1); W_hh = np.full((4, 4), 0.1)
    >>> y, h_n, cache = rnn_forward(x, None, W_ih, W_hh, nonlinearity="relu", keep_cache=False)
    >>> cache is None
    True
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    weights = (weight_ih, weight_hh, bias_ih, bias_hh)
    options = {"nonlinearity": nonlinearity}
    y, (h_n,), cache = _run_forward(_RNN, options, x, (h0,), weights, lengths, reverse, keep_cache)
    return y, h_n, cache


def rnn_backward(cache, dy, dh_n=None):
    """Backpropagation through time for :func:`rnn_forward`.

    Parameters
    ----------
    cache : object
        The cache returned by :func:`rnn_forward` with ``keep_cache=True``.
    dy : ndarray [T,B,H] or None
        Gradient of the loss w.r.t. y (None: zeros). Ignored at t >= len_b.
    dh_n : ndarray [B,H] or None
        Gradient w.r.t. the final state (None: zeros).

    Returns
    -------
    RNNGrads
        ``dx`` (0 at t >= len_b), ``dh0``, ``dweight_ih``, ``dweight_hh``,
        ``dbias_ih``, ``dbias_hh`` (None without biases).

    Raises
    ------
    ValueError
        If the forward ran with ``keep_cache=False`` (``cache`` is None).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones((3, 1, 2)); W_ih = np.full((1, 2), 0.1); W_hh = np.full((1, 1), 0.1)
    >>> y, h_n, cache = rnn_forward(x, None, W_ih, W_hh)
    >>> rnn_backward(cache, np.ones_like(y)).dx.shape
    (3, 1, 2)
    """
    dx, (dh0,), dp = _run_backward(_RNN, cache, dy, (dh_n,))
    return RNNGrads(dx, dh0, dp.W_ih, dp.W_hh, dp.b_ih, dp.b_hh)
