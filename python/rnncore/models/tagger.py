"""Many-to-many of the same length (part-of-speech tagging): :class:`SequenceTagger`."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import nn
from ..losses import cross_entropy
from ..nn import _check_count
from ._base import Data, Model, check_optional_count, pad, sequences, softmax, step_mask
from ._blocks import Linear, Recurrent
from .sequence import sequence_config

__all__ = ["SequenceTagger"]


class SequenceTagger(Model):
    """Label every step of a sequence (many to many, same length: part-of-speech tagging).

    Padded steps count in neither the loss nor the accuracy.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
    hidden_size : int
        Units per layer and direction.
    num_layers : int
        Stacked recurrent layers.
    input_size : int, optional
        Steps are float feature vectors of this size ...
    vocab_size, embedding_dim : int, optional
        ... or token ids in ``[0, vocab_size)``, embedded in
        ``embedding_dim`` (default ``hidden_size``).
    num_classes : int, optional
        Tags; default: the largest tag of the first ``fit`` plus one.
    bidirectional : bool
        Each step's label sees the whole sequence, both sides.
    reverse : bool
        Read each sequence from its last step to its first.
    dropout : float
        Between stacked layers and before the output layer.
    dtype : {"float32", "float64"}
    seed : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import SequenceTagger
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.standard_normal((rng.integers(3, 9), 1)) for _ in range(300)]
    >>> tags = [(x[:, 0] > 0).astype(int) for x in X]         # the sign of each step
    >>> model = SequenceTagger(input_size=1, hidden_size=16, seed=0)
    >>> history = model.fit(X, tags, epochs=5, lr=0.01, progress=False)
    >>> model.score(X, tags) > 0.95
    True
    >>> [t.shape for t in model.predict(X[:2])] == [t.shape for t in tags[:2]]
    True
    """

    _metric = "accuracy"

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, num_classes: Optional[int] = None,
                 bidirectional: bool = False, reverse: bool = False, dropout: float = 0.0,
                 dtype: str = "float32", seed: Optional[int] = None) -> None:
        config = sequence_config(cell, hidden_size, num_layers, input_size, vocab_size, embedding_dim,
                                 bidirectional, reverse, dropout, dtype, seed)
        config["num_classes"] = check_optional_count("num_classes", num_classes, minimum=2)
        super().__init__(config)

    def _ready(self) -> bool:
        return self._config["num_classes"] is not None

    def _build(self) -> None:
        c = self._config
        self.encoder = Recurrent(**self._recurrent_options(), input_size=c["input_size"], vocab_size=c["vocab_size"],
                                 embedding_dim=c["embedding_dim"], bidirectional=c["bidirectional"],
                                 reverse=c["reverse"], seed=self._child_seed())
        rng = np.random.default_rng(self._child_seed())
        self.head_dropout = nn.Dropout(c["dropout"], seed=rng)
        self.head = Linear(self.encoder.output_size, c["num_classes"], dtype=c["dtype"], seed=rng)

    def _tags(self, y: Any, seqs: list) -> list:
        """``y`` as one tag array per sequence of ``seqs``; the first ``fit`` infers ``num_classes``."""
        limit = self._config["num_classes"] if self.built else np.iinfo(np.intp).max
        tags = sequences("y", y, None, vocab_size=limit, input_size=None)
        if len(tags) != len(seqs) or any(len(t) != len(s) for t, s in zip(tags, seqs)):
            raise ValueError("y must hold one tag sequence per sequence of X, each of the same length")
        if not self.built:
            self._config["num_classes"] = max(max(int(t.max()) for t in tags) + 1, 2)
        return tags

    def _data(self, X, y, lengths, fitting):
        c = self._config
        seqs = sequences("X", X, lengths, vocab_size=c["vocab_size"], input_size=c["input_size"], dtype=self.dtype)
        if y is None:
            return Data([len(s) for s in seqs], x=seqs)
        if isinstance(y, np.ndarray) and lengths is not None:  # a padded tag array, cut like X
            y = [row[: len(s)] for row, s in zip(y, seqs)]
        return Data([len(s) for s in seqs], x=seqs, y=self._tags(y, seqs))

    def _collate(self, items):
        x, lengths = pad(items["x"])
        batch = {"x": x, "lengths": lengths}
        if "y" in items:
            batch["y"], _ = pad(items["y"])
        return batch

    def _logits(self, batch: dict) -> np.ndarray:
        y, _ = self.encoder(batch["x"], batch["lengths"])
        return self.head(self.head_dropout(y))

    def _loss(self, batch, train):
        logits = self._logits(batch)
        mask = step_mask(batch["lengths"], logits.shape[0])
        loss, dlogits = cross_entropy(logits, batch["y"], mask=mask)
        if train:
            self.encoder.backward(self.head_dropout.backward(self.head.backward(dlogits)))
        return loss, int(mask.sum()), int(((logits.argmax(axis=-1) == batch["y"]) & mask).sum())

    def _per_sequence(self, X: Any, lengths: Any, batch_size: int, what: str, fn) -> list:
        """``fn(logits [T, C])`` of each sequence of ``X``, cut at its length."""
        self._require_built(what)
        batch_size = _check_count("batch_size", batch_size)

        def run(batch):
            logits = self._logits(batch)
            return [fn(logits[:n, b]) for b, n in enumerate(batch["lengths"])]

        return self._map(self._data(X, None, lengths, fitting=False), batch_size, run)

    def predict_proba(self, X: Any, *, lengths: Any = None, batch_size: int = 256) -> list:
        """Tag probabilities of each step: one ``[T, num_classes]`` array per sequence."""
        return self._per_sequence(X, lengths, batch_size, "predict_proba", softmax)

    def predict(self, X: Any, *, lengths: Any = None, batch_size: int = 256) -> list:
        """The most probable tag of each step: one ``[T]`` array per sequence."""
        return self._per_sequence(X, lengths, batch_size, "predict", lambda logits: logits.argmax(axis=-1))

    def score(self, X: Any, y: Any, *, lengths: Any = None) -> float:
        """Accuracy over all valid steps."""
        predicted = self.predict(X, lengths=lengths)
        if isinstance(y, np.ndarray) and lengths is not None:
            y = [row[: len(p)] for row, p in zip(y, predicted)]
        tags = self._tags(y, predicted)
        return float(np.concatenate([p == t for p, t in zip(predicted, tags)]).mean())
