"""One time step of a recurrent cell, for autoregressive decoding.

:class:`LSTMCell`, :class:`GRUCell` and :class:`RNNCell` take PyTorch's
constructor arguments and parameter names (``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``) and run one step per call with rnncore's
kernels: feed each output back as the next input.  A cell can share the
weights of one layer and direction of a trained :class:`rnncore.LSTM`,
:class:`rnncore.GRU` or :class:`rnncore.RNN` without copying them
(:meth:`~LSTMCell.from_layer`).

Cells run forward only (no cache, no gradients): train with the layers,
which backpropagate through whole sequences, and decode with the cells.

Examples
--------
>>> import numpy as np, rnncore
>>> lstm = rnncore.LSTM(3, 3, num_layers=2, seed=0)
>>> cells = [rnncore.LSTMCell.from_layer(lstm, k) for k in range(2)]
>>> x, states = np.zeros((1, 3), np.float32), [None, None]   # B = 1
>>> for t in range(4):                                      # greedy decoding
...     for k, cell in enumerate(cells):
...         states[k] = cell(x, states[k])
...         x = states[k][0]
>>> x.shape
(1, 3)
"""

from __future__ import annotations

import numpy as np

from .layers import (_GRU_KIND, _LSTM_KIND, _RNN_KIND, _check_array, _check_bool, _check_dtype,
                     _check_int, _check_nonlinearity, _check_seed, _Fixed, _Layer, _Module,
                     _run_forward)

__all__ = ["LSTMCell", "GRUCell", "RNNCell"]


class _Cell(_Module):
    """The machinery shared by :class:`LSTMCell`, :class:`GRUCell` and :class:`RNNCell`."""

    # A functional.Prepacked* of the cell's weights, run instead of params
    # (rnncore.models' decoders set it for the length of a decoding).
    _prepacked = None

    def __init__(self, input_size, hidden_size, bias, dtype, seed, **options):
        owner = type(self).__name__
        config = {
            "input_size": _check_int(owner, "input_size", input_size),
            "hidden_size": _check_int(owner, "hidden_size", hidden_size),
            "bias": _check_bool(owner, "bias", bias),
            **options,
            "dtype": _check_dtype(owner, dtype),
            "seed": _check_seed(owner, seed),
        }
        shapes = self._stack_of(config).role_shapes(0)
        params = self._initial_params(shapes, config["hidden_size"], config["dtype"], config["seed"])
        self._setup(config, params)

    @classmethod
    def from_layer(cls, layer, k=0, reverse=False):
        """A cell that computes with layer ``k``, direction ``reverse`` of ``layer``.

        The cell's ``params`` are the layer's arrays (no copy): later
        updates of the layer's parameters show in the cell.

        Parameters
        ----------
        layer : LSTM, GRU or RNN
            Of this cell's kind.
        k : int
            The layer, ``0 <= k < layer.num_layers``.
        reverse : bool
            The reverse direction of a bidirectional layer.

        Returns
        -------
        cell : same type as ``cls``

        Examples
        --------
        >>> import numpy as np, rnncore
        >>> gru = rnncore.GRU(2, 4, num_layers=2, bidirectional=True, seed=0)
        >>> cell = rnncore.GRUCell.from_layer(gru, k=1, reverse=True)
        >>> cell.input_size, cell.params["weight_hh"] is gru.params["weight_hh_l1_reverse"]
        (8, True)
        """
        owner = f"{cls.__name__}.from_layer"
        if not isinstance(layer, _Layer) or layer._kind is not cls._kind:
            raise TypeError(f"{owner}: layer must be an rnncore.{cls._kind.name}, got {type(layer).__name__}")
        k = _check_int(owner, "k", k, minimum=0)
        if k >= layer.num_layers:
            raise ValueError(f"{owner}: k must be in [0, num_layers) = [0, {layer.num_layers}), got {k}")
        if _check_bool(owner, "reverse", reverse) and not layer.bidirectional:
            raise ValueError(f"{owner}: reverse=True needs a bidirectional layer")
        stack = layer._stack
        config = {"input_size": stack.layer_input_size(k), "hidden_size": layer.hidden_size,
                  **{key: value for key, value in layer.config.items() if key in cls._defaults},
                  "seed": None}
        cell = cls.__new__(cls)
        names = stack.names(k, int(reverse))
        cell._setup(config, {role: layer.params[name] for role, name in names.items()})
        return cell

    def forward(self, x, hx=None):
        """One step.

        Parameters
        ----------
        x : ndarray, [B, I] or [I] (unbatched)
        hx : ndarray or tuple of ndarray, optional
            The state ``h`` [B, H_out] (LSTMCell: a tuple ``(h, c)``, ``c``
            [B, H]), without B when unbatched; None: zeros.

        Returns
        -------
        ndarray or tuple of ndarray
            The next state, shaped like ``hx`` (LSTMCell: ``(h', c')``).
        """
        owner = type(self).__name__
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{owner}: x must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"{owner}: x must have dtype {self.dtype} (the module's dtype), got {x.dtype}")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size or 0 in x.shape:
            raise ValueError(f"{owner}: x must have shape [B, I] or [I] with I = {self.input_size} "
                             f"and B >= 1, got {x.shape}")
        batched = x.ndim == 2
        B = x.shape[0] if batched else 1
        states = []
        for s, size, value in zip(self._kind.states, self._stack.state_sizes(),
                                  self._split_states(hx, "hx")):
            if value is not None:
                shape, meaning = ((B, size), f"[B, {size}]") if batched else ((size,), f"[{size}]")
                _check_array(owner, s, value, shape, self.dtype, meaning)
                value = np.ascontiguousarray(value.reshape(B, size))
            states.append(value)
        x = np.ascontiguousarray(x.reshape(1, B, self.input_size))
        _, finals, _ = _run_forward(self._kind, x, tuple(states), self.params, self._stack.options,
                                    packed=self._prepacked)
        return self._join_states(tuple(f if batched else f[0] for f in finals))


