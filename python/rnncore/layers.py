"""Stacked and bidirectional recurrent layers with PyTorch's interface.

:class:`LSTM`, :class:`GRU` and :class:`RNN` take PyTorch's constructor
arguments, return PyTorch's output shapes and name their parameters like
PyTorch (``weight_ih_l0``, ``weight_hh_l1_reverse``, ``weight_hr_l0``, ...),
so a ``state_dict`` moves unchanged between ``torch.nn.LSTM`` and
:class:`LSTM`.  Each layer and direction runs as one call of
:mod:`rnncore.functional`; this module stacks them, runs the reverse
direction, applies the dropout between layers and backpropagates through
all of it.

Layer ``k`` and direction ``d`` is row ``k*D + d`` of the state arrays
(``D = 2`` if bidirectional): ``h_n`` is ``[num_layers*D, B, H_out]`` in the
order layer 0 forward, layer 0 reverse, layer 1 forward, ...  ``H_out`` is
``proj_size`` for an LSTM with projection, ``hidden_size`` otherwise; the
output ``y`` is ``[T, B, D*H_out]``, the directions concatenated on the
feature axis.

Training and inference
----------------------
A forward pass keeps a cache for :meth:`backward` when
``keep_cache=True``; by default (``keep_cache=None``) it keeps one when the
layer is in train mode and no :class:`rnncore.no_grad` is active.
``backward`` uses the cache of the most recent forward pass, once; it adds
the parameter gradients into ``layer.grads``.  ``train()`` and ``eval()``
switch only the dropout between layers (and with it the default of
``keep_cache``).

Threads
-------
The kernels release the GIL, so Python threads run layers in parallel.
Inference on one layer (``eval()``, :class:`rnncore.no_grad` or
``keep_cache=False``) may be called from many threads at once and gives
the same arrays as serial calls.  Training state -- the cache kept for
:meth:`backward`, ``grads`` and the dropout generator -- belongs to the
layer object and is not shared safely between threads: train each layer
from one thread at a time (one layer per thread is fine).

Examples
--------
>>> import numpy as np, rnncore
>>> lstm = rnncore.LSTM(3, 5, num_layers=2, bidirectional=True, seed=0)
>>> x = np.ones((7, 4, 3), np.float32)                       # [T, B, I]
>>> y, (h_n, c_n) = lstm(x, lengths=[7, 2, 5, 1])
>>> y.shape, h_n.shape
((7, 4, 10), (4, 4, 5))
>>> dx, (dh0, dc0) = lstm.backward(np.ones_like(y))
>>> dx.shape, lstm.grads["weight_hh_l1_reverse"].shape
((7, 4, 3), (20, 5))
"""

from __future__ import annotations

import copy
import math
import numbers
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from . import functional
from ._grad_mode import is_grad_enabled

__all__ = ["LSTM", "GRU", "RNN"]


# --------------------------------------------------------------------------
# Cell kinds and one kernel call
# --------------------------------------------------------------------------


class _Kind(NamedTuple):
    """What the shared machinery needs to know about one cell kind."""

    name: str  # "LSTM", "GRU", "RNN"
    gates: int  # G: rows of weight_ih are G*H
    states: tuple  # ("h", "c") or ("h",)
    forward: Callable  # rnncore.functional.*_forward
    backward: Callable  # rnncore.functional.*_backward


_LSTM_KIND = _Kind("LSTM", 4, ("h", "c"), functional.lstm_forward, functional.lstm_backward)
_GRU_KIND = _Kind("GRU", 3, ("h",), functional.gru_forward, functional.gru_backward)
_RNN_KIND = _Kind("RNN", 1, ("h",), functional.rnn_forward, functional.rnn_backward)


