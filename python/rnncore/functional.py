"""One recurrent layer, one direction, a whole sequence per call.

Every function here runs rnncore's C++ kernels.  Shapes are time-major and
use fixed letters: ``x`` is ``[T, B, I]``, states are ``[B, H]``, outputs
``[T, B, H]``; weights and biases have PyTorch's names, shapes and gate
orders (LSTM ``i, f, g, o``; GRU ``r, z, n``), so the arrays of a
``torch.nn.LSTM``/``GRU``/``RNN`` layer can be passed unchanged.  All float
arrays share one dtype, float32 or float64, and must be C-contiguous.

``lengths`` (``[B]`` integers, any order, each in ``[1, T]``) makes a batch
of variable-length sequences: outputs past a sequence's length are exactly
zero, its final state is its state after its own last step, and with
``reverse=True`` it is read from its own last step back to the first.

A forward pass with ``keep_cache=True`` returns an opaque cache for the
matching ``*_backward``; with ``keep_cache=False`` nothing is kept per step
and the cache is ``None``.  The cache holds its own copies of the weights
and initial states, so those may change after forward returns; ``x`` and
``y`` it keeps by reference, as PyTorch saves tensors (no copy of the
biggest arrays): backward raises ValueError if either was modified in
place in between, rather than return wrong gradients.  The cache is never
modified, so backward may use it from any thread.

:class:`PrepackedLSTM`, :class:`PrepackedGRU` and :class:`PrepackedRNN` copy a
layer's weights once and keep their packing into the GEMM's panels, which
every forward pass otherwise redoes: for inference calls repeated many
times, with the plain forward's results bit for bit.

Non-finite values never raise: NaN or inf in inputs, states or weights go
through the kernels, and every output (and gradient) a NaN reaches is NaN,
exactly as in :mod:`rnncore.reference`.  An infinity may saturate a gate
(a finite result) or meet another one (inf - inf, 0 * inf: NaN), depending
on the order of operations.  Training tools stop on them:
:func:`rnncore.clip_grad_norm` and ``Optimizer.step`` raise
FloatingPointError (``Optimizer.step(..., skip_nonfinite=True)`` skips the
step instead).
"""

from __future__ import annotations

import numpy as np

from . import _core
from .reference import GRUGrads, LSTMGrads, RNNGrads  # one definition of each

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
    "PrepackedLSTM",
    "PrepackedGRU",
    "PrepackedRNN",
]


