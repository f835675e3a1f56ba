"""Change the granularity: :class:`HierarchicalClassifier`."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import nn
from ..nn import _check_choice
from ._base import check_optional_count, pad, sequences
from ._blocks import PooledRecurrent
from ._heads import Classifier
from .sequence import _POOLINGS, sequence_config

__all__ = ["HierarchicalClassifier"]


class HierarchicalClassifier(Classifier):
    """Classify sequences of units, each unit itself a sequence (the lecture's
    "change the granularity").

    A lower recurrent network reads each unit (the characters of a word,
    the pixels of an image row) and summarises it in one vector; an upper
    one reads the sequence of summaries (the words of a sentence, the rows
    of an image) and a linear layer classifies its summary.  Both levels
    train together, end to end.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
        Both levels.
    hidden_size : int
        Units of the upper network per layer and direction.
    num_layers : int
        Stacked layers at each level.
    input_size : int, optional
        The steps of a unit are float feature vectors of this size ...
    vocab_size, embedding_dim : int, optional
        ... or token ids in ``[0, vocab_size)``, embedded in
        ``embedding_dim`` (default ``unit_hidden_size``).
    num_classes : int, optional
        Default: the largest label of the first ``fit`` plus one.
    unit_hidden_size : int, optional
        Units of the lower network (default ``hidden_size``).
    bidirectional, reverse : bool
        For both levels, as in :class:`SequenceClassifier`.
    pooling, unit_pooling : {"last", "mean", "max"}
        How the upper and the lower network summarise a sequence.
    dropout : float
    dtype : {"float32", "float64"}
    seed : int, optional

    Notes
    -----
    ``X`` is a list of examples; an example is a list of units (1-D token
    arrays or ``[T, input_size]`` arrays, any lengths), or one array
    ``[U, T]`` / ``[U, T, input_size]`` of ``U`` units of equal length
    (so an image ``[rows, columns]`` with ``input_size=1`` is
    ``image[..., None]``).

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import HierarchicalClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = [[rng.integers(0, 2, rng.integers(1, 4)) for _ in range(rng.integers(1, 5))] for _ in range(300)]
    >>> y = np.array([int(sum(u.any() for u in units) >= 2) for units in X])  # units with a 1: two or more?
    >>> model = HierarchicalClassifier(vocab_size=2, hidden_size=16, seed=0)
    >>> history = model.fit(X, y, epochs=15, lr=0.01, progress=False)
    >>> model.score(X, y) > 0.9
    True
    """

    def __init__(self, *, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, num_classes: Optional[int] = None,
                 unit_hidden_size: Optional[int] = None, bidirectional: bool = False, reverse: bool = False,
                 pooling: str = "last", unit_pooling: str = "last", dropout: float = 0.0, dtype: str = "float32",
                 seed: Optional[int] = None) -> None:
        unit_hidden_size = check_optional_count("unit_hidden_size", unit_hidden_size) or hidden_size
        if embedding_dim is None and vocab_size is not None:
            embedding_dim = unit_hidden_size
        config = sequence_config(cell, hidden_size, num_layers, input_size, vocab_size, embedding_dim,
                                 bidirectional, reverse, dropout, dtype, seed)
        config["unit_hidden_size"] = unit_hidden_size
        config["num_classes"] = check_optional_count("num_classes", num_classes, minimum=2)
        config["pooling"] = _check_choice("pooling", pooling, _POOLINGS)
        config["unit_pooling"] = _check_choice("unit_pooling", unit_pooling, _POOLINGS)
        super().__init__(config)

    def _build(self) -> None:
        c = self._config
        options = {**self._recurrent_options(), "bidirectional": c["bidirectional"], "reverse": c["reverse"]}
        self.unit_encoder = PooledRecurrent(**{**options, "hidden_size": c["unit_hidden_size"]},
                                            input_size=c["input_size"], vocab_size=c["vocab_size"],
                                            embedding_dim=c["embedding_dim"], pooling=c["unit_pooling"],
                                            seed=self._child_seed())
        self.encoder = PooledRecurrent(**options, input_size=self.unit_encoder.output_size, pooling=c["pooling"],
                                       seed=self._child_seed())
        rng = np.random.default_rng(self._child_seed())
        self.head_dropout = nn.Dropout(c["dropout"], seed=rng)
        self.head = nn.Linear(self.encoder.output_size, c["num_classes"], dtype=c["dtype"], seed=rng)

    def _inputs(self, X, lengths):
        if lengths is not None:
            raise ValueError("lengths does not apply: each example of X carries its units")
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__") or len(X) == 0:
            raise ValueError("X must be a non-empty list of examples, each a list of units")
        c = self._config
        examples = [sequences(f"X[{i}]", units if isinstance(units, np.ndarray) else list(units), None,
                              vocab_size=c["vocab_size"], input_size=c["input_size"], dtype=self.dtype)
                    for i, units in enumerate(X)]
        return examples, [len(units) for units in examples]

    def _collate(self, items):
        examples = items["x"]
        counts = np.array([len(units) for units in examples])
        units, unit_lengths = pad([u for units in examples for u in units])
        example = np.repeat(np.arange(len(examples)), counts)  # the example of each unit ...
        position = np.arange(len(example)) - np.repeat(np.cumsum(counts) - counts, counts)  # ... and its place
        batch = {"units": units, "unit_lengths": unit_lengths, "counts": counts, "where": (position, example)}
        if "y" in items:
            batch["y"] = items["y"]
        return batch

    def _forward(self, batch):
        summaries = self.unit_encoder.summarize(batch["units"], batch["unit_lengths"])  # [units, F]
        upper = np.zeros((batch["counts"].max(), len(batch["counts"]), summaries.shape[1]), summaries.dtype)
        upper[batch["where"]] = summaries  # [U, B, F]: each example's units in order
        self._where = batch["where"]
        return self.head(self.head_dropout(self.encoder.summarize(upper, batch["counts"])))

    def _backward(self, doutputs):
        dupper = self.encoder.summarize_backward(self.head_dropout.backward(self.head.backward(doutputs)))
        self.unit_encoder.summarize_backward(np.ascontiguousarray(dupper[self._where]))