def _run_forward(kind, x, states, weights, options, *, lengths=None, reverse=False, keep_cache=False,
                 packed=None):
    """One kernel call: ``kind`` over ``x`` [T,B,I] with ``weights`` (role -> array),
    or, ``packed`` given, with its weights (a ``functional.Prepacked*``; no cache).

    Returns ``y``, the tuple of final states and the cache.
    """
    if packed is not None:
        y, *finals = packed(x, *states, lengths=lengths, reverse=reverse, **options)
        return y, tuple(finals), None
    projection = {"weight_hr": weights["weight_hr"]} if "weight_hr" in weights else {}
    *outs, cache = kind.forward(
        x, *states, weights["weight_ih"], weights["weight_hh"],
        weights.get("bias_ih"), weights.get("bias_hh"),
        lengths=lengths, reverse=reverse, keep_cache=keep_cache, **options, **projection,
    )
    return outs[0], tuple(outs[1:]), cache


def _run_backward(kind, cache, dy, dstates, roles):
    """Backward of one kernel call: ``dx``, gradients of the initial states, role -> gradient."""
    grads = kind.backward(cache, dy, *dstates)
    d0 = tuple(getattr(grads, f"d{s}0") for s in kind.states)
    return grads.dx, d0, {role: getattr(grads, f"d{role}") for role in roles}


# --------------------------------------------------------------------------
# The stack of layers and directions (shared with rnncore.torch)
# --------------------------------------------------------------------------


class _StackCache(NamedTuple):
    caches: list  # the kernel cache of layer k, direction d at k*D + d
    masks: list  # masks[k]: the dropout mask applied to the output of layer k < L-1


@dataclass(frozen=True)
class _Stack:
    """The structure of ``num_layers`` recurrent layers in one or two directions.

    It knows the parameter names and shapes and runs the whole stack
    forward and backward on time-major, C-contiguous arrays; parameters
    are passed in, so :mod:`rnncore.torch` runs the same code on the
    memory of torch tensors.
    """

    kind: _Kind
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    bidirectional: bool
    proj_size: int
    options: dict  # reset_after (GRU), nonlinearity (RNN)

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def out_size(self) -> int:
        """H_out: the size of h (and of each direction's output)."""
        return self.proj_size or self.hidden_size

    def layer_input_size(self, k: int) -> int:
        return self.input_size if k == 0 else self.directions * self.out_size

    def role_shapes(self, k: int) -> dict:
        """Role -> shape of the parameters of layer ``k`` (either direction), in PyTorch's order."""
        GH, H, O = self.kind.gates * self.hidden_size, self.hidden_size, self.out_size
        shapes = {"weight_ih": (GH, self.layer_input_size(k)), "weight_hh": (GH, O)}
        if self.bias:
            shapes.update(bias_ih=(GH,), bias_hh=(GH,))
        if self.proj_size:
            shapes.update(weight_hr=(O, H))
        return shapes

    def names(self, k: int, d: int) -> dict:
        """Role -> parameter name for layer ``k``, direction ``d``."""
        suffix = f"_l{k}" + ("_reverse" if d else "")
        return {role: role + suffix for role in self.role_shapes(k)}

    def param_shapes(self) -> dict:
        """Parameter name -> shape, in PyTorch's order."""
        shapes = {}
        for k in range(self.num_layers):
            for d in range(self.directions):
                shapes.update({self.names(k, d)[role]: shape for role, shape in self.role_shapes(k).items()})
        return shapes

    def state_sizes(self) -> tuple:
        """The last dimension of each state: (H_out,) or (H_out, H) for the LSTM."""
        return (self.out_size, self.hidden_size)[: len(self.kind.states)]

    def _weights(self, params, k, d):
        return {role: params[name] for role, name in self.names(k, d).items()}

    def forward(self, params, x, states, lengths, dropout, keep_cache, packed=None):
        """Run the stack.

        Parameters
        ----------
        params : Mapping of str to ndarray
        x : ndarray, [T, B, I], C-contiguous
        states : tuple of (ndarray [L*D, B, size], C-contiguous, or None)
        lengths : array_like [B] of int or None
        dropout : callable or None
            ``dropout(shape)`` returns the (already scaled) mask applied to
            the output of every layer but the last; None: no dropout.
        keep_cache : bool
        packed : list or None
            The ``functional.Prepacked*`` of layer ``k``, direction ``d`` at
            ``k*D + d``, run instead of ``params`` (no cache).

        Returns
        -------
        y : ndarray, [T, B, D*H_out]
        finals : tuple of ndarray, [L*D, B, size]
        cache : object or None
        """
        D = self.directions
        caches, masks, finals = [], [], []
        for k in range(self.num_layers):
            ys = []
            for d in range(D):
                s0 = tuple(None if s is None else s[k * D + d] for s in states)
                y, s_n, cache = _run_forward(
                    self.kind, x, s0, None if packed else self._weights(params, k, d), self.options,
                    lengths=lengths, reverse=bool(d), keep_cache=keep_cache,
                    packed=packed[k * D + d] if packed else None,
                )
                ys.append(y)
                finals.append(s_n)
                caches.append(cache)
            x = ys[0] if D == 1 else np.concatenate(ys, axis=2)
            if dropout is not None and k < self.num_layers - 1:
                masks.append(dropout(x.shape))
                x = x * masks[-1]
        finals = tuple(np.stack(f) for f in zip(*finals))
        return x, finals, _StackCache(caches, masks) if keep_cache else None

    def backward(self, cache, dy, dstates):
        """Backpropagate through the :meth:`forward` call that made ``cache``.

        Parameters
        ----------
        cache : object
        dy : ndarray [T, B, D*H_out], C-contiguous, or None
        dstates : tuple of (ndarray [L*D, B, size] or None)

        Returns
        -------
        dx : ndarray, [T, B, I]
        d0 : tuple of ndarray, [L*D, B, size]
            Gradients of the initial states.
        dparams : dict of str to ndarray
        """
        D, O = self.directions, self.out_size
        d0 = [None] * (self.num_layers * D)
        dparams = {}
        for k in reversed(range(self.num_layers)):
            if k < self.num_layers - 1 and cache.masks:
                dy = dy * cache.masks[k]
            dx = None
            for d in range(D):
                i = k * D + d
                dy_d = dy if D == 1 or dy is None else np.ascontiguousarray(dy[..., d * O:(d + 1) * O])
                names = self.names(k, d)
                dx_d, d0[i], dw = _run_backward(
                    self.kind, cache.caches[i], dy_d,
                    tuple(None if s is None else s[i] for s in dstates), names,
                )
                dparams.update({names[role]: g for role, g in dw.items()})
                dx = dx_d if dx is None else dx + dx_d
            dy = dx
        return dy, tuple(np.stack(s) for s in zip(*d0)), dparams


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def _check_int(owner, name, value, minimum=1):
    """``value`` as an int >= ``minimum`` (bools refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be an int >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_bool(owner, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_dtype(owner, value):
    """The name ("float32" or "float64") of the dtype ``value`` stands for."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{owner}: dtype must be 'float32' or 'float64', got {value!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{owner}: dtype must be 'float32' or 'float64', got {dtype.name}")
    return dtype.name


