"""Many-to-one (sentiment analysis): :class:`SequenceClassifier`, :class:`SequenceRegressor`."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import nn
from ..nn import _check_choice
from ._base import check_bool, check_common, check_input, check_optional_count, pad, sequences
from ._blocks import PooledRecurrent
from ._heads import Classifier, Regressor, head_size

__all__ = ["SequenceClassifier", "SequenceRegressor"]

_POOLINGS = ("last", "mean", "max")


def sequence_config(cell, hidden_size, num_layers, input_size, vocab_size, embedding_dim, bidirectional, reverse,
                    dropout, dtype, seed) -> dict:
    """The configuration of a recurrent reader of sequences (shared by the sequence models)."""
    config = check_common(cell, hidden_size, num_layers, dropout, dtype, seed)
    config.update(check_input(input_size, vocab_size, embedding_dim, config["hidden_size"]))
    config["bidirectional"] = check_bool("bidirectional", bidirectional)
    config["reverse"] = check_bool("reverse", reverse)
    return config


class _ManyToOne:
    """A recurrent reader, pooled to one vector per sequence, and a linear head."""

    def _build(self) -> None:
        c = self._config
        self.encoder = PooledRecurrent(**self._recurrent_options(), input_size=c["input_size"],
                                       vocab_size=c["vocab_size"], embedding_dim=c["embedding_dim"],
                                       bidirectional=c["bidirectional"], reverse=c["reverse"],
                                       pooling=c["pooling"], seed=self._child_seed())
        rng = np.random.default_rng(self._child_seed())
        self.head_dropout = nn.Dropout(c["dropout"], seed=rng)
        self.head = nn.Linear(self.encoder.output_size, head_size(c), dtype=c["dtype"], seed=rng)

    def _inputs(self, X, lengths):
        c = self._config
        seqs = sequences("X", X, lengths, vocab_size=c["vocab_size"], input_size=c["input_size"], dtype=self.dtype)
        return seqs, [len(s) for s in seqs]

    def _collate(self, items):
        x, lengths = pad(items["x"])
        return {"x": x, "lengths": lengths, **({"y": items["y"]} if "y" in items else {})}

    def _forward(self, batch):
        return self.head(self.head_dropout(self.encoder.summarize(batch["x"], batch["lengths"])))

    def _backward(self, doutputs):
        self.encoder.summarize_backward(self.head_dropout.backward(self.head.backward(doutputs)))


_PARAMETERS = """
    Parameters
    ----------
    cell : {{"lstm", "gru", "rnn"}}
    hidden_size : int
        Units per layer and direction.
    num_layers : int
        Stacked recurrent layers.
    input_size : int, optional
        Steps are float feature vectors of this size ...
    vocab_size, embedding_dim : int, optional
        ... or token ids in ``[0, vocab_size)``, embedded in
        ``embedding_dim`` (default ``hidden_size``).
    {head}
    bidirectional : bool
        Read each sequence in both directions.
    reverse : bool
        Read each sequence from its last step to its first.
    pooling : {{"last", "mean", "max"}}
        The sequence's vector: the final state of the top layer (both
        directions' when bidirectional), or the mean or maximum of the
        outputs over the valid steps.
    dropout : float
        Between stacked layers and before the output layer.
    dtype : {{"float32", "float64"}}
    seed : int, optional
        Makes initialisation, shuffling and dropout reproducible.
"""


class SequenceClassifier(_ManyToOne, Classifier):
    """Read a sequence, predict one class (many to one: sentiment analysis).
    {parameters}
    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import SequenceClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.standard_normal((rng.integers(3, 9), 1)) for _ in range(400)]
    >>> y = np.array([int(x.sum() > 0) for x in X])           # is the sum positive?
    >>> model = SequenceClassifier(input_size=1, hidden_size=16, seed=0)
    >>> history = model.fit(X, y, epochs=10, lr=0.01, progress=False)
    >>> model.score(X, y) > 0.9
    True
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, num_classes: Optional[int] = None,
                 bidirectional: bool = False, reverse: bool = False, pooling: str = "last", dropout: float = 0.0,
                 dtype: str = "float32", seed: Optional[int] = None) -> None:
        config = sequence_config(cell, hidden_size, num_layers, input_size, vocab_size, embedding_dim,
                                 bidirectional, reverse, dropout, dtype, seed)
        config["num_classes"] = check_optional_count("num_classes", num_classes, minimum=2)
        config["pooling"] = _check_choice("pooling", pooling, _POOLINGS)
        super().__init__(config)


class SequenceRegressor(_ManyToOne, Regressor):
    """Read a sequence, predict one or more real numbers (many to one).
    {parameters}
    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import SequenceRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = [rng.uniform(-1, 1, (rng.integers(2, 6), 1)) for _ in range(300)]
    >>> y = np.array([x.sum() for x in X])
    >>> model = SequenceRegressor(input_size=1, hidden_size=16, seed=0)
    >>> history = model.fit(X, y, epochs=20, lr=0.01, progress=False)
    >>> model.score(X, y) > 0.9
    True
    """

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, num_outputs: Optional[int] = None,
                 bidirectional: bool = False, reverse: bool = False, pooling: str = "last", dropout: float = 0.0,
                 dtype: str = "float32", seed: Optional[int] = None) -> None:
        config = sequence_config(cell, hidden_size, num_layers, input_size, vocab_size, embedding_dim,
                                 bidirectional, reverse, dropout, dtype, seed)
        config["num_outputs"] = check_optional_count("num_outputs", num_outputs)
        config["pooling"] = _check_choice("pooling", pooling, _POOLINGS)
        super().__init__(config)


SequenceClassifier.__doc__ = SequenceClassifier.__doc__.format(parameters=_PARAMETERS.format(
    head="num_classes : int, optional\n        Classes; default: the largest label of the first ``fit`` plus one."))
SequenceRegressor.__doc__ = SequenceRegressor.__doc__.format(parameters=_PARAMETERS.format(
    head="num_outputs : int, optional\n        Real outputs per sequence; default: from the targets of the first "
         "``fit``."))
