"""One-to-one: :class:`MLPClassifier` and :class:`MLPRegressor`, the feed-forward baselines."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import nn
from ..nn import _check_choice, _check_count, _check_real
from ._base import check_dtype, check_input, check_optional_count, check_tokens
from ._heads import Classifier, Regressor, head_size

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu")


def _mlp_config(hidden_size, num_layers, activation, input_size, vocab_size, embedding_dim, dropout, dtype,
                seed) -> dict:
    config = {"hidden_size": _check_count("hidden_size", hidden_size),
              "num_layers": _check_count("num_layers", num_layers, minimum=0),
              "activation": _check_choice("activation", activation, _ACTIVATIONS),
              "dropout": _check_real("dropout", dropout, 0.0, 1.0, high_open=True),
              "dtype": check_dtype(dtype),
              "seed": check_optional_count("seed", seed, minimum=0)}
    config.update(check_input(input_size, vocab_size, embedding_dim, config["hidden_size"]))
    return config


class _FeedForward:
    """An optional embedding and a multi-layer perceptron: one vector (or token) in, one out."""

    def _build(self) -> None:
        c = self._config
        rng = np.random.default_rng(self._child_seed())
        if c["vocab_size"] is not None:
            self.embedding = nn.Embedding(c["vocab_size"], c["embedding_dim"], dtype=c["dtype"], seed=rng)
        sizes = [c["input_size"] or c["embedding_dim"]] + [c["hidden_size"]] * c["num_layers"] + [head_size(c)]
        self.mlp = nn.MLP(sizes, c["activation"], dropout=c["dropout"], dtype=c["dtype"], seed=rng)

    def _inputs(self, X, lengths):
        if lengths is not None:
            raise ValueError("lengths does not apply: an MLP takes one vector (or token) per example")
        c = self._config
        X = np.asarray(X)
        if c["vocab_size"] is not None:
            if X.ndim != 1 or not np.issubdtype(X.dtype, np.integer):
                raise ValueError(f"X must be token ids, integers of shape [N], got {X.dtype} of shape {X.shape}")
            check_tokens("X", X, c["vocab_size"])
            X = X.astype(np.intp)
        else:
            if X.ndim != 2 or X.shape[1] != c["input_size"] or not (
                    np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
                raise ValueError(f"X must be real numbers of shape [N, {c['input_size']}], "
                                 f"got {X.dtype} of shape {X.shape}")
            X = X.astype(self.dtype)
            if not np.isfinite(X).all():
                raise ValueError("X holds NaN or infinite values")
        if len(X) == 0:
            raise ValueError("X holds no examples")
        return X, np.zeros(len(X), np.intp)

    def _collate(self, items):
        return items

    def _forward(self, batch):
        x = batch["x"]
        return self.mlp(self.embedding(x) if hasattr(self, "embedding") else x)

    def _backward(self, doutputs):
        dx = self.mlp.backward(doutputs)
        if hasattr(self, "embedding"):
            self.embedding.backward(dx)


_PARAMETERS = """
    Parameters
    ----------
    hidden_size : int
        Units of each hidden layer.
    num_layers : int
        Hidden layers (0: a linear model).
    activation : {{"relu", "tanh", "sigmoid", "gelu"}}
    input_size : int, optional
        Each example is a float vector ``[input_size]`` ...
    vocab_size, embedding_dim : int, optional
        ... or one token id in ``[0, vocab_size)``, embedded in
        ``embedding_dim`` (default ``hidden_size``).
    {head}
    dropout : float
        After each hidden layer.
    dtype : {{"float32", "float64"}}
    seed : int, optional

    There is no ``cell``: nothing recurs in a feed-forward network.
"""


class MLPClassifier(_FeedForward, Classifier):
    """One input, one class: "just a feed-forward network", the baseline.
    {parameters}
    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import MLPClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 2))
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(int)                # XOR of the signs
    >>> model = MLPClassifier(input_size=2, hidden_size=32, seed=0)
    >>> history = model.fit(X, y, epochs=60, lr=0.01, progress=False)
    >>> model.score(X, y) > 0.9
    True
    """

    def __init__(self, *, hidden_size: int = 64, num_layers: int = 1, activation: str = "relu",
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, num_classes: Optional[int] = None, dropout: float = 0.0,
                 dtype: str = "float32", seed: Optional[int] = None) -> None:
        config = _mlp_config(hidden_size, num_layers, activation, input_size, vocab_size, embedding_dim, dropout,
                             dtype, seed)
        config["num_classes"] = check_optional_count("num_classes", num_classes, minimum=2)
        super().__init__(config)


class MLPRegressor(_FeedForward, Regressor):
    """One input, one or more real outputs: the feed-forward baseline for regression.
    {parameters}
    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.models import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, (300, 1))
    >>> model = MLPRegressor(input_size=1, hidden_size=32, activation="tanh", seed=0)
    >>> history = model.fit(X, np.sin(X[:, 0]), epochs=60, lr=0.01, progress=False)
    >>> model.score(X, np.sin(X[:, 0])) > 0.95
    True
    """

    def __init__(self, *, hidden_size: int = 64, num_layers: int = 1, activation: str = "relu",
                 input_size: Optional[int] = None, vocab_size: Optional[int] = None,
                 embedding_dim: Optional[int] = None, num_outputs: Optional[int] = None, dropout: float = 0.0,
                 dtype: str = "float32", seed: Optional[int] = None) -> None:
        config = _mlp_config(hidden_size, num_layers, activation, input_size, vocab_size, embedding_dim, dropout,
                             dtype, seed)
        config["num_outputs"] = check_optional_count("num_outputs", num_outputs)
        super().__init__(config)


MLPClassifier.__doc__ = MLPClassifier.__doc__.format(parameters=_PARAMETERS.format(
    head="num_classes : int, optional\n        Classes; default: the largest label of the first ``fit`` plus one."))
MLPRegressor.__doc__ = MLPRegressor.__doc__.format(parameters=_PARAMETERS.format(
    head="num_outputs : int, optional\n        Real outputs per example; default: from the targets of the first "
         "``fit``."))