def _check_seed(owner, value):
    return None if value is None else _check_int(owner, "seed", value, minimum=0)


def _check_array(owner, name, a, shape, dtype, meaning):
    """Refuse anything but an ndarray of ``dtype`` and ``shape``; ``meaning`` spells the shape out."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{owner}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{owner}: {name} must have dtype {dtype} (the module's dtype), got {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{owner}: {name} must have shape {meaning} = {tuple(shape)}, got {a.shape}")


def _to_numpy(value):
    """An ndarray or a torch tensor as an ndarray (None for anything else).

    torch is looked up, never imported: if ``value`` is a tensor, torch
    has been imported already.
    """
    if isinstance(value, np.ndarray):
        return value
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return None


class _Fixed:
    """A read-only attribute: the constructor argument of the same name."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        return self if obj is None else obj._config[self.name]

    def __set__(self, obj, value):
        raise AttributeError(f"{self.name} is fixed when the module is built; build a new one")


# --------------------------------------------------------------------------
# Parameters by name: shared by layers and cells
# --------------------------------------------------------------------------


class _Module:
    """Named parameters, ``state_dict``/``load_state_dict``, ``save`` and a repr.

    Subclasses set ``_kind`` and ``_defaults`` (the constructor's default
    arguments, which the repr leaves out) and call :meth:`_setup`.
    """

    _kind: _Kind
    _defaults: dict = {}
    input_size = _Fixed()
    hidden_size = _Fixed()
    bias = _Fixed()
    seed = _Fixed()

    def _setup(self, config: dict, params: dict) -> None:
        self._config = config
        self._stack = self._stack_of(config)
        self.params = params

    def _stack_of(self, config):
        """The stack of layers and directions that ``config`` describes (one layer for a cell)."""
        options = {key: config[key] for key in ("reset_after", "nonlinearity") if key in config}
        return _Stack(self._kind, config["input_size"], config["hidden_size"], config.get("num_layers", 1),
                      config["bias"], config.get("bidirectional", False), config.get("proj_size", 0),
                      options)

    @staticmethod
    def _initial_params(shapes, hidden_size, dtype, seed):
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, in order, from ``seed``."""
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(hidden_size)
        return {name: rng.uniform(-bound, bound, shape).astype(dtype) for name, shape in shapes.items()}

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters and of every array passed in."""
        return np.dtype(self._config["dtype"])

    @property
    def config(self) -> dict:
        """The constructor arguments (JSON-serialisable), e.g. for ``type(m)(**m.config)``."""
        return dict(self._config)

    def _split_states(self, value, name):
        """The tuple of states from the user's argument ``name`` (LSTM: a pair, or None)."""
        if len(self._kind.states) == 1:
            return (value,)
        if value is None:
            return (None, None)
        if not isinstance(value, tuple) or len(value) != 2:
            raise TypeError(f"{type(self).__name__}: {name} must be a tuple of two arrays (h, c) or None, "
                            f"got {type(value).__name__}")
        return value

    def _join_states(self, states):
        return states if len(states) == 2 else states[0]

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self) -> str:
        args = [repr(self._config["input_size"]), repr(self._config["hidden_size"])]
        args += [f"{key}={value!r}" for key, value in self._config.items()
                 if key not in ("input_size", "hidden_size") and self._defaults.get(key, ...) != value]
        return f"{type(self).__name__}({', '.join(args)})"

    def state_dict(self) -> dict:
        """A copy of every parameter, by PyTorch's names.

        Returns
        -------
        dict of str to ndarray
            Copies: later training does not change them.
        """
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state_dict) -> None:
        """Copy parameters into the module's arrays (in place).

        Parameters
        ----------
        state_dict : Mapping of str to ndarray or torch.Tensor
            Exactly the module's parameter names, each with its shape.
            Floating-point values of another precision are converted to the
            module's dtype.  torch is not imported unless tensors are given.

        Raises
        ------
        TypeError
            If ``state_dict`` is not a mapping.
        ValueError
            Listing every missing, unexpected, mis-shaped or non-float
            entry; nothing is loaded then.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{owner}: state_dict must be a mapping of names to arrays, "
                            f"got {type(state_dict).__name__}")
        problems = [f"missing: {name}" for name in self.params if name not in state_dict]
        problems += [f"unexpected: {name}" for name in state_dict if name not in self.params]
        values = {}
        for name, target in self.params.items():
            if name not in state_dict:
                continue
            value = _to_numpy(state_dict[name])
            if value is None:
                problems.append(f"{name}: expected a numpy.ndarray or torch.Tensor, "
                                f"got {type(state_dict[name]).__name__}")
            elif value.dtype.kind != "f":
                problems.append(f"{name}: expected floating-point values, got dtype {value.dtype}")
            elif value.shape != target.shape:
                problems.append(f"{name}: expected shape {target.shape}, got {value.shape}")
            else:
                values[name] = value
        if problems:
            raise ValueError(f"{owner}: the state_dict does not fit {self!r}:\n  " + "\n  ".join(problems))
        for name, value in values.items():
            self.params[name][...] = value

    def save(self, path) -> None:
        """Write the configuration and parameters to ``path`` (see :func:`rnncore.load`)."""
        from .serialization import save  # serialization imports the module classes

        save(self, path)


# --------------------------------------------------------------------------
# The layers
# --------------------------------------------------------------------------


class _Pending(NamedTuple):
    """A forward pass's cache, waiting for backward."""

    cache: object
    time_steps: int
    batch: int  # B (1 for unbatched input)
    batched: bool


