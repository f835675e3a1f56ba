"""The parts the models are made of, each with forward and backward.

- :class:`Recurrent`: token embedding (or float features as they are) and
  a stack of recurrent layers, optionally reading the sequences backwards
  or in both directions; also one step at a time for decoding.
- :class:`Pooling`: a sequence's outputs to one vector (last state, mean,
  max over the valid steps); :class:`PooledRecurrent` does both.
- :class:`Decoder`: a :class:`Recurrent` over target tokens with optional
  Luong attention over a memory and an output layer over the vocabulary.

Arrays are time-major (``[T, B, ...]``), as the kernels want them.
Recurrent states travel as tuples of ``[L*D, B, H]`` arrays: ``(h,)``, or
``(h, c)`` for the LSTM.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import numpy as np

from .. import functional, nn
from ..cells import GRUCell, LSTMCell, RNNCell
from ._base import CELLS, log_softmax, step_mask

_CELL_STEPS = {"lstm": LSTMCell, "gru": GRUCell, "rnn": RNNCell}


def as_states(value) -> tuple:
    """A layer's final states (an array, or a pair for the LSTM) as a tuple."""
    return value if isinstance(value, tuple) else (value,)


def from_states(states: tuple):
    """The inverse of :func:`as_states`: what a layer takes as ``h0`` or ``dh_n``."""
    return states if len(states) == 2 else states[0]


def flip(a: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Reverse each sequence of ``a`` ``[T, B, ...]`` within its own length (padding stays put)."""
    T, B = a.shape[:2]
    t = np.arange(T)[:, None]
    src = np.where(t < lengths, lengths - 1 - t, t)
    return a[src, np.arange(B)]


# One 2-D product over all rows of an [..., I] input, on rnncore's GEMM.
Linear = nn.Linear


class Recurrent(nn.Module):
    """Embedding (for token ids) and a stack of recurrent layers.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
    hidden_size, num_layers : int
        Per direction.
    input_size : int, optional
        Float features per step (no embedding).
    vocab_size, embedding_dim : int, optional
        Token ids in ``[0, vocab_size)``, embedded in ``embedding_dim``.
    bidirectional : bool
        Each layer also runs backwards; outputs concatenate both directions.
    reverse : bool
        Read each sequence from its last step to its first (outputs are
        returned in the original order).
    dropout : float
        Between stacked layers (the layers' own dropout).
    dtype : str
    seed : int
    """

    def __init__(self, cell, hidden_size, num_layers, *, input_size=None, vocab_size=None, embedding_dim=None,
                 bidirectional=False, reverse=False, dropout=0.0, dtype="float32", seed=None):
        super().__init__()
        rng = np.random.default_rng(seed)
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, dtype=dtype, seed=rng)
            input_size = embedding_dim
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0,
                               bidirectional=bidirectional, dtype=dtype, seed=int(rng.integers(2**31)))
        self._cell = cell
        self._reverse = reverse
        self._steps = None
        self._lengths = None

    @property
    def tokens(self) -> bool:
        return hasattr(self, "embedding")

    @property
    def output_size(self) -> int:
        return self.rnn.hidden_size * (2 if self.rnn.bidirectional else 1)

    def forward(self, x: np.ndarray, lengths: np.ndarray, states: Optional[tuple] = None) -> tuple:
        """``x`` ``[T, B]`` token ids or ``[T, B, I]`` features -> outputs
        ``[T, B, D*H]`` (zero past each length) and final states."""
        if self._reverse:
            x = flip(x, lengths)
        if self.tokens:
            x = self.embedding(x)
        self._lengths = lengths
        y, finals = self.rnn(x, None if states is None else from_states(states), lengths)
        if self._reverse:
            y = flip(y, lengths)
        return y, as_states(finals)

    def backward(self, dy: Optional[np.ndarray], dfinals: Optional[tuple] = None) -> tuple:
        """Gradients of the outputs and final states -> ``(dx or None, dstates)``;
        ``dx`` is returned for float features, tokens feed the embedding."""
        if dy is not None and self._reverse:
            dy = flip(dy, self._lengths)
        dx, dstates = self.rnn.backward(dy, None if dfinals is None else from_states(dfinals))
        if self.tokens:
            self.embedding.backward(dx)
            dx = None
        elif self._reverse:
            dx = flip(dx, self._lengths)
        return dx, as_states(dstates)

    # -- one step at a time (decoding; forward direction only) ---------------

    def step(self, x: np.ndarray, states: tuple) -> tuple:
        """One step for ``N`` sequences: ``x`` ``[N]`` ids or ``[N, I]`` features,
        ``states`` tuple of ``[L, N, H]`` -> (top output ``[N, H]``, new states)."""
        if self._steps is None:
            cls = _CELL_STEPS[self._cell]
            self._steps = [cls.from_layer(self.rnn, k) for k in range(self.rnn.num_layers)]
        if self.tokens:
            x = self.embedding(x)
        new = []
        for k, cell in enumerate(self._steps):
            out = as_states(cell(x, from_states(tuple(s[k] for s in states))))
            new.append(out)
            x = out[0]
        return x, tuple(np.stack(s) for s in zip(*new))

    @contextmanager
    def frozen_steps(self):
        """While decoding: :meth:`step` runs on prepacked copies of the weights.

        One-step calls of a few rows (a beam's hypotheses) otherwise pack
        the weights every step, or multiply them in place on narrow tiles:
        LSTM H=256 at 4-8 rows 0.3-0.5x the time, the same results bit for
        bit (rnncore.functional.PrepackedLSTM).  The copies are made here,
        so the weights must not change inside (decoding does not train).
        """
        steps = []
        for k in range(self.rnn.num_layers):
            cell = _CELL_STEPS[self._cell].from_layer(self.rnn, k)
            cell._prepacked = functional._prepack(self._cell, cell.params)
            steps.append(cell)
        saved, self._steps = self._steps, steps
        try:
            yield
        finally:
            self._steps = saved

    def zero_states(self, n: int) -> tuple:
        rnn = self.rnn
        L = rnn.num_layers * (2 if rnn.bidirectional else 1)
        return tuple(np.zeros((L, n, rnn.hidden_size), rnn.dtype) for _ in range(2 if self._cell == "lstm" else 1))


class Pooling:
    """A sequence's outputs to one vector per sequence.

    ``"last"``: the final state of the top layer (both directions' finals
    when bidirectional: the forward one at the last step, the reverse one
    at the first); ``"mean"`` and ``"max"``: over the valid steps of the
    outputs.
    """

    def __init__(self, mode: str, directions: int) -> None:
        self.mode, self.D = mode, directions

    def forward(self, y: np.ndarray, h_n: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``y`` ``[T, B, D*H]``, ``h_n`` ``[L*D, B, H]`` -> ``[B, D*H]``."""
        self._shapes = (y.shape, h_n.shape)
        if self.mode == "last":
            top = h_n[-self.D:]
            return np.ascontiguousarray(top.transpose(1, 0, 2).reshape(top.shape[1], -1))
        if self.mode == "mean":
            self._scale = (1.0 / lengths).astype(y.dtype)[:, None]
            return y.sum(axis=0) * self._scale
        masked = np.where(step_mask(lengths, y.shape[0])[..., None], y, -np.inf)
        self._argmax = masked.argmax(axis=0)
        return np.take_along_axis(y, self._argmax[None], axis=0)[0]

    def backward(self, dpooled: np.ndarray) -> tuple:
        """-> ``(dy or None, dh_n or None)``."""
        y_shape, h_shape = self._shapes
        if self.mode == "last":
            dh = np.zeros(h_shape, dpooled.dtype)
            dh[-self.D:] = dpooled.reshape(h_shape[1], self.D, -1).transpose(1, 0, 2)
            return None, dh
        if self.mode == "mean":  # values at padded steps are ignored by the layers' backward
            return np.broadcast_to(dpooled * self._scale, y_shape).copy(), None
        dy = np.zeros(y_shape, dpooled.dtype)
        np.put_along_axis(dy, self._argmax[None], dpooled[None], axis=0)
        return dy, None


class PooledRecurrent(Recurrent):
    """A :class:`Recurrent` that summarises each sequence in one vector
    ``[B, D*H]`` (see :class:`Pooling`); same parameters plus ``pooling``."""

    def __init__(self, cell, hidden_size, num_layers, *, pooling="last", **options):
        super().__init__(cell, hidden_size, num_layers, **options)
        self._pooling = Pooling(pooling, 2 if self.rnn.bidirectional else 1)

    def summarize(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        y, finals = self.forward(x, lengths)
        return self._pooling.forward(y, finals[0], lengths)

    def summarize_backward(self, dsummary: np.ndarray) -> Optional[np.ndarray]:
        """-> ``dx`` for float features (None for tokens)."""
        dy, dh = self._pooling.backward(dsummary)
        dfinals = None if dh is None else (dh,) + (None,) * (self._cell == "lstm")
        return self.backward(dy, dfinals)[0]


class Decoder(Recurrent):
    """Target tokens in, logits over the target vocabulary out.

    With ``symbols=True`` the input vocabulary is ``vocab_size`` tokens
    plus a start symbol (id ``vocab_size``) and the output vocabulary the
    tokens plus an end symbol (id ``vocab_size``); without, both are the
    ``vocab_size`` tokens (a language model over a stream).  With ``attention``, Luong's global
    attention ("general" score) over a memory ``[S, B, H]``: ``a_t =
    softmax_s(h_t . W_a m_s)``, ``c_t = sum_s a_ts m_s``, ``o_t =
    tanh(W_c [c_t; h_t])``; logits ``= W_out o_t + b``.  (No input
    feeding, so training runs the decoder over the whole target in one
    kernel call.)
    """

    def __init__(self, cell, hidden_size, num_layers, *, vocab_size, embedding_dim, attention=False, symbols=True,
                 dropout=0.0, dtype="float32", seed=None):
        rng = np.random.default_rng(seed)
        V = vocab_size + int(symbols)
        super().__init__(cell, hidden_size, num_layers, vocab_size=V, embedding_dim=embedding_dim,
                         dropout=dropout, dtype=dtype, seed=int(rng.integers(2**31)))
        H = hidden_size
        if attention:
            self.attention_score = Linear(H, H, bias=False, dtype=dtype, seed=rng)
            self.attention_combine = Linear(2 * H, H, bias=False, dtype=dtype, seed=rng)
        self.output_dropout = nn.Dropout(dropout, seed=rng)
        self.out = Linear(H, V, dtype=dtype, seed=rng)

    @property
    def attention(self) -> bool:
        return hasattr(self, "attention_score")

    def forward(self, tokens: np.ndarray, lengths: np.ndarray, states: Optional[tuple] = None,
                memory: Optional[tuple] = None) -> tuple:
        """``tokens`` ``[T, B]``, initial ``states``, ``memory`` ``(m [S, B, H],
        lengths [B])`` -> logits ``[T, B, V]``, final states."""
        y, finals = super().forward(tokens, lengths, states)
        o = self._attend(y, memory) if self.attention else y
        return self.out(self.output_dropout(o)), finals

    def backward(self, dlogits: np.ndarray, dfinals: Optional[tuple] = None) -> tuple:
        """-> ``(dstates, dmemory [S, B, H] or None)``."""
        do = self.output_dropout.backward(self.out.backward(dlogits))
        dy, dmemory = self._attend_backward(do) if self.attention else (do, None)
        _, dstates = super().backward(dy, dfinals)
        return dstates, dmemory

    def _attend(self, y: np.ndarray, memory: tuple) -> np.ndarray:
        """Luong attention of outputs ``y`` ``[T, B, H]`` over ``memory``."""
        m, m_lengths = memory
        q = self.attention_score(y).transpose(1, 0, 2)  # [B, T, H]
        mb = m.transpose(1, 0, 2)  # [B, S, H]
        scores = q @ mb.transpose(0, 2, 1)  # [B, T, S]
        valid = (np.arange(m.shape[0]) < m_lengths[:, None])[:, None, :]
        scores = np.where(valid, scores, -np.inf)
        a = np.exp(scores - scores.max(axis=-1, keepdims=True))
        a /= a.sum(axis=-1, keepdims=True)
        context = (a @ mb).transpose(1, 0, 2)  # [T, B, H]
        o = np.tanh(self.attention_combine(np.concatenate([context, y], axis=-1)))
        self._attention_cache = (q, mb, a, o)
        return o

    def _attend_backward(self, do: np.ndarray) -> tuple:
        q, mb, a, o = self._attention_cache
        H = o.shape[-1]
        dcat = self.attention_combine.backward(do * (1 - o * o))
        dcontext, dy = dcat[..., :H].transpose(1, 0, 2), dcat[..., H:]
        da = dcontext @ mb.transpose(0, 2, 1)  # [B, T, S]
        dmb = a.transpose(0, 2, 1) @ dcontext  # [B, S, H]
        dscores = a * (da - (da * a).sum(axis=-1, keepdims=True))
        dq = dscores @ mb
        dmb += dscores.transpose(0, 2, 1) @ q
        dy = dy + self.attention_score.backward(dq.transpose(1, 0, 2))
        return dy, np.ascontiguousarray(dmb.transpose(1, 0, 2))

    # -- decoding ---------------------------------------------------------------

    def decode_step(self, tokens: np.ndarray, state: tuple) -> tuple:
        """One decoding step for ``N`` hypotheses.

        ``state`` is ``(states, memory)`` with ``states`` a tuple of
        ``[L, N, H]`` and ``memory`` None or ``(m [S, N, H], lengths [N])``;
        returns log-probabilities ``[N, V]`` and the next state.
        """
        states, memory = state
        h, states = self.step(tokens, states)
        o = self._attend(h[None], memory)[0] if self.attention else h
        return log_softmax(self.out(o)), (states, memory)

    @staticmethod
    def reorder(state: tuple, idx: np.ndarray) -> tuple:
        """The decoding ``state`` of hypotheses ``idx`` (kept, repeated or reordered)."""
        states, memory = state
        states = tuple(np.ascontiguousarray(s[:, idx]) for s in states)
        if memory is not None:
            memory = (np.ascontiguousarray(memory[0][:, idx]), memory[1][idx])
        return states, memory
