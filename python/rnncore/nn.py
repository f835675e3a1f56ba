"""Feed-forward building blocks for models around the recurrent layers.

Every module owns its parameters as NumPy arrays and computes with them
directly: ``module.params`` maps names to those live arrays (an optimizer
updates them in place) and ``module.grads`` maps the same names to arrays
into which ``backward`` *accumulates* (``zero_grad()`` clears them).
``forward`` keeps what ``backward`` needs; ``backward(dy)`` returns the
gradient with respect to the input of the last ``forward``.

A model is a :class:`Module` whose attributes are modules: its ``params``,
``grads`` and ``state_dict()`` collect those of its children under dotted
names (``encoder.weight_ih_l0``, ``head.layers.0.weight``).  A child is any
object with ``params`` and ``grads`` dicts and ``zero_grad``, ``train``,
``eval``, ``state_dict`` and ``load_state_dict`` methods, so the recurrent
layers of rnncore (``rnncore.LSTM`` ...) are children like the modules here.

Initialisation follows PyTorch's defaults and is reproducible from
``seed`` (an int, a ``numpy.random.Generator`` or None); values are drawn
in float64 and rounded to ``dtype`` (float32 by default, or float64).

Examples
--------
>>> import numpy as np
>>> from rnncore import nn
>>> mlp = nn.MLP([3, 8, 2], activation="tanh", seed=0)
>>> sorted(mlp.params)
['layers.0.bias', 'layers.0.weight', 'layers.2.bias', 'layers.2.weight']
>>> y = mlp(np.ones((5, 3), np.float32))
>>> dx = mlp.backward(np.ones_like(y))
>>> mlp.grads["layers.2.bias"]
array([5., 5.], dtype=float32)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np

from . import _core

__all__ = ["Module", "Linear", "Embedding", "Dropout", "Activation", "MLP"]

Seed = Union[int, np.random.Generator, None]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_CHILD_METHODS = ("zero_grad", "train", "eval", "state_dict", "load_state_dict")


# --------------------------------------------------------------------------
# Argument checks shared by nn, losses, optim and training
# --------------------------------------------------------------------------


def _float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype; TypeError unless float32 or float64."""
    try:
        result = np.dtype(dtype) if dtype is not None else None
    except TypeError:
        result = None
    if result is None or result not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return result


