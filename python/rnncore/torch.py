"""``torch.nn.LSTM``, ``GRU`` and ``RNN`` that run on rnncore's kernels.

Import it explicitly (``import rnncore.torch``); ``import rnncore`` never
imports torch.  :class:`LSTM`, :class:`GRU` and :class:`RNN` subclass
their ``torch.nn`` namesakes: same constructor, parameters, ``state_dict``
and ``forward(input, hx=None)``, so a model built with ``torch.nn.LSTM``
can swap in ``rnncore.torch.LSTM`` and load the same ``state_dict``.
Only the computation changes: each forward pass runs the stacked layers
and directions of :mod:`rnncore.layers` inside one
``torch.autograd.Function``, whose backward runs rnncore's BPTT kernels.

Inputs are a padded tensor (with an optional ``lengths`` argument, ``[B]``
integers in any order) or a ``PackedSequence``; tensors must be on the
CPU, float32 or float64.  Contiguous tensors (inputs, states, parameters)
reach the kernels without copies.  Dropout between layers uses torch's
random generator (``torch.manual_seed`` makes it reproducible).

Examples
--------
>>> import torch, rnncore.torch
>>> lstm = rnncore.torch.LSTM(3, 5, num_layers=2, batch_first=True)
>>> ref = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
>>> lstm.load_state_dict(ref.state_dict())
<All keys matched successfully>
>>> x = torch.randn(4, 6, 3)
>>> y, (h_n, c_n) = lstm(x, lengths=torch.tensor([6, 2, 5, 1]))
>>> y.shape, h_n.shape
(torch.Size([4, 6, 5]), torch.Size([2, 4, 5]))
>>> y.sum().backward()
>>> lstm.weight_hh_l1.grad.shape
torch.Size([20, 5])
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .layers import _GRU_KIND, _LSTM_KIND, _RNN_KIND, _Stack

__all__ = ["LSTM", "GRU", "RNN"]


def _numpy(t):
    """A CPU tensor's memory as an ndarray: no copy if ``t`` is contiguous."""
    return None if t is None else t.detach().contiguous().numpy()


class _StackFunction(torch.autograd.Function):
    """The whole stack as one autograd node: rnncore forward, rnncore BPTT.

    ``apply(stack, lengths, dropout, keep_cache, x, *states, *params)``
    with ``x`` time-major ``[T, B, I]``, one tensor (or None) per state
    ``[L*D, B, size]`` and the parameters in ``stack.param_shapes()``'s
    order; returns ``y`` and the final states.  ``keep_cache`` is decided
    by the caller: inside ``forward`` grad mode is always off.
    """

    @staticmethod
    def forward(ctx, stack, lengths, dropout, keep_cache, x, *tensors):
        n = len(stack.kind.states)
        states = tuple(map(_numpy, tensors[:n]))
        params = dict(zip(stack.param_shapes(), map(_numpy, tensors[n:])))
        y, finals, cache = stack.forward(params, _numpy(x), states, lengths, dropout, keep_cache)
        ctx.stack, ctx.cache = stack, cache
        ctx.given_states = [t is not None for t in tensors[:n]]
        return (torch.from_numpy(y), *map(torch.from_numpy, finals))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy, *dfinals):
        dx, d0, dparams = ctx.stack.backward(ctx.cache, _numpy(dy), tuple(map(_numpy, dfinals)))
        dstates = [torch.from_numpy(d) if given else None for d, given in zip(d0, ctx.given_states)]
        return (None, None, None, None, torch.from_numpy(dx), *dstates,
                *(torch.from_numpy(dparams[name]) for name in ctx.stack.param_shapes()))


def _repack(y, lengths, like):
    """``y`` [T, B, F] (batch in original order) as a PackedSequence ordered like ``like``."""
    if like.sorted_indices is not None:
        y, lengths = y.index_select(1, like.sorted_indices), lengths[like.sorted_indices.cpu()]
    packed = pack_padded_sequence(y, lengths, enforce_sorted=True)
    return PackedSequence(packed.data, packed.batch_sizes, like.sorted_indices, like.unsorted_indices)


