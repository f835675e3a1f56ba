"""Many-to-many of different lengths (translation): :class:`Seq2Seq`."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..nn import _check_count
from ._base import Data, check_bool, check_common, check_input, pad, sequences
from ._blocks import Decoder, Recurrent
from ._writer import TokenWriter

__all__ = ["Seq2Seq"]


class Seq2Seq(TokenWriter):
    """Encoder-decoder: read a sequence, write another of any length.

    The encoder reads the source; its final states become the decoder's
    initial states; the decoder writes the target token by token, trained
    with teacher forcing (it reads the true previous token) and decoded
    greedily or by beam search.  With ``attention``, each decoder step also
    looks at all encoder outputs (Luong's global attention, "general"
    score).  Token ids run from 0 to ``tgt_vocab_size - 1``; the model adds
    its own start and end symbols.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
    hidden_size : int
        Size of the decoder's state and of the encoder's outputs (with
        ``bidirectional``, each encoder direction has ``hidden_size // 2``
        units, so ``hidden_size`` must be even).
    num_layers : int
        Layers of the encoder and of the decoder.
    input_size : int, optional
        Source steps are float feature vectors of this size ...
    vocab_size, embedding_dim : int, optional
        ... or token ids in ``[0, vocab_size)``, embedded in
        ``embedding_dim`` (default ``hidden_size``; also the size of the
        target embeddings).
    tgt_vocab_size : int, optional
        Target token ids are in ``[0, tgt_vocab_size)``; default
        ``vocab_size`` (required with ``input_size``).
    bidirectional : bool
        Bidirectional encoder.
    reverse : bool
        The encoder reads each source from its end (Sutskever et al.).
    attention : bool
        Luong attention over the encoder outputs.
    dropout : float
        Between stacked layers and before the output layer.
    dtype : {"float32", "float64"}
    seed : int, optional
        Makes initialisation, shuffling and dropout reproducible.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import Seq2Seq
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.integers(0, 5, rng.integers(2, 6)) for _ in range(300)]
    >>> model = Seq2Seq(vocab_size=5, hidden_size=32, seed=0)
    >>> history = model.fit(X, [x[::-1] for x in X], epochs=30, lr=0.01, progress=False)
    >>> model.translate(np.array([1, 2, 3]))
    array([3, 2, 1])
    """

    _vocab_key = "tgt_vocab_size"

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, tgt_vocab_size: Optional[int] = None,
                 bidirectional: bool = False, reverse: bool = False, attention: bool = True,
                 dropout: float = 0.0, dtype: str = "float32", seed: Optional[int] = None) -> None:
        config = check_common(cell, hidden_size, num_layers, dropout, dtype, seed)
        config.update(check_input(input_size, vocab_size, embedding_dim, config["hidden_size"]))
        if tgt_vocab_size is None:
            if vocab_size is None:
                raise ValueError("tgt_vocab_size is required when the source is float features (input_size)")
            tgt_vocab_size = vocab_size
        config["tgt_vocab_size"] = _check_count("tgt_vocab_size", tgt_vocab_size)
        config["bidirectional"] = check_bool("bidirectional", bidirectional)
        if config["bidirectional"] and config["hidden_size"] % 2:
            raise ValueError(f"hidden_size must be even with bidirectional=True (each direction has "
                             f"hidden_size // 2 units), got {hidden_size}")
        config["reverse"] = check_bool("reverse", reverse)
        config["attention"] = check_bool("attention", attention)
        super().__init__(config)

    def _build(self) -> None:
        c = self._config
        options = self._recurrent_options()
        D = 2 if c["bidirectional"] else 1
        self.encoder = Recurrent(**{**options, "hidden_size": c["hidden_size"] // D},
                                 input_size=c["input_size"], vocab_size=c["vocab_size"],
                                 embedding_dim=c["embedding_dim"], bidirectional=c["bidirectional"],
                                 reverse=c["reverse"], seed=self._child_seed())
        self.decoder = Decoder(**options, vocab_size=c["tgt_vocab_size"],
                               embedding_dim=c["embedding_dim"] or c["hidden_size"], attention=c["attention"],
                               seed=self._child_seed())

    # -- data -------------------------------------------------------------------

    def _data(self, X, y, lengths, fitting):
        c = self._config
        src = sequences("X", X, lengths, vocab_size=c["vocab_size"], input_size=c["input_size"], dtype=self.dtype)
        if y is None:
            return Data([len(s) for s in src], src=src)
        tgt = self._targets(y, len(src))
        longest = max(len(t) for t in tgt) + 1  # sort by source length, then target length
        return Data([len(s) * longest + len(t) for s, t in zip(src, tgt)], src=src, **self._target_fields(tgt))

    def _collate(self, items):
        src, src_lengths = pad(items["src"])
        batch = {"src": src, "src_lengths": src_lengths}
        if "tgt_in" in items:
            batch.update(self._target_batch(items))
        return batch

    # -- forward and backward ---------------------------------------------------

    def _bridge(self, finals: tuple) -> tuple:
        """The encoder's final states ``[L*D, B, H/D]`` as the decoder's ``[L, B, H]``
        (a bidirectional layer's two directions side by side)."""
        if not self._config["bidirectional"]:
            return finals
        return tuple(np.ascontiguousarray(s.reshape(-1, 2, *s.shape[1:]).transpose(0, 2, 1, 3)
                                          .reshape(s.shape[0] // 2, s.shape[1], -1)) for s in finals)

    def _bridge_backward(self, dstates: tuple) -> tuple:
        if not self._config["bidirectional"]:
            return dstates
        return tuple(np.ascontiguousarray(d.reshape(d.shape[0], d.shape[1], 2, -1).transpose(0, 2, 1, 3)
                                          .reshape(2 * d.shape[0], d.shape[1], -1)) for d in dstates)

    def _encode(self, batch: dict) -> tuple:
        """The decoder's initial states and the attention memory (None without attention)."""
        memory, finals = self.encoder(batch["src"], batch["src_lengths"])
        return self._bridge(finals), (memory, batch["src_lengths"]) if self._config["attention"] else None

    def _loss(self, batch, train):
        states, memory = self._encode(batch)
        result, (dstates, dmemory) = self._write_loss(batch, states, memory, train)
        if train:
            self.encoder.backward(dmemory, self._bridge_backward(dstates))
        return result

    # -- inference --------------------------------------------------------------

    def _single(self, X: Any) -> bool:
        """Whether ``X`` is one sequence (rather than a list or a padded batch)."""
        return isinstance(X, np.ndarray) and X.ndim == (1 if self._config["vocab_size"] is not None else 2)

    def translate(self, src: Any, method: str = "greedy", beam_size: int = 5, max_len: Optional[int] = None, *,
                  length_penalty: float = 1.0, lengths: Any = None, batch_size: int = 256):
        """Decode the target of one source sequence or of a list of them.

        Parameters
        ----------
        src : ndarray or list of ndarray
            One sequence (``[T]`` ids or ``[T, I]`` features), a list of
            them, or a padded array with ``lengths``.
        method : {"greedy", "beam"}
        beam_size : int
            Hypotheses kept per sequence by beam search.
        max_len : int, optional
            Most tokens written per sequence; default ``2 * T + 10`` for the
            longest source ``T`` of each batch.
        length_penalty : float
            Beam search ranks hypotheses by ``log p / length**length_penalty``
            (0: plain log-probability, which favours short outputs).
        lengths : array_like of int, optional
            With a padded ``src``.
        batch_size : int
            Sequences decoded together.

        Returns
        -------
        ndarray or list of ndarray
            Target token ids (without start and end symbols), one array per
            source; a single array for a single source.
        """
        self._require_built("translate")
        method, beam_size, max_len, length_penalty = self._decoding_options(
            method, ("greedy", "beam"), beam_size, max_len, length_penalty)
        batch_size = _check_count("batch_size", batch_size)
        single = self._single(src)
        data = self._data([src] if single else src, None, None if single else lengths, fitting=False)

        def decode(batch):
            limit = max_len or 2 * int(batch["src_lengths"].max()) + 10
            return self._write(self._encode(batch), len(batch["src_lengths"]), limit, method, beam_size, 0.0,
                               length_penalty, None)

        out = self._map(data, batch_size, decode)
        return out[0] if single else out

    def predict(self, X: Any, *, lengths: Any = None, batch_size: int = 256) -> list:
        """Greedy translations of the sources ``X``, one array each."""
        if self._single(X):
            X = [X]
        return self.translate(X, lengths=lengths, batch_size=batch_size)