class LSTMCell(_Cell):
    """One LSTM step, like ``torch.nn.LSTMCell``: ``c' = f*c + i*g``, ``h' = o*tanh(c')``.

    Parameters
    ----------
    input_size : int
        I.
    hidden_size : int
        H.
    bias : bool
        With ``bias_ih`` and ``bias_hh``.
    proj_size : int
        0 (as PyTorch's cell) or P < H: ``h' = W_hr (o*tanh(c'))`` has P
        features, as one step of ``LSTM(..., proj_size=P)``.
    dtype : {"float32", "float64"}
    seed : int, optional
        Makes the initial parameters (U(-1/sqrt(H), 1/sqrt(H))) reproducible.

    Attributes
    ----------
    params : dict of str to ndarray
        ``weight_ih`` [4H, I], ``weight_hh`` [4H, H_out], ``bias_ih``,
        ``bias_hh`` [4H], ``weight_hr`` [P, H] with projection.

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> cell = rnncore.LSTMCell(3, 5, seed=0)
    >>> h, c = cell(np.ones((2, 3), np.float32))
    >>> h, c = cell(np.ones((2, 3), np.float32), (h, c))
    >>> h.shape, c.shape
    ((2, 5), (2, 5))
    """

    _kind = _LSTM_KIND
    _defaults = {"bias": True, "proj_size": 0, "dtype": "float32", "seed": None}
    proj_size = _Fixed()

    def __init__(self, input_size, hidden_size, bias=True, *, proj_size=0, dtype="float32", seed=None):
        hidden_size = _check_int("LSTMCell", "hidden_size", hidden_size)
        proj_size = _check_int("LSTMCell", "proj_size", proj_size, minimum=0)
        if proj_size >= hidden_size:
            raise ValueError(f"LSTMCell: proj_size must be smaller than hidden_size={hidden_size}, "
                             f"got {proj_size}")
        super().__init__(input_size, hidden_size, bias, dtype, seed, proj_size=proj_size)


class GRUCell(_Cell):
    """One GRU step, like ``torch.nn.GRUCell``: ``h' = (1-z)*n + z*h``.

    Parameters
    ----------
    input_size, hidden_size, bias
        As in :class:`LSTMCell`.
    reset_after : bool
        As in :class:`rnncore.GRU`: True is PyTorch's cell.
    dtype : {"float32", "float64"}
    seed : int, optional

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> cell = rnncore.GRUCell(3, 4, dtype="float64", seed=0)
    >>> cell(np.ones(3)).shape                                   # unbatched
    (4,)
    """

    _kind = _GRU_KIND
    _defaults = {"bias": True, "reset_after": True, "dtype": "float32", "seed": None}
    reset_after = _Fixed()

    def __init__(self, input_size, hidden_size, bias=True, *, reset_after=True, dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, bias, dtype, seed,
                         reset_after=_check_bool("GRUCell", "reset_after", reset_after))


class RNNCell(_Cell):
    """One Elman step, like ``torch.nn.RNNCell``: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    Parameters
    ----------
    input_size, hidden_size, bias
        As in :class:`LSTMCell`.
    nonlinearity : {"tanh", "relu"}
    dtype : {"float32", "float64"}
    seed : int, optional

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> cell = rnncore.RNNCell(2, 3, nonlinearity="relu", seed=0)
    >>> h = cell(np.ones((5, 2), np.float32))
    >>> h.shape, bool((h >= 0).all())
    ((5, 3), True)
    """

    _kind = _RNN_KIND
    _defaults = {"bias": True, "nonlinearity": "tanh", "dtype": "float32", "seed": None}
    nonlinearity = _Fixed()

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *,
                 dtype="float32", seed=None):
        super().__init__(input_size, hidden_size, bias, dtype, seed,
                         nonlinearity=_check_nonlinearity("RNNCell", nonlinearity))