class _Adapter:
    """The forward pass shared by the three modules (placed before the torch.nn class)."""

    _kind = None  # set by each module

    def _stack(self):
        options = {"nonlinearity": self.nonlinearity} if self._kind is _RNN_KIND else {}
        return _Stack(self._kind, self.input_size, self.hidden_size, self.num_layers, self.bias,
                      self.bidirectional, self.proj_size, options)

    def _check(self, name, t, dtype, shape=None):
        owner = type(self).__name__
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"{owner}: rnncore runs on the CPU, {name} is on {t.device}")
        if t.dtype != dtype:
            raise TypeError(f"{owner}: {name} must have dtype {dtype} (the parameters' dtype), got {t.dtype}")
        if shape is not None and tuple(t.shape) != shape:
            raise ValueError(f"{owner}: {name} must have shape {shape}, got {tuple(t.shape)}")

    def forward(self, input, hx=None, lengths=None):
        """Run every layer and direction with rnncore's kernels.

        Parameters
        ----------
        input : Tensor or PackedSequence
            ``[T, B, I]`` (``[B, T, I]`` with ``batch_first``), ``[T, I]``
            unbatched, or a PackedSequence.
        hx : Tensor or tuple of Tensor, optional
            As for the torch.nn module (LSTM: ``(h0, c0)``); None: zeros.
        lengths : Tensor or array_like of int [B], optional
            Valid steps per sequence (any order) for padded input; outputs
            past a length are 0 and final states are each sequence's own.

        Returns
        -------
        output : Tensor or PackedSequence
        h_n : Tensor or tuple of Tensor
        """
        stack = self._stack()
        params = [getattr(self, name) for name in stack.param_shapes()]
        dtype = params[0].dtype
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{type(self).__name__}: rnncore runs float32 and float64, "
                            f"the parameters are {dtype}")
        for name, p in zip(stack.param_shapes(), params):
            self._check(name, p, dtype)
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError(f"{type(self).__name__}: lengths must be None for a PackedSequence input")
            x, lengths = pad_packed_sequence(input)
        else:
            self._check("input", input, dtype)
            if input.dim() not in (2, 3):
                raise ValueError(f"{type(self).__name__}: input must be 3-d (batched) or 2-d (unbatched), "
                                 f"got shape {tuple(input.shape)}")
            x = input.transpose(0, 1) if self.batch_first and input.dim() == 3 else input
        batched = x.dim() == 3
        x = x if batched else x.unsqueeze(1)
        states = self._states(hx, x.shape[1], batched, dtype, stack)
        if lengths is not None:
            lengths = np.asarray(lengths.cpu() if isinstance(lengths, torch.Tensor) else lengths)
        dropout = None
        if self.training and self.dropout > 0:
            def dropout(shape, p=self.dropout):
                return torch.empty(shape, dtype=dtype).bernoulli_(1 - p).div_(1 - p).numpy()
        keep_cache = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, *states, *params))
        y, *finals = _StackFunction.apply(stack, lengths, dropout, keep_cache, x, *states, *params)
        if packed:
            y = _repack(y, torch.from_numpy(lengths), input)
        elif not batched:
            y, finals = y.squeeze(1), [f.squeeze(1) for f in finals]
        elif self.batch_first:
            y = y.transpose(0, 1)
        return y, tuple(finals) if len(finals) == 2 else finals[0]

    def _states(self, hx, B, batched, dtype, stack):
        """The initial states as a tuple of ``[L*D, B, size]`` tensors (or None)."""
        n = len(self._kind.states)
        if n == 2 and hx is not None and not (isinstance(hx, tuple) and len(hx) == 2):
            raise TypeError(f"{type(self).__name__}: hx must be a tuple (h0, c0) or None, "
                            f"got {type(hx).__name__}")
        values = hx if n == 2 and hx is not None else (hx,) * n
        LD = self.num_layers * stack.directions
        states = []
        for s, size, value in zip(self._kind.states, stack.state_sizes(), values):
            if value is not None:
                self._check(f"{s}0", value, dtype, (LD, B, size) if batched else (LD, size))
                value = value if batched else value.unsqueeze(1)
            states.append(value)
        return states


class LSTM(_Adapter, torch.nn.LSTM):
    """``torch.nn.LSTM`` on rnncore's kernels (same constructor, parameters and forward).

    ``forward`` also takes ``lengths`` for padded input (see the module
    docstring).  CPU only, float32 or float64.

    Examples
    --------
    >>> import torch, rnncore.torch
    >>> lstm = rnncore.torch.LSTM(2, 4, bidirectional=True, proj_size=3, dtype=torch.float64)
    >>> y, (h_n, c_n) = lstm(torch.randn(5, 2, 2, dtype=torch.float64))
    >>> y.shape, h_n.shape, c_n.shape
    (torch.Size([5, 2, 6]), torch.Size([2, 2, 3]), torch.Size([2, 2, 4]))
    """

    _kind = _LSTM_KIND


class GRU(_Adapter, torch.nn.GRU):
    """``torch.nn.GRU`` on rnncore's kernels (same constructor, parameters and forward).

    Examples
    --------
    >>> import torch, rnncore.torch
    >>> from torch.nn.utils.rnn import pack_sequence
    >>> gru = rnncore.torch.GRU(3, 4)
    >>> packed = pack_sequence([torch.randn(2, 3), torch.randn(5, 3)], enforce_sorted=False)
    >>> out, h_n = gru(packed)
    >>> out.data.shape, h_n.shape
    (torch.Size([7, 4]), torch.Size([1, 2, 4]))
    """

    _kind = _GRU_KIND


class RNN(_Adapter, torch.nn.RNN):
    """``torch.nn.RNN`` on rnncore's kernels (same constructor, parameters and forward).

    Examples
    --------
    >>> import torch, rnncore.torch
    >>> rnn = rnncore.torch.RNN(3, 4, 2, "relu", batch_first=True)
    >>> y, h_n = rnn(torch.randn(2, 6, 3))
    >>> y.shape, h_n.shape
    (torch.Size([2, 6, 4]), torch.Size([2, 2, 4]))
    """

    _kind = _RNN_KIND