class _Layer(_Module):
    """The layer machinery shared by :class:`LSTM`, :class:`GRU` and :class:`RNN`."""

    num_layers = _Fixed()
    batch_first = _Fixed()
    dropout = _Fixed()
    bidirectional = _Fixed()

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                 bidirectional, dtype, seed, **options):
        owner = type(self).__name__
        config = {
            "input_size": _check_int(owner, "input_size", input_size),
            "hidden_size": _check_int(owner, "hidden_size", hidden_size),
            "num_layers": _check_int(owner, "num_layers", num_layers),
            "bias": _check_bool(owner, "bias", bias),
            "batch_first": _check_bool(owner, "batch_first", batch_first),
            "dropout": self._check_dropout(dropout, num_layers),
            "bidirectional": _check_bool(owner, "bidirectional", bidirectional),
            **options,
            "dtype": _check_dtype(owner, dtype),
            "seed": _check_seed(owner, seed),
        }
        init_seed, dropout_seed = np.random.SeedSequence(config["seed"]).spawn(2)
        stack = self._stack_of(config)
        self._check_addressable(stack, np.dtype(config["dtype"]).itemsize)
        shapes = stack.param_shapes()
        self._setup(config, self._initial_params(shapes, config["hidden_size"], config["dtype"], init_seed))
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.training = True
        self._dropout_rng = np.random.default_rng(dropout_seed)
        self._pending = "no forward pass has run yet"

    def _check_addressable(self, stack, itemsize):
        """Refuse, in O(1), sizes whose parameters no address space holds: building
        them would otherwise loop over ``num_layers`` before any allocation fails."""
        L = stack.num_layers
        per_layer = [sum(math.prod(shape) for shape in stack.role_shapes(k).values()) for k in range(min(L, 2))]
        count = stack.directions * (per_layer[0] + (L - 1) * per_layer[-1])
        if count * itemsize > sys.maxsize:
            raise ValueError(f"{type(self).__name__}: num_layers={L}, hidden_size={stack.hidden_size} and "
                             f"input_size={stack.input_size} need {count} parameters, more than can be addressed")

    def _check_dropout(self, value, num_layers):
        owner = type(self).__name__
        if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{owner}: dropout must be a float in [0, 1), got {type(value).__name__}")
        if not 0 <= value < 1:
            raise ValueError(f"{owner}: dropout must be a float in [0, 1), got {value}")
        if value > 0 and num_layers == 1:
            warnings.warn(f"{owner}: dropout={value} has no effect with num_layers=1: it applies "
                          "to the outputs of every layer but the last", stacklevel=4)
        return float(value)

    # -- modes ---------------------------------------------------------------

    def train(self, mode: bool = True):
        """Switch the dropout between layers on (``mode=True``) or off; returns self."""
        self.training = _check_bool(type(self).__name__, "mode", mode)
        return self

    def eval(self):
        """``train(False)``: no dropout, and no cache kept by default."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every gradient in ``grads`` to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    # -- shapes --------------------------------------------------------------

    def _time_major(self, a, batched):
        """[T,B,F] from the caller's layout ([B,T,F] with batch_first, [T,F] unbatched)."""
        if not batched:
            return np.ascontiguousarray(a[:, None])
        return np.ascontiguousarray(a.transpose(1, 0, 2) if self.batch_first else a)

    def _caller_layout(self, a, batched):
        """The inverse of :meth:`_time_major`."""
        if not batched:
            return a[:, 0]
        return np.ascontiguousarray(a.transpose(1, 0, 2)) if self.batch_first else a

    def _check_states(self, values, name, B, batched):
        """Check initial states or final-state gradients; return them as [L*D, B, size] or None.

        ``name`` is a format for the state's letter: "{}0" or "d{}_n".
        """
        LD = self.num_layers * self._stack.directions
        checked = []
        for s, size, value in zip(self._kind.states, self._stack.state_sizes(), values):
            if value is not None:
                letter = "H_out" if s == "h" else "H"
                shape, meaning = ((LD, B, size), f"[num_layers*D, B, {letter}]") if batched else \
                    ((LD, size), f"[num_layers*D, {letter}]")
                _check_array(type(self).__name__, name.format(s), value, shape, self.dtype, meaning)
                value = np.ascontiguousarray(value if batched else value[:, None])
            checked.append(value)
        return tuple(checked)

    # -- forward and backward ------------------------------------------------

    def forward(self, x, h0=None, lengths=None, *, keep_cache=None):
        """Run every layer and direction over ``x``.

        Parameters
        ----------
        x : ndarray
            ``[T, B, I]`` (``[B, T, I]`` with ``batch_first=True``), or
            ``[T, I]`` for one unbatched sequence; the layer's dtype.
        h0 : ndarray or tuple of ndarray, optional
            Initial states ``[num_layers*D, B, H_out]`` (LSTM: a tuple
            ``(h0, c0)``, ``c0`` ``[num_layers*D, B, H]``, either may be
            None); None: zeros.  Unbatched: without the B axis.  (PyTorch
            calls this argument ``hx``.)
        lengths : array_like of int [B], optional
            Valid steps of each sequence, any order, in [1, T]; outputs past
            a length are 0, final states are each sequence's own last, and
            the reverse direction starts at each sequence's own last step.
        keep_cache : bool or None
            Keep a cache for :meth:`backward`.  None: only in train mode
            outside :class:`rnncore.no_grad`.

        Returns
        -------
        y : ndarray
            ``[T, B, D*H_out]`` (``[B, T, D*H_out]`` with ``batch_first``).
        h_n : ndarray or tuple of ndarray
            Final states, shaped like ``h0`` (LSTM: ``(h_n, c_n)``).
        """
        return self._forward(x, h0, lengths, keep_cache)

    def _forward(self, x, h0, lengths, keep_cache, packed=None):
        owner = type(self).__name__
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{owner}: x must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"{owner}: x must have dtype {self.dtype} (the module's dtype), got {x.dtype}")
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size or 0 in x.shape:
            batched = "[B, T, I]" if self.batch_first else "[T, B, I]"
            raise ValueError(f"{owner}: x must have shape {batched} or [T, I] (unbatched) with "
                             f"I = {self.input_size} and every size >= 1, got {x.shape}")
        if keep_cache is None:
            keep_cache = self.training and is_grad_enabled()
        keep_cache = _check_bool(owner, "keep_cache", keep_cache)
        batched = x.ndim == 3
        x = self._time_major(x, batched)
        T, B, _ = x.shape
        states = self._check_states(self._split_states(h0, "h0"), "{}0", B, batched)
        dropout = self._dropout_mask if self.training and self.dropout > 0 else None
        y, finals, cache = self._stack.forward(self.params, x, states, lengths, dropout, keep_cache,
                                               packed)
        self._pending = (_Pending(cache, T, B, batched) if keep_cache else
                         "the last forward pass kept no cache (eval mode, rnncore.no_grad() or "
                         "keep_cache=False); run it with keep_cache=True to backpropagate")
        finals = tuple(f if batched else f[:, 0] for f in finals)
        return self._caller_layout(y, batched), self._join_states(finals)

    def prepacked(self) -> "PrepackedLayer":
        """A frozen copy of the layer for repeated inference, its weights prepacked.

        Every layer and direction's weights are copied now and packed by
        the first call, then kept (see :class:`rnncore.functional.PrepackedLSTM`):
        later changes to ``params`` (an optimizer step, ``load_state_dict``)
        do not reach it -- make a new one.  Calling it is ``forward(x, h0,
        lengths, keep_cache=False)`` in eval mode (no dropout), the same
        bits, minus the packing of the weights that every forward pass does.
        """
        return PrepackedLayer(self)

    def _dropout_mask(self, shape):
        """Inverted dropout: keep with probability 1-p and scale by 1/(1-p)."""
        keep = self._dropout_rng.random(shape) >= self.dropout
        return keep * self.dtype.type(1.0 / (1.0 - self.dropout))

    def backward(self, dy, dh_n=None):
        """Backpropagate through the most recent forward pass; add into ``grads``.

        Parameters
        ----------
        dy : ndarray or None
            Gradient of the loss with respect to ``y``, shaped like ``y``
            (values past a sequence's length are ignored); None: zeros.
        dh_n : ndarray or tuple or None
            Gradient with respect to the final states, shaped like ``h_n``
            (LSTM: a tuple ``(dh_n, dc_n)``, either may be None); None: zeros.

        Returns
        -------
        dx : ndarray
            Shaped like ``x`` (0 past each sequence's length).
        dh0 : ndarray or tuple of ndarray
            Gradients of the initial states (LSTM: ``(dh0, dc0)``).

        Raises
        ------
        RuntimeError
            If there is no cache to use: no forward pass yet, an
            inference-only forward pass, or its cache was already used.
        """
        owner = type(self).__name__
        pending = self._pending
        if isinstance(pending, str):
            raise RuntimeError(f"{owner}.backward: {pending}")
        if dy is not None:
            T, B, F = pending.time_steps, pending.batch, self._stack.directions * self._stack.out_size
            shape, meaning = ((B, T, F), "[B, T, D*H_out]") if self.batch_first else \
                ((T, B, F), "[T, B, D*H_out]")
            if not pending.batched:
                shape, meaning = (T, F), "[T, D*H_out]"
            _check_array(owner, "dy", dy, shape, self.dtype, meaning)
            dy = self._time_major(dy, pending.batched)
        dstates = self._check_states(self._split_states(dh_n, "dh_n"), "d{}_n", pending.batch,
                                     pending.batched)
        self._pending = ("the cache of the last forward pass was used by a previous backward call; "
                         "run forward again")
        dx, d0, dparams = self._stack.backward(pending.cache, dy, dstates)
        for name, g in dparams.items():
            self.grads[name] += g
        d0 = tuple(d if pending.batched else d[:, 0] for d in d0)
        return self._caller_layout(dx, pending.batched), self._join_states(d0)