def _check_nonlinearity(fn: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{fn}: nonlinearity must be 'tanh' or 'relu', got {type(value).__name__}")


def _flag(fn: str, name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


def lstm_forward(
    x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
    weight_hr=None, lengths=None, reverse=False, keep_cache=True,
):
    """Run an LSTM layer over a sequence.

    Parameters
    ----------
    x : ndarray, [T, B, I]
    h0, c0 : ndarray [B, H] or None
        Initial hidden and cell states (None: zeros).  With a projection
        h0 is [B, P].
    weight_ih : ndarray, [4H, I]
    weight_hh : ndarray, [4H, H] (with a projection [4H, P])
    bias_ih, bias_hh : ndarray [4H] or None
        Both or neither.
    weight_hr : ndarray [P, H] or None
        Projection of the hidden state (PyTorch's ``proj_size``):
        ``h = weight_hr @ (o * tanh(c))``, so ``h`` and ``y`` are P wide.
    lengths : ndarray [B] of int, optional
    reverse : bool
        Run from each sequence's last step to its first.
    keep_cache : bool
        Keep what :func:`lstm_backward` needs.

    Returns
    -------
    y : ndarray, [T, B, H] ([T, B, P] with a projection)
    h_n : ndarray, [B, H] ([B, P] with a projection)
    c_n : ndarray, [B, H]
    cache : object or None

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.functional import lstm_forward, lstm_backward
    >>> x = np.ones((4, 1, 2))
    >>> w_ih, w_hh = np.full((12, 2), 0.1), np.full((12, 3), 0.1)
    >>> y, h_n, c_n, cache = lstm_forward(x, None, None, w_ih, w_hh)
    >>> lstm_backward(cache, np.ones_like(y)).dweight_hh.shape
    (12, 3)
    """
    fn = "lstm_forward"
    return _core.lstm_forward(
        x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, lengths,
        _flag(fn, "reverse", reverse), _flag(fn, "keep_cache", keep_cache),
    )


def lstm_backward(cache, dy, dh_n=None, dc_n=None) -> LSTMGrads:
    """Backpropagate through the LSTM forward pass that made ``cache``.

    Parameters
    ----------
    cache : object
        From :func:`lstm_forward` with ``keep_cache=True``.
    dy : ndarray [T, B, H] or None
        Gradient of the loss with respect to ``y`` (padded steps ignored).
    dh_n, dc_n : ndarray [B, H] or None
        Gradients with respect to the final states.

    Returns
    -------
    LSTMGrads
    """
    return LSTMGrads(*_core.lstm_backward(cache, dy, dh_n, dc_n))


def gru_forward(
    x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
    lengths=None, reverse=False, reset_after=True, keep_cache=True,
):
    """Run a GRU layer over a sequence.

    Parameters
    ----------
    x : ndarray, [T, B, I]
    h0 : ndarray [B, H] or None
    weight_ih : ndarray, [3H, I]
    weight_hh : ndarray, [3H, H]
    bias_ih, bias_hh : ndarray [3H] or None
    lengths, reverse, keep_cache
        As in :func:`lstm_forward`.
    reset_after : bool
        True (PyTorch, cuDNN): ``n = tanh(W_in x + b_in + r*(W_hn h + b_hn))``;
        False (the original paper): ``n = tanh(W_in x + b_in + W_hn (r*h) + b_hn)``.

    Returns
    -------
    y : ndarray, [T, B, H]
    h_n : ndarray, [B, H]
    cache : object or None
    """
    fn = "gru_forward"
    return _core.gru_forward(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths,
        _flag(fn, "reverse", reverse), _flag(fn, "reset_after", reset_after),
        _flag(fn, "keep_cache", keep_cache),
    )


def gru_backward(cache, dy, dh_n=None) -> GRUGrads:
    """Backpropagate through the GRU forward pass that made ``cache``.

    Returns
    -------
    GRUGrads
    """
    return GRUGrads(*_core.gru_backward(cache, dy, dh_n))


def rnn_forward(
    x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
    lengths=None, reverse=False, nonlinearity="tanh", keep_cache=True,
):
    """Run a dense (Elman) recurrent layer: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``.

    Parameters
    ----------
    x : ndarray, [T, B, I]
    h0 : ndarray [B, H] or None
    weight_ih : ndarray, [H, I]
    weight_hh : ndarray, [H, H]
    bias_ih, bias_hh : ndarray [H] or None
    nonlinearity : {"tanh", "relu"}
    lengths, reverse, keep_cache
        As in :func:`lstm_forward`.

    Returns
    -------
    y : ndarray, [T, B, H]
    h_n : ndarray, [B, H]
    cache : object or None
    """
    fn = "rnn_forward"
    _check_nonlinearity(fn, nonlinearity)
    return _core.rnn_forward(
        x, h0, weight_ih, weight_hh, bias_ih, bias_hh, lengths,
        _flag(fn, "reverse", reverse), nonlinearity,
        _flag(fn, "keep_cache", keep_cache),
    )


def rnn_backward(cache, dy, dh_n=None) -> RNNGrads:
    """Backpropagate through the dense-cell forward pass that made ``cache``.

    Returns
    -------
    RNNGrads
    """
    return RNNGrads(*_core.rnn_backward(cache, dy, dh_n))


def _prepack(cell: str, weights: dict) -> "_Packed":
    """The Prepacked* of ``cell`` ("lstm", "gru", "rnn") from one layer and
    direction's arrays by role (``weight_ih``, ..., ``weight_hr``)."""
    cls = {"lstm": PrepackedLSTM, "gru": PrepackedGRU, "rnn": PrepackedRNN}[cell]
    extra = {"weight_hr": weights["weight_hr"]} if "weight_hr" in weights else {}
    return cls(weights["weight_ih"], weights["weight_hh"], weights.get("bias_ih"),
               weights.get("bias_hh"), **extra)


class _Packed:
    """What the three packed layers share (see :class:`PrepackedLSTM`)."""

    _cell = ""

    def __init__(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        self._pack(weight_ih, weight_hh, bias_ih, bias_hh, None)

    def _pack(self, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr):
        self._fn = type(self).__name__
        self._packed = _core.PackedWeights(
            self._cell, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr, self._fn)

    @property
    def input_size(self) -> int:
        return self._packed.input_size

    @property
    def hidden_size(self) -> int:
        return self._packed.hidden_size

    @property
    def dtype(self) -> np.dtype:
        return self._packed.dtype

    @property
    def packed_bytes(self) -> int:
        """Bytes of the panels packed so far (a copy of the weights per thread count used)."""
        return self._packed.packed_bytes

    def weights(self) -> dict:
        """The frozen copies (read-only arrays; biases None without bias)."""
        p = self._packed
        out = {"weight_ih": p.weight_ih, "weight_hh": p.weight_hh,
               "bias_ih": p.bias_ih, "bias_hh": p.bias_hh}
        if self._cell == "lstm":
            out["weight_hr"] = p.weight_hr
        return out

    def _check_x(self, x) -> None:
        # The weights' checks would blame weight_ih for an x of the wrong
        # width or dtype; name x instead.
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            return  # the forward function's own checks name x
        if x.dtype != self.dtype:
            raise TypeError(
                f"{self._fn}: x has dtype {x.dtype}, but the packed weights are "
                f"{self.dtype} (pack them from arrays of x's dtype)")
        if x.shape[2] != self.input_size:
            raise ValueError(
                f"{self._fn}: x must be [T, B, I] with I = {self.input_size} (the "
                f"packed weight_ih's axis 1), got shape {tuple(x.shape)}")

    def __repr__(self) -> str:
        return (f"{self._fn}(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"dtype={self.dtype}, packed_bytes={self.packed_bytes})")


class PrepackedLSTM(_Packed):
    """An LSTM layer's weights, copied once and kept packed, for repeated inference.

    ``PrepackedLSTM(weight_ih, weight_hh, bias_ih, bias_hh, weight_hr=None)``
    checks the weights as :func:`lstm_forward` does and copies them: later
    changes to the arrays passed in do not reach it.  Calling it is
    ``lstm_forward(x, h0, c0, <the copies>, keep_cache=False)`` and returns
    ``(y, h_n, c_n)``, the same bit for bit, minus the packing of the
    weights into the GEMM's panels that every forward pass does: the first
    call packs them and they are kept -- one copy of the weights per thread
    count the calls run on (:attr:`packed_bytes`).  This is what an ONNX
    Runtime session does when it is created; it pays for batch-1 and short
    calls repeated many times (LSTM T=100 B=1 H=256: about 0.9x the time of
    :func:`lstm_forward`).  Safe to call from several threads at once.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.functional import PrepackedLSTM, lstm_forward
    >>> w_ih, w_hh = np.full((12, 2), 0.1), np.full((12, 3), 0.1)
    >>> lstm = PrepackedLSTM(w_ih, w_hh)
    >>> x = np.ones((4, 1, 2))
    >>> y, h_n, c_n = lstm(x)
    >>> bool((y == lstm_forward(x, None, None, w_ih, w_hh, keep_cache=False)[0]).all())
    True
    """

    _cell = "lstm"

    def __init__(self, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, weight_hr=None):
        self._pack(weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)

    @property
    def proj_size(self) -> int:
        return self._packed.proj_size

    def __call__(self, x, h0=None, c0=None, *, lengths=None, reverse=False):
        """``(y, h_n, c_n)``: see :func:`lstm_forward`."""
        self._check_x(x)
        y, h_n, c_n, _ = _core.lstm_forward(
            x, h0, c0, None, None, None, None, None, lengths,
            _flag(self._fn, "reverse", reverse), False, packed=self._packed)
        return y, h_n, c_n


class PrepackedGRU(_Packed):
    """A GRU layer's weights, copied once and kept packed (see :class:`PrepackedLSTM`).

    Calling it is ``gru_forward(x, h0, <the copies>, keep_cache=False)``
    and returns ``(y, h_n)``.
    """

    _cell = "gru"

    def __call__(self, x, h0=None, *, lengths=None, reverse=False, reset_after=True):
        """``(y, h_n)``: see :func:`gru_forward`."""
        self._check_x(x)
        y, h_n, _ = _core.gru_forward(
            x, h0, None, None, None, None, lengths, _flag(self._fn, "reverse", reverse),
            _flag(self._fn, "reset_after", reset_after), False, packed=self._packed)
        return y, h_n


class PrepackedRNN(_Packed):
    """A dense (Elman) layer's weights, copied once and kept packed (see :class:`PrepackedLSTM`).

    Calling it is ``rnn_forward(x, h0, <the copies>, keep_cache=False)``
    and returns ``(y, h_n)``.
    """

    _cell = "rnn"

    def __call__(self, x, h0=None, *, lengths=None, reverse=False, nonlinearity="tanh"):
        """``(y, h_n)``: see :func:`rnn_forward`."""
        self._check_x(x)
        _check_nonlinearity(self._fn, nonlinearity)
        y, h_n, _ = _core.rnn_forward(
            x, h0, None, None, None, None, lengths, _flag(self._fn, "reverse", reverse),
            nonlinearity, False, packed=self._packed)
        return y, h_n