def _check_float_array(arg: str, value: Any, dtype: Optional[np.dtype] = None) -> np.ndarray:
    """TypeError naming ``arg`` unless ``value`` is a float32/float64 ndarray (of ``dtype``)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{arg} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype not in _FLOAT_DTYPES or (dtype is not None and value.dtype != dtype):
        expected = dtype if dtype is not None else "float32 or float64"
        raise TypeError(f"{arg} must have dtype {expected}, got {value.dtype}")
    return value


def _check_int_array(arg: str, value: Any) -> np.ndarray:
    """TypeError naming ``arg`` unless ``value`` is an ndarray of integers."""
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.integer):
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{arg} must be a numpy.ndarray of integers, got {got}")
    return value


def _check_shape(arg: str, value: np.ndarray, shape: tuple) -> None:
    if value.shape != tuple(shape):
        raise ValueError(f"{arg} must have shape {tuple(shape)}, got {value.shape}")


def _check_count(arg: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{arg} must be >= {minimum}, got {value}")
    return int(value)


def _check_number(arg: str, value: Any) -> float:
    """``value`` as a float, NaN and infinities included (bools, strings ... refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{arg} must be a real number, got {type(value).__name__}")
    return float(value)


def _check_real(
    arg: str, value: Any, low: float = -math.inf, high: float = math.inf, *, high_open: bool = False
) -> float:
    """``value`` as a float in ``[low, high]``, or ``[low, high)`` (bools and NaN refused)."""
    _check_number(arg, value)
    if not (low <= value < high if high_open else low <= value <= high):
        raise ValueError(f"{arg} must be in [{low:g}, {high:g}{')' if high_open else ']'}, got {value}")
    return float(value)


def _check_flag(arg: str, value: Any) -> bool:
    """``value`` as a bool; TypeError for anything else (no truthiness: ``"no"`` is not False)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{arg} must be a bool, got {type(value).__name__}")
    return bool(value)


def _check_choice(arg: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{arg} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _state_problems(expected: Mapping[str, np.ndarray], given: Any, arg: str = "state") -> list:
    """Every way ``given`` (argument ``arg``) fails to match ``expected``: names, shapes, dtypes."""
    if not isinstance(given, Mapping):
        raise TypeError(f"{arg} must be a dict of name -> numpy.ndarray, got {type(given).__name__}")
    problems = []
    missing = [name for name in expected if name not in given]
    unexpected = [name for name in given if name not in expected]
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected: {', '.join(map(str, unexpected))}")
    for name, target in expected.items():
        if name not in given:
            continue
        value = given[name]
        if not isinstance(value, np.ndarray):
            problems.append(f"{name}: expected a numpy.ndarray, got {type(value).__name__}")
        elif value.shape != target.shape:
            problems.append(f"{name}: expected shape {target.shape}, got {value.shape}")
        elif value.dtype != target.dtype:
            problems.append(f"{name}: expected dtype {target.dtype}, got {value.dtype}")
    return problems


def _raise_problems(what: str, problems: list) -> None:
    if problems:
        raise ValueError(f"{what} does not match:\n  " + "\n  ".join(problems))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, accurate and warning-free for any finite x."""
    return np.exp(-np.logaddexp(0, -x))


# --------------------------------------------------------------------------
# Module
# --------------------------------------------------------------------------


def _is_child(obj: Any) -> bool:
    """True for a Module or any object offering the same parameter protocol."""
    if isinstance(obj, Module):
        return True
    if isinstance(obj, type) or not all(callable(getattr(obj, m, None)) for m in _CHILD_METHODS):
        return False
    return isinstance(getattr(obj, "params", None), dict) and isinstance(getattr(obj, "grads", None), dict)


class Module:
    """Base of every module: parameters, gradients, children, modes, state.

    A subclass calls ``super().__init__()`` first, registers its own arrays
    with :meth:`add_param` and defines ``forward`` (also reached by calling
    the module) and ``backward``.  Children are found among the instance's
    public attributes: a child, or a list or tuple of children (named
    ``name.0``, ``name.1``, ...).  :meth:`add_module` sets a child under a
    name chosen at run time.

    ``params`` and ``grads`` are flat dicts built on each access; their
    arrays are the live ones, so change them in place (``p -= lr * g``,
    ``np.copyto``) -- assigning a new array to a key has no effect.  A
    module reached twice (shared) contributes its parameters once, under
    the first name.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore import nn
    >>> class Classifier(nn.Module):
    ...     def __init__(self, seed=None):
    ...         super().__init__()
    ...         rng = np.random.default_rng(seed)
    ...         self.embed = nn.Embedding(10, 4, seed=rng)
    ...         self.head = nn.Linear(4, 3, seed=rng)
    ...     def forward(self, tokens):
    ...         return self.head(self.embed(tokens))
    ...     def backward(self, dy):
    ...         self.embed.backward(self.head.backward(dy))
    >>> model = Classifier(seed=0)
    >>> list(model.params)
    ['embed.weight', 'head.weight', 'head.bias']
    >>> logits = model(np.array([[1, 2], [3, 4]]))
    >>> model.backward(np.ones_like(logits))
    >>> float(model.grads["head.bias"][0])
    4.0
    >>> state = model.state_dict()
    >>> model.load_state_dict(state)
    """

    def __init__(self) -> None:
        self._params: dict = {}
        self._grads: dict = {}
        self._cache: Any = None
        self.training = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def add_param(self, name: str, value: np.ndarray) -> None:
        """Own the float array ``value`` as parameter ``name``, with a zero gradient.

        Examples
        --------
        >>> import numpy as np
        >>> from rnncore import nn
        >>> scale = nn.Module()
        >>> scale.add_param("gain", np.ones(3, np.float32))
        >>> scale.params, scale.grads
        ({'gain': array([1., 1., 1.], dtype=float32)}, {'gain': array([0., 0., 0.], dtype=float32)})
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"name must be a non-empty str without '.', got {name!r}")
        self._params[name] = _check_float_array("value", value)
        self._grads[name] = np.zeros_like(value)

    def _cached(self) -> Any:
        """What the last forward kept for backward."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    def add_module(self, name: str, module: Any) -> None:
        """Set ``module`` as the child ``name`` (an attribute of that name).

        Examples
        --------
        >>> from rnncore import nn
        >>> m = nn.Module()
        >>> for k in range(2):
        ...     m.add_module(f"layer{k}", nn.Linear(2, 2, seed=k))
        >>> list(m.params)
        ['layer0.weight', 'layer0.bias', 'layer1.weight', 'layer1.bias']
        """
        if not isinstance(name, str) or not name or "." in name or name.startswith("_"):
            raise ValueError(f"name must be a non-empty str without '.' nor a leading '_', got {name!r}")
        if not _is_child(module):
            raise TypeError(f"module must be a Module or offer params, grads and {', '.join(_CHILD_METHODS)}")
        setattr(self, name, module)

    def named_children(self) -> dict:
        """The child modules by name, each once, in attribute order."""
        found: dict = {}
        for attr, value in vars(self).items():
            if attr.startswith("_"):
                continue
            if isinstance(value, (list, tuple)):
                candidates = [(f"{attr}.{k}", item) for k, item in enumerate(value)]
            else:
                candidates = [(attr, value)]
            for name, child in candidates:
                if _is_child(child) and all(child is not seen for seen in found.values()):
                    found[name] = child
        return found

    def _entries(self) -> list:
        """``(dotted name, parameter, gradient)`` for this module and its children."""
        entries = [(name, p, self._grads[name]) for name, p in self._params.items()]
        for prefix, child in self.named_children().items():
            grads = child.grads
            entries += [(f"{prefix}.{name}", p, grads[name]) for name, p in child.params.items()]
        seen: set = set()
        unique = []
        for name, p, g in entries:
            if id(p) not in seen:
                seen.add(id(p))
                unique.append((name, p, g))
        return unique

    @property
    def params(self) -> dict:
        """Dotted name -> live parameter array."""
        return {name: p for name, p, _ in self._entries()}

    @property
    def grads(self) -> dict:
        """Dotted name -> gradient array that ``backward`` accumulates into."""
        return {name: g for name, _, g in self._entries()}

    def zero_grad(self) -> None:
        """Set every gradient of this module and its children to zero."""
        for g in self._grads.values():
            g.fill(0)
        for child in self.named_children().values():
            child.zero_grad()

    def train(self, mode: bool = True) -> "Module":
        """Set training mode (dropout active) here and in every child; returns self."""
        self.training = _check_flag("mode", mode)
        for child in self.named_children().values():
            if mode:
                child.train()
            else:
                child.eval()
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (dropout off) here and in every child; returns self."""
        return self.train(False)

    def state_dict(self) -> dict:
        """Copies of all parameters under dotted names (children's ``state_dict`` included)."""
        state = {name: p.copy() for name, p in self._params.items()}
        for prefix, child in self.named_children().items():
            state.update({f"{prefix}.{name}": value for name, value in child.state_dict().items()})
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Copy ``state`` into the parameters, in place (optimizers keep working).

        Names, shapes and dtypes must match :meth:`state_dict` exactly;
        otherwise nothing is loaded and one ValueError lists every problem.

        Examples
        --------
        >>> import numpy as np
        >>> from rnncore import nn
        >>> layer = nn.Linear(2, 3, seed=0)
        >>> layer.load_state_dict({"weight": np.zeros((2, 3), np.float32)})
        Traceback (most recent call last):
        ...
        ValueError: state_dict does not match:
          missing: bias
          weight: expected shape (3, 2), got (2, 3)
        """
        _raise_problems("state_dict", _state_problems(self.state_dict(), state))
        for name, p in self._params.items():
            np.copyto(p, state[name])
        for prefix, child in self.named_children().items():
            start = prefix + "."
            child.load_state_dict({k[len(start):]: v for k, v in state.items() if k.startswith(start)})


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------


class Linear(Module):
    """Affine map ``y = x @ weight.T + bias`` over the last axis.

    Parameters
    ----------
    in_features, out_features : int
        Sizes ``I`` and ``O``.
    bias : bool
        Whether to add a learned bias.
    dtype : float32 or float64
    seed : int, numpy.random.Generator or None
        Initialisation as PyTorch: weight ``[O, I]`` and bias ``[O]`` from
        ``U(-1/sqrt(I), 1/sqrt(I))``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.nn import Linear
    >>> layer = Linear(3, 2, seed=0)
    >>> y = layer(np.ones((4, 5, 3), np.float32))          # x: [..., I]
    >>> y.shape
    (4, 5, 2)
    >>> layer.backward(np.ones_like(y)).shape
    (4, 5, 3)
    >>> layer.grads["bias"]
    array([20., 20.], dtype=float32)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, dtype: Any = "float32", seed: Seed = None
    ) -> None:
        super().__init__()
        self.in_features = _check_count("in_features", in_features)
        self.out_features = _check_count("out_features", out_features)
        dtype = _float_dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.in_features)
        self.add_param("weight", rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(dtype))
        if bias:
            self.add_param("bias", rng.uniform(-bound, bound, self.out_features).astype(dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x [..., I]`` -> ``y [..., O]``."""
        weight = self._params["weight"]
        _check_float_array("x", x, weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape [..., {self.in_features}], got {x.shape}")
        self._cache = x
        rows = np.ascontiguousarray(x.reshape(-1, self.in_features))
        y = np.empty((rows.shape[0], self.out_features), dtype=weight.dtype)
        if "bias" in self._params:
            y[...] = self._params["bias"]
        _core._gemm("N", "T", 1.0, rows, weight, 1.0 if "bias" in self._params else 0.0, y)
        return y.reshape(*x.shape[:-1], self.out_features)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Accumulate ``dweight``, ``dbias``; return ``dx [..., I]``."""
        x = self._cached()
        weight = self._params["weight"]
        _check_float_array("dy", dy, weight.dtype)
        _check_shape("dy", dy, x.shape[:-1] + (self.out_features,))
        dy_rows = np.ascontiguousarray(dy.reshape(-1, self.out_features))
        x_rows = np.ascontiguousarray(x.reshape(-1, self.in_features))
        _core._gemm("T", "N", 1.0, dy_rows, x_rows, 1.0, self._grads["weight"])
        if "bias" in self._grads:
            self._grads["bias"] += dy_rows.sum(axis=0)
        dx = np.empty((dy_rows.shape[0], self.in_features), dtype=weight.dtype)
        _core._gemm("N", "N", 1.0, dy_rows, weight, 0.0, dx)
        return dx.reshape(*x.shape)


class Embedding(Module):
    """Lookup table: integer indices ``[...]`` -> vectors ``[..., D]``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
        Table size ``N`` and vector size ``D``; ``weight`` is ``[N, D]``,
        initialised from ``N(0, 1)`` as PyTorch does.
    padding_idx : int, optional
        A row (negative counts from the end) initialised to zeros that
        never receives a gradient: the embedding of padding.
    dtype : float32 or float64
    seed : int, numpy.random.Generator or None

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.nn import Embedding
    >>> embed = Embedding(5, 3, padding_idx=0, seed=0)
    >>> tokens = np.array([[2, 0], [2, 4]])                   # [B, T]
    >>> vectors = embed(tokens)
    >>> vectors.shape, bool((vectors[0, 1] == 0).all())
    ((2, 2, 3), True)
    >>> embed.backward(np.ones_like(vectors))
    >>> embed.grads["weight"][:, 0]
    array([0., 0., 2., 0., 1.], dtype=float32)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: Optional[int] = None,
        *,
        dtype: Any = "float32",
        seed: Seed = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _check_count("num_embeddings", num_embeddings)
        self.embedding_dim = _check_count("embedding_dim", embedding_dim)
        if padding_idx is not None:
            n = self.num_embeddings
            padding_idx = _check_count("padding_idx", padding_idx, minimum=-n)
            if padding_idx >= n:
                raise ValueError(f"padding_idx must be in [{-n}, {n}), got {padding_idx}")
            padding_idx %= n
        self.padding_idx = padding_idx
        rng = np.random.default_rng(seed)
        weight = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(_float_dtype(dtype))
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.add_param("weight", weight)

    def forward(self, indices: np.ndarray) -> np.ndarray:
        """``indices [...]`` (integers in ``[0, N)``) -> ``[..., D]``."""
        _check_int_array("indices", indices)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_embeddings):
            raise ValueError(
                f"indices must be in [0, {self.num_embeddings}), got values in [{indices.min()}, {indices.max()}]"
            )
        self._cache = indices
        return self._params["weight"][indices]

    def backward(self, dy: np.ndarray) -> None:
        """Accumulate ``dweight`` (rows summed per index, padding row skipped)."""
        indices = self._cached()
        weight = self._params["weight"]
        _check_float_array("dy", dy, weight.dtype)
        _check_shape("dy", dy, indices.shape + (self.embedding_dim,))
        rows = indices.reshape(-1)
        dy_rows = dy.reshape(-1, self.embedding_dim)
        if self.padding_idx is not None:
            keep = rows != self.padding_idx
            rows, dy_rows = rows[keep], dy_rows[keep]
        np.add.at(self._grads["weight"], rows, dy_rows)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``p``
    and scale the rest by ``1/(1-p)``; in evaluation, the identity.

    The mask of the last forward is reused by ``backward``.  Masks come from
    the module's own generator, so a seed makes them reproducible.

    Parameters
    ----------
    p : float
        Drop probability in ``[0, 1]``.
    seed : int, numpy.random.Generator or None

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.nn import Dropout
    >>> drop = Dropout(0.5, seed=0)
    >>> y = drop(np.ones(6))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> bool((drop.backward(np.ones(6)) == y).all())
    True
    >>> drop.eval()(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, *, seed: Seed = None) -> None:
        super().__init__()
        self.p = _check_real("p", p, 0.0, 1.0)
        self._rng = np.random.default_rng(seed)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Same shape and dtype as ``x``."""
        _check_float_array("x", x)
        if not self.training or self.p == 0.0:
            self._cache = (x.shape, x.dtype.type(1))
            return x
        scale = 1.0 / (1.0 - self.p) if self.p < 1.0 else 0.0
        mask = (self._rng.random(x.shape) >= self.p) * x.dtype.type(scale)
        self._cache = (x.shape, mask)
        return x * mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy`` times the mask of the last forward."""
        shape, mask = self._cached()
        _check_float_array("dy", dy)
        _check_shape("dy", dy, shape)
        return dy * mask


_GELU_C = math.sqrt(2.0 / math.pi)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    """``tanh(sqrt(2/pi) (x + 0.044715 x^3))``, the inner part of GELU's tanh approximation."""
    return np.tanh(_GELU_C * (x + 0.044715 * x**3))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _gelu_tanh(x))


def _gelu_backward(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    t = _gelu_tanh(x)
    return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * x * x))


