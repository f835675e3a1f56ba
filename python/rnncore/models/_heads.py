"""One output per example: the classification and regression sides of the models.

:class:`Classifier` and :class:`Regressor` own the targets, the loss, the
metric, ``predict``/``score`` (and ``predict_proba``); the model classes
combine one of them with a body that turns a batch of examples into one
vector each:

- ``_inputs(X, lengths)`` -> ``(examples, sizes)``: checked inputs and a
  size per example for bucketing;
- ``_collate(items)`` -> batch dict (``items["x"]``, and ``items["y"]`` when
  there are targets);
- ``_forward(batch)`` -> outputs ``[B, out_size]``; ``_backward(doutputs)``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..losses import cross_entropy, mse_loss
from ..nn import _check_count
from ._base import Data, Model, labels, softmax, targets


class _OneOutput(Model):
    """Training and inference for models with one output vector per example."""

    def _inputs(self, X: Any, lengths: Any) -> tuple:
        raise NotImplementedError

    def _forward(self, batch: dict) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, doutputs: np.ndarray) -> None:
        raise NotImplementedError

    def _targets(self, y: Any, n: int, fitting: bool) -> np.ndarray:
        raise NotImplementedError

    def _objective(self, outputs: np.ndarray, y: np.ndarray) -> tuple:
        """``(loss, doutputs, count, metric_sum)``."""
        raise NotImplementedError

    def _data(self, X, y, lengths, fitting):
        examples, sizes = self._inputs(X, lengths)
        if y is None:
            return Data(sizes, x=examples)
        return Data(sizes, x=examples, y=self._targets(y, len(sizes), fitting))

    def _loss(self, batch, train):
        outputs = self._forward(batch)
        loss, doutputs, count, metric = self._objective(outputs, batch["y"])
        if train:
            self._backward(doutputs)
        return loss, count, metric

    def _outputs(self, X: Any, lengths: Any, batch_size: int, what: str) -> np.ndarray:
        """The outputs ``[N, out_size]`` for ``X``, in inference mode."""
        self._require_built(what)
        batch_size = _check_count("batch_size", batch_size)
        return np.stack(self._map(self._data(X, None, lengths, fitting=False), batch_size, self._forward))


class Classifier(_OneOutput):
    """Class labels in ``[0, num_classes)``; ``num_classes`` inferred from ``y`` when not given."""

    _metric = "accuracy"

    def _ready(self) -> bool:
        return self._config["num_classes"] is not None

    def _targets(self, y, n, fitting):
        y = labels("y", y, n, self._config["num_classes"] if self.built else None)
        if fitting and not self.built:
            self._config["num_classes"] = max(int(y.max()) + 1, 2)
        return y

    def _objective(self, logits, y):
        loss, dlogits = cross_entropy(logits, y)
        return loss, dlogits, len(y), int((logits.argmax(axis=-1) == y).sum())

    def predict_proba(self, X: Any, *, lengths: Any = None, batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``[N, num_classes]``."""
        return softmax(self._outputs(X, lengths, batch_size, "predict_proba"))

    def predict(self, X: Any, *, lengths: Any = None, batch_size: int = 256) -> np.ndarray:
        """The most probable class of each example, ``[N]``."""
        return self._outputs(X, lengths, batch_size, "predict").argmax(axis=-1)

    def score(self, X: Any, y: Any, *, lengths: Any = None) -> float:
        """Accuracy: the fraction of examples whose predicted class is ``y``."""
        predicted = self.predict(X, lengths=lengths)
        return float(np.mean(predicted == labels("y", y, len(predicted), self._config["num_classes"])))


class Regressor(_OneOutput):
    """Real targets ``[N]`` or ``[N, num_outputs]``; ``num_outputs`` inferred from ``y``
    when not given.  Loss: mean squared error; training metric: mean absolute error."""

    _metric = "mae"

    def _ready(self) -> bool:
        return self._config["num_outputs"] is not None

    def _targets(self, y, n, fitting):
        y = targets("y", y, n, self._config["num_outputs"] if self.built else None, self.dtype)
        if fitting and not self.built:
            self._config["num_outputs"] = y.shape[1]
        return y

    def _objective(self, outputs, y):
        loss, doutputs = mse_loss(outputs, y)
        return loss, doutputs, y.size, float(np.abs(outputs - y).sum())

    def predict(self, X: Any, *, lengths: Any = None, batch_size: int = 256) -> np.ndarray:
        """Predictions ``[N]`` (one output) or ``[N, num_outputs]``."""
        outputs = self._outputs(X, lengths, batch_size, "predict")
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs

    def score(self, X: Any, y: Any, *, lengths: Any = None) -> float:
        """The coefficient of determination R^2 (averaged over outputs; 1 is perfect)."""
        predicted = self._outputs(X, lengths, 256, "score")
        y = targets("y", y, len(predicted), self._config["num_outputs"], self.dtype)
        residual = ((y - predicted) ** 2).sum(axis=0)
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = 1 - residual / np.where(total > 0, total, 1)
        return float(np.mean(np.where(total > 0, r2, (residual == 0).astype(float))))


def head_size(config: dict) -> Optional[int]:
    """Outputs of the last layer: ``num_classes`` or ``num_outputs``."""
    return config.get("num_classes") or config.get("num_outputs")