class PrepackedLayer:
    """A layer's frozen copy for inference, from :meth:`LSTM.prepacked` (GRU, RNN).

    ``frozen(x, h0=None, lengths=None)`` returns what ``layer(x, h0,
    lengths)`` returns in eval mode, with the weights of the moment
    ``prepacked()`` was called.
    """

    def __init__(self, layer):
        stack, cell = layer._stack, layer._kind.name.lower()
        self._packs = [functional._prepack(cell, stack._weights(layer.params, k, d))
                       for k in range(stack.num_layers) for d in range(stack.directions)]
        # The layer's argument handling, without its parameters, gradients or mode.
        self._shell = copy.copy(layer)
        self._shell.params, self._shell.grads, self._shell.training = {}, {}, False

    @property
    def packed_bytes(self) -> int:
        """Bytes of the panels packed so far, over every layer and direction."""
        return sum(p.packed_bytes for p in self._packs)

    def __call__(self, x, h0=None, lengths=None):
        return self._shell._forward(x, h0, lengths, False, self._packs)

    def __repr__(self) -> str:
        return f"PrepackedLayer({self._shell!r})"


class LSTM(_Layer):
    """Multi-layer LSTM, optionally bidirectional and with projection, like ``torch.nn.LSTM``.

    Gates i, f, g, o: ``c' = f*c + i*g``, ``h' = o*tanh(c')``; with
    ``proj_size > 0``, ``h' = W_hr (o*tanh(c'))`` has ``proj_size`` features.

    Parameters
    ----------
    input_size : int
        I, the features of the input.
    hidden_size : int
        H, the size of the cell state.
    num_layers : int
        Recurrent layers stacked; layer k > 0 reads the output of layer k-1.
    bias : bool
        With ``bias_ih_l*`` and ``bias_hh_l*``.
    batch_first : bool
        Inputs and outputs are ``[B, T, F]`` instead of ``[T, B, F]``
        (states are always ``[num_layers*D, B, F]``).
    dropout : float
        Dropout probability on the outputs of every layer but the last, in
        train mode only.
    bidirectional : bool
        Add a reverse direction to every layer (D = 2).
    proj_size : int
        0 (none) or the size P < H of the projected hidden state.
    dtype : {"float32", "float64"}
    seed : int, optional
        Makes the initial parameters and the dropout masks reproducible.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        The live parameters (an optimizer may update them in place) and the
        gradients accumulated by :meth:`backward`, by PyTorch's names.
    training : bool

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> lstm = rnncore.LSTM(4, 6, num_layers=2, batch_first=True, proj_size=3, seed=0)
    >>> x = np.zeros((2, 5, 4), np.float32)                      # [B, T, I]
    >>> y, (h_n, c_n) = lstm(x)
    >>> y.shape, h_n.shape, c_n.shape
    ((2, 5, 3), (2, 2, 3), (2, 2, 6))
    >>> sorted(lstm.params)[:3]
    ['bias_hh_l0', 'bias_hh_l1', 'bias_ih_l0']
    """

    _kind = _LSTM_KIND
    _defaults = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                 "bidirectional": False, "proj_size": 0, "dtype": "float32", "seed": None}
    proj_size = _Fixed()

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, dtype="float32", seed=None):
        hidden_size = _check_int("LSTM", "hidden_size", hidden_size)
        proj_size = _check_int("LSTM", "proj_size", proj_size, minimum=0)
        if proj_size >= hidden_size:
            raise ValueError(f"LSTM: proj_size must be smaller than hidden_size={hidden_size}, "
                             f"got {proj_size}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed, proj_size=proj_size)


class GRU(_Layer):
    """Multi-layer GRU, optionally bidirectional, like ``torch.nn.GRU``.

    Gates r, z, n: ``h' = (1-z)*n + z*h``; with ``reset_after=True``
    (PyTorch, cuDNN) ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``, with
    ``reset_after=False`` (the original paper) ``n = tanh(W_in x + b_in +
    W_hn (r*h) + b_hn)``.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        As in :class:`LSTM`.
    reset_after : bool
        Where the reset gate applies (see above).
    dtype : {"float32", "float64"}
    seed : int, optional

    Attributes
    ----------
    params, grads : dict of str to ndarray
    training : bool

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> gru = rnncore.GRU(3, 4, bidirectional=True, dtype="float64", seed=0)
    >>> y, h_n = gru(np.ones((6, 2, 3)), lengths=[6, 3])
    >>> y.shape, h_n.shape, float(abs(y[3:, 1]).max())
    ((6, 2, 8), (2, 2, 4), 0.0)
    >>> dx, dh0 = gru.backward(np.ones_like(y))
    >>> dx.shape, dh0.shape
    ((6, 2, 3), (2, 2, 4))
    """

    _kind = _GRU_KIND
    _defaults = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0,
                 "bidirectional": False, "reset_after": True, "dtype": "float32", "seed": None}
    reset_after = _Fixed()

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, reset_after=True, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed,
                         reset_after=_check_bool("GRU", "reset_after", reset_after))


def _check_nonlinearity(owner, value):
    if value not in ("tanh", "relu"):
        raise ValueError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {value!r}")
    return value


class RNN(_Layer):
    """Multi-layer Elman RNN, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, like ``torch.nn.RNN``.

    Parameters
    ----------
    input_size, hidden_size, num_layers
        As in :class:`LSTM`.
    nonlinearity : {"tanh", "relu"}
        ``act``; third positional argument after ``num_layers``, as in PyTorch.
    bias, batch_first, dropout, bidirectional
        As in :class:`LSTM`.
    dtype : {"float32", "float64"}
    seed : int, optional

    Attributes
    ----------
    params, grads : dict of str to ndarray
    training : bool

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> rnn = rnncore.RNN(2, 3, 2, "relu", seed=0)
    >>> y, h_n = rnn(np.ones((4, 2), np.float32))                 # unbatched [T, I]
    >>> y.shape, h_n.shape
    ((4, 3), (2, 3))
    """

    _kind = _RNN_KIND
    _defaults = {"num_layers": 1, "nonlinearity": "tanh", "bias": True, "batch_first": False,
                 "dropout": 0.0, "bidirectional": False, "dtype": "float32", "seed": None}
    nonlinearity = _Fixed()

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, seed,
                         nonlinearity=_check_nonlinearity("RNN", nonlinearity))
