"""What every model shares: arguments, data, batching, the training loop, saving.

A model is an :class:`rnncore.nn.Module` (``params``, ``grads``,
``state_dict``, ``train``/``eval``) with a scikit-learn-like surface:
``fit`` returns a :class:`rnncore.History`, ``predict`` and ``score``
work on the same kind of ``X``, and ``save``/``load`` write and read one
``.npz`` file (the parameters plus a JSON configuration, never pickle).

A subclass supplies the paradigm:

- ``_build()`` creates its modules once every size is known (some sizes,
  such as ``num_classes``, may be inferred from the first ``fit``);
- ``_data(X, y, lengths, fitting)`` checks the user's arrays and returns
  a :class:`Data` (examples plus a size per example for bucketing);
- ``_collate(items)`` pads a batch of examples;
- ``_loss(batch, train)`` runs forward (and backward when ``train``) and
  returns the batch's mean loss, how many items it counted, and the sum
  of the training metric over those items.

Sequences (the ``X`` of most models) are either a list of NumPy arrays of
any lengths -- token ids ``[T]`` or float features ``[T, I]`` -- or one
padded array (``[N, T]`` or ``[N, T, I]``) with ``lengths``.  Batches are
padded internally, time-major, after bucketing examples of similar sizes.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from .. import nn, optim
from .._grad_mode import no_grad
from ..layers import GRU, LSTM, RNN
from ..nn import _check_choice, _check_count, _check_real
from ..serialization import _read_arrays
from ..training import EarlyStopping, GradientMonitor, History, _scale_to_norm

__all__ = ["Model"]

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
_OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD, "rmsprop": optim.RMSprop}
_META = "__rnncore__"
_VERSION = 1
_POOL = 50  # bucketing sorts pools of this many batches by size
_BAR = 24  # characters of the built-in progress bar


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def check_bool(arg: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{arg} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_optional_count(arg: str, value: Any, minimum: int = 1) -> Optional[int]:
    return None if value is None else _check_count(arg, value, minimum)


def check_input(input_size: Any, vocab_size: Any, embedding_dim: Any, hidden_size: int) -> dict:
    """The input part of a configuration: float features of ``input_size``, or token ids."""
    if (input_size is None) == (vocab_size is None):
        raise ValueError("give either input_size (float features) or vocab_size (token ids), "
                         f"not {'both' if input_size is not None else 'neither'}")
    if input_size is not None:
        if embedding_dim is not None:
            raise ValueError("embedding_dim goes with vocab_size (token ids), not with input_size")
        return {"input_size": _check_count("input_size", input_size), "vocab_size": None, "embedding_dim": None}
    embedding_dim = hidden_size if embedding_dim is None else embedding_dim
    return {"input_size": None, "vocab_size": _check_count("vocab_size", vocab_size),
            "embedding_dim": _check_count("embedding_dim", embedding_dim)}


def check_dtype(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` (a name, a NumPy dtype or type)."""
    if isinstance(dtype, (np.dtype, type)):
        dtype = np.dtype(dtype).name
    return _check_choice("dtype", dtype, ("float32", "float64"))


def check_common(cell: Any, hidden_size: Any, num_layers: Any, dropout: Any, dtype: Any, seed: Any) -> dict:
    """The configuration entries every recurrent model has."""
    return {
        "cell": _check_choice("cell", cell, tuple(CELLS)),
        "hidden_size": _check_count("hidden_size", hidden_size),
        "num_layers": _check_count("num_layers", num_layers),
        "dropout": _check_real("dropout", dropout, 0.0, 1.0, high_open=True),
        "dtype": check_dtype(dtype),
        "seed": check_optional_count("seed", seed, minimum=0),
    }


# --------------------------------------------------------------------------
# Data: sequences, labels, padding, bucketing
# --------------------------------------------------------------------------


class Data:
    """Examples ready for batching.

    Parameters
    ----------
    sizes : array_like of int [N]
        What bucketing sorts by (usually the sequence length).
    **fields : list or ndarray
        One entry per example each.
    """

    def __init__(self, sizes, **fields):
        self.sizes = np.asarray(sizes)
        self.fields = fields

    def __len__(self) -> int:
        return len(self.sizes)

    def take(self, idx: np.ndarray) -> dict:
        """The examples at ``idx``, field by field."""
        return {name: value[idx] if isinstance(value, np.ndarray) else [value[i] for i in idx]
                for name, value in self.fields.items()}


def sequences(arg: str, X: Any, lengths: Any, *, vocab_size: Optional[int], input_size: Optional[int],
              dtype: Any = None, allow_empty: bool = False) -> list:
    """``X`` as a list of checked sequences.

    Token ids (``vocab_size`` given) become 1-D integer arrays with values
    in ``[0, vocab_size)``; float features (``input_size`` given) become
    ``[T, input_size]`` arrays of ``dtype``.  ``X`` is a list of
    sequences, or a padded array (``[N, T]`` / ``[N, T, I]``) cut at
    ``lengths`` (None: every sequence has all T steps).
    """
    tokens = vocab_size is not None
    step_ndim = 0 if tokens else 1
    if isinstance(X, np.ndarray):
        if X.ndim != 2 + step_ndim:
            shape = "[N, T]" if tokens else f"[N, T, {input_size}]"
            raise ValueError(f"{arg} must be a list of sequences or a padded array of shape {shape}, "
                             f"got shape {X.shape}")
        N, T = X.shape[:2]
        if lengths is None:
            lengths = np.full(N, T)
        lengths = np.asarray(lengths)
        if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(f"lengths must be {N} integers (one per row of {arg}), got {lengths.dtype} "
                             f"array of shape {lengths.shape}")
        if N and (lengths.min() < 1 or lengths.max() > T):
            raise ValueError(f"lengths must be in [1, {T}], got values in [{lengths.min()}, {lengths.max()}]")
        X = [X[i, :n] for i, n in enumerate(lengths)]
    elif lengths is not None:
        raise ValueError(f"lengths goes with a padded array {arg}; a list of sequences carries its own")
    if isinstance(X, (str, bytes)) or not isinstance(X, Sequence):
        raise TypeError(f"{arg} must be a list of sequences (NumPy arrays) or a padded array, "
                        f"got {type(X).__name__}")
    if len(X) == 0:
        raise ValueError(f"{arg} holds no sequences")
    out = []
    for i, s in enumerate(X):
        s = np.asarray(s)
        if s.ndim != 1 + step_ndim or len(s) < (0 if allow_empty else 1) or (not tokens and s.shape[1] != input_size):
            shape = "[T]" if tokens else f"[T, {input_size}]"
            raise ValueError(f"{arg}[{i}] must have shape {shape} with T >= {0 if allow_empty else 1}, got {s.shape}")
        if tokens:
            if not np.issubdtype(s.dtype, np.integer) and s.size:
                raise TypeError(f"{arg}[{i}] must hold integer token ids, got dtype {s.dtype}")
            s = s.astype(np.intp, copy=False)
        else:
            if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
                raise TypeError(f"{arg}[{i}] must hold real numbers, got dtype {s.dtype}")
            s = s.astype(dtype, copy=False)
            if not np.isfinite(s).all():
                raise ValueError(f"{arg}[{i}] holds NaN or infinite values")
        out.append(s)
    if tokens:
        check_tokens(arg, np.concatenate(out), vocab_size)
    return out


def check_tokens(arg: str, ids: np.ndarray, vocab_size: int) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{arg} must hold token ids in [0, {vocab_size}), got values in [{ids.min()}, {ids.max()}]")


def labels(arg: str, y: Any, n: int, num_classes: Optional[int]) -> np.ndarray:
    """``y`` as ``n`` class labels in ``[0, num_classes)`` (any non-negative ints when None)."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{arg} must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{arg} must have one label per example, shape ({n},), got {y.shape}")
    top = num_classes if num_classes is not None else np.iinfo(np.intp).max
    if y.min() < 0 or y.max() >= top:
        raise ValueError(f"{arg} must hold labels in [0, {num_classes}), got values in [{y.min()}, {y.max()}]")
    return y.astype(np.intp)


def targets(arg: str, y: Any, n: int, num_outputs: Optional[int], dtype: np.dtype) -> np.ndarray:
    """Regression targets ``[n]`` or ``[n, num_outputs]`` as a float ``[n, O]`` array."""
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise TypeError(f"{arg} must hold real numbers, got dtype {y.dtype}")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or len(y) != n or (num_outputs is not None and y.shape[1] != num_outputs):
        outputs = "O" if num_outputs is None else num_outputs
        raise ValueError(f"{arg} must have shape ({n},) or ({n}, {outputs}), got {np.asarray(y).shape}")
    y = y.astype(dtype)
    if not np.isfinite(y).all():
        raise ValueError(f"{arg} holds NaN or infinite values")
    return y


def same_count(arg: str, value: Sequence, n: int) -> None:
    if len(value) != n:
        raise ValueError(f"{arg} must have one entry per example of X ({n}), got {len(value)}")


def pad(seqs: list) -> tuple:
    """Time-major padded array ``[T, B, ...]`` (zeros past each length) and the lengths ``[B]``."""
    lengths = np.array([len(s) for s in seqs])
    out = np.zeros((lengths.max(), len(seqs)) + seqs[0].shape[1:], seqs[0].dtype)
    starts = np.cumsum(lengths) - lengths
    out[np.arange(lengths.sum()) - np.repeat(starts, lengths), np.repeat(np.arange(len(seqs)), lengths)] = \
        np.concatenate(seqs)
    return out, lengths


def step_mask(lengths: np.ndarray, T: int) -> np.ndarray:
    """``[T, B]`` bool, True at the valid steps."""
    return np.arange(T)[:, None] < lengths


def buckets(sizes: np.ndarray, batch_size: int, rng: Optional[np.random.Generator]) -> list:
    """Batches of example indices, each of similar sizes (less padding).

    With ``rng``: shuffle, sort each pool of ``_POOL`` batches by size,
    cut, and shuffle the batches.  Without: all sorted by size, in order.
    """
    n = len(sizes)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    pool = batch_size * _POOL if rng is not None else n
    batches = []
    for start in range(0, n, pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(sizes[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# --------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------


class Progress:
    """A progress bar over one epoch's batches: tqdm when installed, else a
    line on stderr updated in place; nothing when ``enabled`` is False."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.total, self.desc, self.enabled = total, desc, enabled
        self.done, self.postfix, self.start, self.shown, self.width = 0, "", time.perf_counter(), 0.0, 0
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)

    @staticmethod
    def _format(values: Mapping) -> str:
        return " ".join(f"{key}={value:.4g}" for key, value in values.items())

    def update(self, **values: float) -> None:
        self.done += 1
        if not self.enabled:
            return
        self.postfix = self._format(values)
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix, refresh=False)
            self._bar.update(1)
        elif time.perf_counter() - self.shown > 0.1 or self.done == self.total:
            self._write()

    def _write(self, end: str = "") -> None:
        filled = _BAR * self.done // max(self.total, 1)
        elapsed = time.perf_counter() - self.start
        line = (f"{self.desc} [{'#' * filled}{'.' * (_BAR - filled)}] {self.done}/{self.total} "
                f"{elapsed:.1f}s {self.postfix}")
        sys.stderr.write(f"\r{line:<{self.width}}{end}")  # blanks over a longer previous line
        sys.stderr.flush()
        self.width = len(line)
        self.shown = time.perf_counter()

    def close(self, **values: float) -> None:
        if not self.enabled:
            return
        if values:
            self.postfix = self._format(values)
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix, refresh=False)
            self._bar.close()
        else:
            self._write("\n")


class _Meter:
    """Running means of the loss and the metric over an epoch's batches."""

    def __init__(self) -> None:
        self.loss_sum = self.metric_sum = 0.0
        self.count = 0

    def add(self, loss: float, count: int, metric_sum: float) -> None:
        self.loss_sum += loss * count
        self.metric_sum += metric_sum
        self.count += count

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def metric(self) -> float:
        return self.metric_sum / max(self.count, 1)


# --------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------


class Model(nn.Module):
    """The machinery shared by every model of :mod:`rnncore.models`.

    ``fit`` trains (a progress bar per epoch, a :class:`rnncore.History`
    back), ``predict`` and ``score`` evaluate, ``save`` and ``Model.load``
    write and read an ``.npz`` file.  Sizes that the data determine (such
    as ``num_classes``) may be left to the first ``fit``; until then the
    model has no parameters.

    Attributes
    ----------
    config : dict
        The constructor arguments, with inferred sizes filled in after
        ``fit``: ``type(model)(**model.config)`` builds the same model.
    params, grads : dict of str to ndarray
        Every parameter (and its gradient) under dotted names.
    built : bool
        Whether the parameters exist.
    """

    _metric = "accuracy"  # the training metric's name (progress bar, History)
    _targets_required = True  # fit(X, y); False: fit(X) (the targets come from X)
    _registry: dict = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Model._registry[cls.__name__] = cls

    def __init__(self, config: dict) -> None:
        super().__init__()
        self._config = config
        self._seeds = np.random.SeedSequence(config["seed"])
        self._rng = np.random.default_rng(self._seeds.spawn(1)[0])
        self.built = False
        if self._ready():
            self._build_all()

    # -- configuration and building -------------------------------------------

    @property
    def config(self) -> dict:
        return dict(self._config)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._config.items() if value is not None)
        return f"{type(self).__name__}({args})"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._config["dtype"])

    def _child_seed(self) -> int:
        """A new seed for one part of the model, determined by the model's seed."""
        return int(self._seeds.spawn(1)[0].generate_state(1)[0])

    def _ready(self) -> bool:
        """Whether every size is known (some are inferred by the first ``fit``)."""
        return True

    def _build(self) -> None:
        raise NotImplementedError

    def _build_all(self) -> None:
        self._build()
        self.built = True
        self.eval()

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise RuntimeError(f"{type(self).__name__}.{what}: the model is not built yet; "
                               "call fit first (or give the sizes it infers to the constructor)")

    def _recurrent_options(self) -> dict:
        """Keyword arguments of :class:`~rnncore.models._blocks.Recurrent` from the configuration."""
        c = self._config
        return {"cell": c["cell"], "hidden_size": c["hidden_size"], "num_layers": c["num_layers"],
                "dropout": c["dropout"], "dtype": c["dtype"]}

    # -- hooks ------------------------------------------------------------------

    def _data(self, X: Any, y: Any, lengths: Any, fitting: bool) -> Data:
        raise NotImplementedError

    def _collate(self, items: dict) -> Any:
        raise NotImplementedError

    def _loss(self, batch: Any, train: bool) -> tuple:
        raise NotImplementedError

    def _batches(self, data: Data, batch_size: int, rng: Optional[np.random.Generator]):
        """Yield collated batches (shuffled and bucketed with ``rng``; sorted without)."""
        for idx in buckets(data.sizes, batch_size, rng):
            yield self._collate(data.take(idx))

    def _num_batches(self, data: Data, batch_size: int) -> int:
        return len(buckets(data.sizes, batch_size, None))

    def _validation(self, validation_data: Any) -> Data:
        """``validation_data``, a tuple ``(X, y)`` or ``(X, y, lengths)``, as :class:`Data`."""
        if not isinstance(validation_data, tuple) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X, y) or (X, y, lengths), "
                            f"got {type(validation_data).__name__}")
        X, y, *lengths = validation_data
        return self._data(X, y, lengths[0] if lengths else None, fitting=False)

    def _map(self, data: Data, batch_size: int, fn) -> list:
        """``fn(batch)`` (one result per example) over all of ``data``, in inference
        mode; results in the order of ``data``."""
        self.eval()
        results: list = [None] * len(data)
        with no_grad():
            for idx in buckets(data.sizes, batch_size, None):
                for i, r in zip(idx, fn(self._collate(data.take(idx)))):
                    results[i] = r
        return results

    # -- training ---------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, *, lengths: Any = None, epochs: int = 10, batch_size: int = 32,
            optimizer: Any = "adam", lr: float = 1e-3, weight_decay: float = 0.0, lr_schedule: Any = None,
            clip_norm: Optional[float] = 5.0, validation_data: Any = None,
            early_stopping: Optional[EarlyStopping] = None, progress: bool = True,
            skip_nonfinite: bool = False) -> History:
        """Train on ``X`` and ``y``; continue from the current parameters.

        Parameters
        ----------
        X, y
            The examples and their targets (see the class).
        lengths : array_like of int [N], optional
            The valid steps of each row when ``X`` is a padded array.
        epochs : int
            Passes over the data.
        batch_size : int
            Examples per update (batches group examples of similar lengths).
        optimizer : {"adam", "adamw", "sgd", "rmsprop"} or rnncore.optim.Optimizer
            A name builds a new optimizer over ``model.params`` with ``lr``
            and ``weight_decay``; an optimizer built by the caller on
            ``model.params`` is used as it is.
        lr : float
        weight_decay : float
        lr_schedule : None, "cosine" or rnncore.optim.LRScheduler
            Stepped after each epoch: ``"cosine"`` anneals the learning
            rate to 0 over ``epochs``; a schedule built by the caller on the
            ``optimizer`` passed in is used as it is (a
            :class:`~rnncore.optim.ReduceLROnPlateau` sees the validation
            loss, or the training loss without validation data).
        clip_norm : float or None
            Clip the joint gradient norm of each update to this value
            (:func:`rnncore.clip_grad_norm`); None: no clipping.
        validation_data : tuple, optional
            ``(X, y)`` or ``(X, y, lengths)`` evaluated after each epoch.
        early_stopping : rnncore.EarlyStopping, optional
            Stepped after each epoch on the validation loss (the training
            loss without validation data), or on the validation metric
            (training metric) when its ``mode`` is ``"max"``; it restores
            the best parameters if it was built with ``restore_best``.
        progress : bool
            Show a progress bar per epoch on stderr (tqdm if installed).
        skip_nonfinite : bool
            A batch whose loss or gradient is NaN or inf stops training with
            FloatingPointError naming the epoch and batch; True skips that
            update instead (the parameters are left as they were) and counts
            it in the history's ``skipped``.

        Returns
        -------
        rnncore.History
            Per epoch: ``train_loss``, ``train_<metric>``, ``val_loss`` and
            ``val_<metric>`` with validation data, ``lr``, ``grad_norm``
            (mean joint gradient norm before clipping) and
            ``grad_norm_max``, ``skipped`` (non-finite batches skipped),
            ``time`` (seconds), and per parameter
            ``grad_norm/<name>/mean|min|max``.
        """
        owner = type(self).__name__
        epochs = _check_count("epochs", epochs)
        batch_size = _check_count("batch_size", batch_size)
        max_norm = math.inf if clip_norm is None else _check_real("clip_norm", clip_norm, 0.0)
        if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
            raise TypeError(f"early_stopping must be an rnncore.EarlyStopping, got {type(early_stopping).__name__}")
        progress = check_bool("progress", progress)
        skip_nonfinite = check_bool("skip_nonfinite", skip_nonfinite)
        if y is None and self._targets_required:
            raise TypeError(f"{owner}.fit: y is required (the targets of X)")
        data = self._data(X, y, lengths, fitting=True)
        if not self.built:
            self._build_all()
        val = None if validation_data is None else self._validation(validation_data)
        opt = self._optimizer(optimizer, lr, weight_decay)
        schedule = self._schedule(lr_schedule, opt, epochs)
        params, grads = self.params, self.grads  # live arrays: collected once, not at every step
        history, monitor = History(), GradientMonitor(warn=False)
        metric = self._metric
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            self.train()
            monitor.reset()
            meter, norms, skipped = _Meter(), [], 0
            bar = Progress(self._num_batches(data, batch_size), f"{owner} epoch {epoch}/{epochs}", progress)
            for number, batch in enumerate(self._batches(data, batch_size, self._rng), 1):
                for g in grads.values():
                    g.fill(0)
                loss, count, metric_sum = self._loss(batch, train=True)
                grad_norms = monitor.record(grads)  # per parameter, before clipping
                total = math.hypot(*grad_norms.values())
                if not (math.isfinite(loss) and math.isfinite(total)):
                    if skip_nonfinite:
                        skipped += 1
                        continue
                    bar.close()
                    what = "loss" if not math.isfinite(loss) else "gradient of " + ", ".join(
                        name for name, norm in grad_norms.items() if not math.isfinite(norm))
                    raise FloatingPointError(f"{owner}.fit: non-finite {what} at epoch {epoch}, batch {number} "
                                             "(pass skip_nonfinite=True to skip such updates)")
                meter.add(loss, count, metric_sum)
                _scale_to_norm(grads.values(), total, max_norm)  # clip_grad_norm without measuring again
                norms.append(total)
                opt.step(grads)
                bar.update(loss=meter.loss, **{metric: meter.metric})
            row = {"train_loss": meter.loss, f"train_{metric}": meter.metric}
            if val is not None:
                row["val_loss"], row[f"val_{metric}"] = self._evaluate(val, batch_size)
            bar.close(**{key.replace("train_", ""): value for key, value in row.items()})
            if not norms:
                bar.close()
                raise FloatingPointError(f"{owner}.fit: every batch of epoch {epoch} had a non-finite loss or "
                                         "gradient (all skipped)")
            row.update(lr=opt.lr, grad_norm=float(np.mean(norms)), grad_norm_max=float(np.max(norms)),
                       skipped=skipped, time=time.perf_counter() - start)
            history.log(grad_stats=monitor.summary(), **row)
            prefix = "val_" if val is not None else "train_"
            if isinstance(schedule, optim.ReduceLROnPlateau):
                schedule.step(row[prefix + "loss"])
            elif schedule is not None:
                schedule.step()
            if early_stopping is not None:
                watched = row[prefix + (metric if early_stopping.mode == "max" else "loss")]
                if early_stopping.step(watched, params):
                    break
        self.eval()
        return history

    def _optimizer(self, optimizer: Any, lr: float, weight_decay: float) -> optim.Optimizer:
        if isinstance(optimizer, optim.Optimizer):
            mine = self.params
            if set(optimizer.params) != set(mine) or any(optimizer.params[k] is not p for k, p in mine.items()):
                raise ValueError("optimizer must be built on this model's params (Optimizer(model.params, ...))")
            return optimizer
        if not isinstance(optimizer, str):
            raise TypeError(f"optimizer must be one of {', '.join(_OPTIMIZERS)} or an rnncore.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        name = _check_choice("optimizer", optimizer, tuple(_OPTIMIZERS))
        return _OPTIMIZERS[name](self.params, lr=lr, weight_decay=weight_decay)

    @staticmethod
    def _schedule(lr_schedule: Any, opt: optim.Optimizer, epochs: int) -> Optional[optim.LRScheduler]:
        if lr_schedule is None or isinstance(lr_schedule, optim.LRScheduler):
            if lr_schedule is not None and lr_schedule.optimizer is not opt:
                raise ValueError("lr_schedule must be built on the optimizer passed to fit")
            return lr_schedule
        if lr_schedule != "cosine":
            raise ValueError(f"lr_schedule must be None, 'cosine' or an rnncore.optim.LRScheduler, got {lr_schedule!r}")
        return optim.CosineAnnealingLR(opt, T_max=epochs)

    def _evaluate(self, data: Data, batch_size: int) -> tuple:
        """Mean loss and metric over ``data`` in inference mode."""
        self.eval()
        meter = _Meter()
        with no_grad():
            for batch in self._batches(data, batch_size, None):
                meter.add(*self._loss(batch, train=False))
        return meter.loss, meter.metric

    # -- saving -----------------------------------------------------------------

    def save(self, path: Any) -> None:
        """Write the class, configuration and parameters to ``path`` (an ``.npz``
        archive with a JSON entry; no pickle).  Read it back with ``load``."""
        self._require_built("save")
        meta = {"format": "rnncore", "version": _VERSION, "class": type(self).__name__, "config": self._config}
        with open(os.fspath(path), "wb") as f:  # np.savez would append ".npz" to a bare name
            np.savez(f, **{_META: np.array(json.dumps(meta))}, **self.state_dict())

    @classmethod
    def load(cls, path: Any) -> "Model":
        """Rebuild a model written by ``save``; it predicts exactly as the saved one.

        Called on a model class, the file must hold that class (or a
        subclass); called as ``Model.load``, any model.

        Raises
        ------
        ValueError
            If the file is not an rnncore model file of this class, or its
            arrays do not fit its configuration.
        """
        path = os.fspath(path)
        arrays = _read_arrays(path)
        meta = arrays.pop(_META, None)
        try:
            info = json.loads(meta[()]) if meta is not None and meta.shape == () and meta.dtype.kind == "U" else None
        except ValueError:
            info = None
        if not isinstance(info, dict) or info.get("format") != "rnncore" or not isinstance(info.get("config"), dict):
            raise ValueError(f"{cls.__name__}.load: {path} is not an rnncore model file")
        if info.get("version") != _VERSION:
            raise ValueError(f"{cls.__name__}.load: {path} has format version {info.get('version')!r}; "
                             f"this rnncore reads version {_VERSION}")
        found = Model._registry.get(info.get("class"))
        if found is None or not issubclass(found, cls):
            hint = "" if found is not None else " (rnncore.load reads layers and cells)"
            raise ValueError(f"{cls.__name__}.load: {path} holds a {info.get('class')!r}, not a {cls.__name__}{hint}")
        try:
            model = found(**info["config"])
            model.load_state_dict(arrays)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{cls.__name__}.load: {path} does not hold a valid {found.__name__}: {e}") from None
        return model