# name -> (forward(x) -> y, backward(x, y, dy) -> dx), from the values forward stored
_ACTIVATIONS: dict = {
    "identity": (lambda x: x, lambda x, y, dy: dy),
    "relu": (lambda x: np.maximum(x, 0), lambda x, y, dy: dy * (y > 0)),
    "tanh": (np.tanh, lambda x, y, dy: dy * (1 - y * y)),
    "sigmoid": (_sigmoid, lambda x, y, dy: dy * (y * (1 - y))),
    "gelu": (_gelu, _gelu_backward),
}


class Activation(Module):
    """Element-wise nonlinearity without parameters.

    Parameters
    ----------
    name : {"relu", "tanh", "sigmoid", "identity", "gelu"}
        ``"gelu"`` is the tanh approximation,
        ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, equal to
        PyTorch's ``gelu(x, approximate="tanh")``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.nn import Activation
    >>> act = Activation("relu")
    >>> act(np.array([-1.0, 2.0]))
    array([0., 2.])
    >>> act.backward(np.array([5.0, 5.0]))
    array([0., 5.])
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = _check_choice("name", name, list(_ACTIVATIONS))
        self._forward, self._backward = _ACTIVATIONS[name]

    def forward(self, x: np.ndarray) -> np.ndarray:
        _check_float_array("x", x)
        y = self._forward(x)
        self._cache = (x, y)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, y = self._cached()
        _check_float_array("dy", dy, x.dtype)
        _check_shape("dy", dy, x.shape)
        return self._backward(x, y, dy)


class MLP(Module):
    """Multi-layer perceptron: ``Linear -> activation [-> Dropout]`` per hidden
    layer, then ``Linear -> output_activation``.

    The layers are in ``self.layers`` (parameters ``layers.0.weight``, ...,
    the same names as a ``torch.nn.Sequential`` built the same way stored
    as ``layers``); identity activations add no layer.

    Parameters
    ----------
    sizes : sequence of int
        Widths ``[in, hidden..., out]``, at least two.
    activation : str
        Nonlinearity after each hidden layer (see :class:`Activation`).
    output_activation : str
        Nonlinearity after the last layer, ``"identity"`` by default
        (logits for :func:`rnncore.losses.cross_entropy`).
    bias : bool
    dropout : float
        Drop probability after each hidden activation (0: no Dropout).
    dtype : float32 or float64
    seed : int, numpy.random.Generator or None
        One generator initialises all layers in order and draws the
        dropout masks.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.nn import MLP
    >>> mlp = MLP([4, 16, 16, 3], activation="relu", dropout=0.1, seed=0)
    >>> [type(layer).__name__ for layer in mlp.layers]
    ['Linear', 'Activation', 'Dropout', 'Linear', 'Activation', 'Dropout', 'Linear']
    >>> mlp(np.zeros((2, 7, 4), np.float32)).shape
    (2, 7, 3)
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        *,
        output_activation: str = "identity",
        bias: bool = True,
        dropout: float = 0.0,
        dtype: Any = "float32",
        seed: Seed = None,
    ) -> None:
        super().__init__()
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
            raise ValueError(f"sizes must be a sequence of at least two ints [in, ..., out], got {sizes!r}")
        sizes = [_check_count(f"sizes[{k}]", n) for k, n in enumerate(sizes)]
        _check_choice("activation", activation, list(_ACTIVATIONS))
        _check_choice("output_activation", output_activation, list(_ACTIVATIONS))
        dropout = _check_real("dropout", dropout, 0.0, 1.0)
        rng = np.random.default_rng(seed)
        layers: list = []
        for k in range(len(sizes) - 1):
            hidden = k < len(sizes) - 2
            layers.append(Linear(sizes[k], sizes[k + 1], bias, dtype=dtype, seed=rng))
            act = activation if hidden else output_activation
            if act != "identity":
                layers.append(Activation(act))
            if hidden and dropout > 0:
                layers.append(Dropout(dropout, seed=rng))
        self.layers = layers

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x [..., in]`` -> ``[..., out]``."""
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Accumulate every layer's gradients; return ``dx [..., in]``."""
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy
