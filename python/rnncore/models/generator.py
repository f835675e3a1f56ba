"""One-to-many (image captioning): :class:`SequenceGenerator`."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import nn
from ..nn import _check_count, _check_real
from ._base import Data, check_common, check_input, check_optional_count
from ._blocks import Decoder
from ._writer import TokenWriter

__all__ = ["SequenceGenerator"]


class SequenceGenerator(TokenWriter):
    """Write a token sequence from one conditioning vector (one to many: image captioning).

    The vector sets the decoder's initial state, ``tanh(W cond + b)``
    for every layer (and, for the LSTM, the cell state too); the decoder is
    trained with teacher forcing and writes with
    :meth:`generate`.  Token ids run from 0 to ``vocab_size - 1``; the
    model adds its own start and end symbols.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
    hidden_size : int
    num_layers : int
    input_size : int
        Size of the conditioning vectors (the features of an image, a
        one-hot class, ...).
    vocab_size : int
        Tokens written are ids in ``[0, vocab_size)``.
    embedding_dim : int, optional
        Size of the token embeddings (default ``hidden_size``).
    dropout : float
        Between stacked layers and before the output layer.
    dtype : {"float32", "float64"}
    seed : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import SequenceGenerator
    >>> cond = np.eye(3)                                      # three one-hot "images"
    >>> captions = [np.array([0, 1, 2]), np.array([2, 2]), np.array([1, 0, 1, 0])]
    >>> model = SequenceGenerator(input_size=3, vocab_size=3, hidden_size=16, seed=0)
    >>> history = model.fit(cond, captions, epochs=150, batch_size=3, lr=0.02, progress=False)
    >>> model.generate(cond[2], max_len=10)
    array([1, 0, 1, 0])
    """

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, dropout: float = 0.0, dtype: str = "float32",
                 seed: Optional[int] = None) -> None:
        config = check_common(cell, hidden_size, num_layers, dropout, dtype, seed)
        if input_size is None or vocab_size is None:
            raise ValueError("SequenceGenerator needs input_size (the conditioning vectors) and vocab_size "
                             "(the tokens it writes)")
        config["input_size"] = _check_count("input_size", input_size)
        config.update({key: value for key, value in check_input(None, vocab_size, embedding_dim,
                                                                  config["hidden_size"]).items()
                       if key != "input_size"})
        super().__init__(config)

    def _build(self) -> None:
        c = self._config
        states = 2 if c["cell"] == "lstm" else 1
        self.init = nn.Linear(c["input_size"], states * c["num_layers"] * c["hidden_size"], dtype=c["dtype"],
                              seed=self._child_seed())
        self.decoder = Decoder(**self._recurrent_options(), vocab_size=c["vocab_size"],
                               embedding_dim=c["embedding_dim"], seed=self._child_seed())

    # -- data -------------------------------------------------------------------

    def _conditions(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        size = self._config["input_size"]
        if X.ndim != 2 or X.shape[1] != size or len(X) == 0 or not (
                np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise ValueError(f"X must be conditioning vectors, real numbers of shape [N, {size}] with N >= 1, "
                             f"got {X.dtype} of shape {X.shape}")
        X = X.astype(self.dtype)
        if not np.isfinite(X).all():
            raise ValueError("X holds NaN or infinite values")
        return X

    def _data(self, X, y, lengths, fitting):
        if lengths is not None:
            raise ValueError("lengths does not apply: X holds one conditioning vector per example")
        cond = self._conditions(X)
        if y is None:
            return Data(np.zeros(len(cond), np.intp), cond=cond)
        tgt = self._targets(y, len(cond))
        return Data([len(t) for t in tgt], cond=cond, **self._target_fields(tgt))

    def _collate(self, items):
        batch = {"cond": items["cond"]}
        if "tgt_in" in items:
            batch.update(self._target_batch(items))
        return batch

    # -- forward and backward ---------------------------------------------------

    def _initial_states(self, cond: np.ndarray) -> tuple:
        """``cond`` ``[B, C]`` -> the decoder's initial states, a tuple of ``[L, B, H]``."""
        c = self._config
        self._states = np.tanh(self.init(cond))  # [B, S*L*H]
        s = self._states.reshape(len(cond), -1, c["num_layers"], c["hidden_size"]).transpose(1, 2, 0, 3)
        return tuple(np.ascontiguousarray(part) for part in s)

    def _initial_states_backward(self, dstates: tuple) -> None:
        d = np.stack(dstates).transpose(2, 0, 1, 3).reshape(self._states.shape)
        self.init.backward(d * (1 - self._states * self._states))

    def _loss(self, batch, train):
        result, (dstates, _) = self._write_loss(batch, self._initial_states(batch["cond"]), None, train)
        if train:
            self._initial_states_backward(dstates)
        return result

    # -- inference --------------------------------------------------------------

    def generate(self, cond: Any, max_len: int = 100, method: str = "greedy", beam_size: int = 5,
                 temperature: float = 1.0, *, length_penalty: float = 1.0, seed: Optional[int] = None,
                 batch_size: int = 256):
        """Write a sequence for one conditioning vector or for each row of ``[N, C]``.

        Parameters
        ----------
        cond : ndarray
            ``[C]`` (one vector) or ``[N, C]``.
        max_len : int
            Most tokens written per sequence.
        method : {"greedy", "sample", "beam"}
            The most probable token at each step, a token drawn from the
            model's distribution (sharpened or flattened by
            ``temperature``), or length-normalised beam search.
        beam_size : int
        temperature : float
            For ``"sample"``: divides the logits (< 1: more conservative;
            0: greedy).
        length_penalty : float
            For ``"beam"``: ranks by ``log p / length**length_penalty``.
        seed : int, optional
            For ``"sample"``: makes the draws reproducible.
        batch_size : int

        Returns
        -------
        ndarray or list of ndarray
            Token ids without start and end symbols (a list for ``[N, C]``).
        """
        self._require_built("generate")
        method, beam_size, max_len, length_penalty = self._decoding_options(
            method, ("greedy", "sample", "beam"), beam_size, max_len, length_penalty)
        temperature = _check_real("temperature", temperature, 0.0)
        rng = np.random.default_rng(check_optional_count("seed", seed, minimum=0))
        batch_size = _check_count("batch_size", batch_size)
        single = isinstance(cond, np.ndarray) and cond.ndim == 1
        data = self._data(cond[None] if single else cond, None, None, fitting=False)

        def decode(batch):
            state = (self._initial_states(batch["cond"]), None)
            return self._write(state, len(batch["cond"]), max_len, method, beam_size, temperature,
                               length_penalty, rng)

        out = self._map(data, batch_size, decode)
        return out[0] if single else out

    def predict(self, X: Any, *, lengths: Any = None, batch_size: int = 256) -> list:
        """Greedy sequences for the conditioning vectors ``X`` ``[N, C]``, at most 100 tokens each."""
        if lengths is not None:
            raise ValueError("lengths does not apply: X holds one conditioning vector per example")
        return self.generate(self._conditions(X), batch_size=batch_size)
