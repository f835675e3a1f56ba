"""Keeping an eye on training: gradient clipping and monitoring, early
stopping, and a per-epoch history.

Backpropagation through time multiplies many Jacobians, so an RNN's
gradients can vanish (learning stops reaching early steps) or explode (a
single step wrecks the weights).  :func:`clip_grad_norm` and
:func:`clip_grad_value` bound them; :class:`GradientMonitor` records each
parameter's gradient norm at every step and warns, naming the parameter,
when one vanishes or explodes.  RNNs also overfit easily:
:class:`EarlyStopping` stops on a stalled validation metric and restores
the best parameters.  :class:`History` keeps the per-epoch numbers and
plots them.

Gradients are given as a dict of name -> array (a model's ``grads``) or a
list of arrays (named ``"0"``, ``"1"``, ... in messages).

Examples
--------
>>> import numpy as np, rnncore
>>> from rnncore import losses, nn, optim
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((64, 3)).astype(np.float32)
>>> y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
>>> model = nn.MLP([3, 16, 1], activation="tanh", seed=0)
>>> opt = optim.Adam(model.params, lr=0.01)
>>> monitor, history = rnncore.GradientMonitor(), rnncore.History()
>>> for epoch in range(50):
...     model.zero_grad()
...     loss, dy = losses.mse_loss(model(x), y)
...     dx = model.backward(dy)
...     norm = rnncore.clip_grad_norm(model.grads, 1.0)
...     _ = monitor.record(model.grads)
...     opt.step(model.grads)
...     history.log(train_loss=loss, grad_stats=monitor.summary())
...     monitor.reset()
>>> history.history["train_loss"][-1] < 0.2 * history.history["train_loss"][0]
True
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Mapping
from typing import Any, Optional, Union

import numpy as np

from .nn import (_check_choice, _check_count, _check_flag, _check_float_array, _check_number, _check_real,
                 _raise_problems, _state_problems)

__all__ = ["GradientWarning", "clip_grad_norm", "clip_grad_value", "GradientMonitor", "EarlyStopping", "History"]

Grads = Union[Mapping, list, tuple]

_GRAD_STATS = ("mean", "min", "max")


class GradientWarning(UserWarning):
    """A gradient norm vanished, exploded or is not finite (see :class:`GradientMonitor`)."""


def _named_arrays(arrays: Any, arg: str = "grads") -> list:
    """``[(name, array)]`` from a dict or a list of float arrays (argument ``arg``)."""
    if isinstance(arrays, Mapping):
        items = [(str(name), a) for name, a in arrays.items()]
    elif isinstance(arrays, (list, tuple)):
        items = [(str(k), a) for k, a in enumerate(arrays)]
    else:
        got = type(arrays).__name__
        raise TypeError(f"{arg} must be a dict of name -> numpy.ndarray or a list of arrays, got {got}")
    for name, a in items:
        _check_float_array(f"{arg}[{name!r}]", a)
    return items


def _norm(g: np.ndarray) -> float:
    """L2 norm of all elements (no overflow warning: inf is reported as inf)."""
    return float(np.linalg.norm(g.reshape(-1)))


def clip_grad_norm(grads: Grads, max_norm: float, *, error_if_nonfinite: bool = True) -> float:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the total norm is the norm of
    all elements of all arrays together; when it exceeds ``max_norm``,
    every array is multiplied by ``max_norm / (total + 1e-6)``.

    Parameters
    ----------
    grads : dict of str -> ndarray, or list of ndarray
    max_norm : float
        ``>= 0``; ``inf`` only measures.
    error_if_nonfinite : bool
        When the total norm is NaN or inf: True raises FloatingPointError
        naming the offending arrays; False leaves the gradients unchanged
        and returns the non-finite norm (skip that update).

    Returns
    -------
    float
        The total norm before clipping.

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> grads = {"w": np.array([3.0, 0.0]), "b": np.array([4.0])}
    >>> rnncore.clip_grad_norm(grads, 1.0)
    5.0
    >>> grads["w"].round(6), grads["b"].round(6)
    (array([0.6, 0. ]), array([0.8]))
    """
    named = _named_arrays(grads)
    max_norm = _check_real("max_norm", max_norm, 0.0)
    error_if_nonfinite = _check_flag("error_if_nonfinite", error_if_nonfinite)
    norms = [_norm(g) for _, g in named]
    total = math.hypot(*norms)
    if not math.isfinite(total):
        if error_if_nonfinite:
            bad = [name for (name, _), n in zip(named, norms) if not math.isfinite(n)]
            raise FloatingPointError(
                f"the total gradient norm is {total}; non-finite gradients: {', '.join(bad)} "
                "(pass error_if_nonfinite=False to get the norm back instead)"
            )
        return total
    _scale_to_norm([g for _, g in named], total, max_norm)
    return total


def _scale_to_norm(arrays, total: float, max_norm: float) -> None:
    """Scale ``arrays`` in place from joint norm ``total`` (finite) to at most ``max_norm``."""
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in arrays:
            g *= g.dtype.type(scale)


def clip_grad_value(grads: Grads, clip_value: float) -> None:
    """Clip every gradient element in place to ``[-clip_value, clip_value]``.

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> grads = [np.array([-3.0, 0.5, 2.0])]
    >>> rnncore.clip_grad_value(grads, 1.0)
    >>> grads[0]
    array([-1. ,  0.5,  1. ])
    """
    named = _named_arrays(grads)
    clip_value = _check_real("clip_value", clip_value, 0.0)
    for _, g in named:
        np.clip(g, -clip_value, clip_value, out=g)


class GradientMonitor:
    """Record every parameter's gradient norm at every step; warn on trouble.

    A :class:`GradientWarning` naming the parameter is issued when its
    gradient norm becomes vanishing (``< vanish_threshold``), exploding
    (``> explode_threshold``) or not finite -- once on entering that
    condition, again only after it has left it, so a persistent problem
    does not flood the output (:meth:`summary` counts every step).

    Parameters
    ----------
    vanish_threshold : float
    explode_threshold : float
    warn : bool
        False records without warning.

    Attributes
    ----------
    norms : dict of str -> list of float
        The norms recorded since the last :meth:`reset`, per parameter.
    steps : int
        Steps recorded since construction.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np, rnncore
    >>> monitor = rnncore.GradientMonitor(explode_threshold=100.0)
    >>> grads = {"encoder.weight_hh_l0": np.full(4, 1e3), "head.bias": np.ones(2)}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     norms = monitor.record(grads)
    >>> print(caught[0].message)
    gradient of 'encoder.weight_hh_l0' exploded: norm 2e+03 > 100 at step 1
    >>> round(monitor.summary()["head.bias"]["max"], 4)
    1.4142
    """

    def __init__(self, *, vanish_threshold: float = 1e-7, explode_threshold: float = 1e3, warn: bool = True) -> None:
        self.vanish_threshold = _check_real("vanish_threshold", vanish_threshold, 0.0)
        self.explode_threshold = _check_real("explode_threshold", explode_threshold, self.vanish_threshold)
        self.warn = _check_flag("warn", warn)
        self.norms: dict = {}
        self.steps = 0
        self._condition: dict = {}

    def _diagnose(self, norm: float) -> Optional[str]:
        """What is wrong with a gradient of this norm, or None."""
        if not math.isfinite(norm):
            return "is not finite"
        if norm < self.vanish_threshold:
            return "vanished"
        if norm > self.explode_threshold:
            return "exploded"
        return None

    def record(self, grads: Grads) -> dict:
        """Record this step's gradient norms (call after backward); returns them by name."""
        named = _named_arrays(grads)
        self.steps += 1
        norms = {}
        for name, g in named:
            norm = norms[name] = _norm(g)
            self.norms.setdefault(name, []).append(norm)
            condition = self._diagnose(norm)
            if self.warn and condition and condition != self._condition.get(name):
                limit = {"vanished": f"< {self.vanish_threshold:g}", "exploded": f"> {self.explode_threshold:g}"}
                detail = f"norm {norm:.3g} {limit.get(condition, '')}".rstrip()
                warnings.warn(
                    f"gradient of {name!r} {condition}: {detail} at step {self.steps}", GradientWarning, stacklevel=2
                )
            self._condition[name] = condition
        return norms

    def summary(self) -> dict:
        """Per parameter, over the steps since the last :meth:`reset`: ``mean``,
        ``min``, ``max``, ``last`` norm, ``steps``, and how many steps it
        ``vanished``, ``exploded`` or was ``nonfinite``."""
        result = {}
        for name, values in self.norms.items():
            arr = np.array(values)
            conditions = [self._diagnose(v) for v in values]
            result[name] = {
                "mean": float(arr.mean()),
                "min": float(arr.min()),
                "max": float(arr.max()),
                "last": values[-1],
                "steps": len(values),
                "vanished": conditions.count("vanished"),
                "exploded": conditions.count("exploded"),
                "nonfinite": conditions.count("is not finite"),
            }
        return result

    def reset(self) -> None:
        """Forget the recorded norms (e.g. at the start of an epoch)."""
        self.norms = {}


class EarlyStopping:
    """Stop when a validation metric has not improved for ``patience`` epochs.

    An epoch improves when its metric is below ``best - min_delta`` (mode
    ``"min"``) or above ``best + min_delta`` (``"max"``).  Given the
    parameters, :meth:`step` keeps a copy of them at the best epoch; with
    ``restore_best`` it copies them back, in place, when it says stop.

    Parameters
    ----------
    patience : int
        Epochs without improvement tolerated (stop at the ``patience``-th).
    min_delta : float
    mode : {"min", "max"}
    restore_best : bool

    Attributes
    ----------
    best : float
    best_epoch : int or None
        1-based epoch of ``best``.
    best_params : dict or None
        The snapshot (copies) of the parameters at ``best_epoch``.

    Examples
    --------
    >>> import numpy as np, rnncore
    >>> params = {"w": np.zeros(1)}
    >>> stopper = rnncore.EarlyStopping(patience=2)
    >>> for epoch, val_loss in enumerate([0.9, 0.5, 0.6, 0.7, 0.4]):
    ...     params["w"][0] = epoch
    ...     if stopper.step(val_loss, params):
    ...         break
    >>> epoch, stopper.best_epoch, params["w"]
    (3, 2, array([1.]))
    """

    def __init__(
        self, patience: int = 10, min_delta: float = 0.0, mode: str = "min", restore_best: bool = True
    ) -> None:
        self.patience = _check_count("patience", patience, minimum=1)
        self.min_delta = _check_real("min_delta", min_delta, 0.0)
        self.mode = _check_choice("mode", mode, ("min", "max"))
        self.restore_best = _check_flag("restore_best", restore_best)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch: Optional[int] = None
        self.best_params: Optional[dict] = None
        self.epoch = 0
        self.bad_epochs = 0

    def _improves(self, metric: float) -> bool:
        if self.mode == "min":
            return metric < self.best - self.min_delta
        return metric > self.best + self.min_delta

    def step(self, metric: Any, params: Optional[Mapping] = None) -> bool:
        """Record this epoch's ``metric`` (and best ``params``); True means stop.

        A NaN metric never counts as an improvement.
        """
        metric = _check_number("metric", metric)
        self.epoch += 1
        if self._improves(metric):
            self.best, self.best_epoch, self.bad_epochs = metric, self.epoch, 0
            if params is not None:
                if not isinstance(params, Mapping):
                    raise TypeError(f"params must be a dict of name -> numpy.ndarray, got {type(params).__name__}")
                self.best_params = {name: p.copy() for name, p in _named_arrays(params, "params")}
        else:
            self.bad_epochs += 1
        stop = self.bad_epochs >= self.patience
        if stop and self.restore_best and params is not None and self.best_params is not None:
            self.restore(params)
        return stop

    def restore(self, params: Mapping) -> None:
        """Copy the best parameters into ``params`` in place (names and shapes must match)."""
        if self.best_params is None:
            raise RuntimeError("no parameters recorded: pass params to step()")
        _raise_problems("params", _state_problems(self.best_params, params, "params"))
        for name, best in self.best_params.items():
            np.copyto(params[name], best)


class History:
    """Per-epoch numbers: losses, metrics and gradient-norm statistics.

    ``history[key]`` is a list with one value per logged epoch; a key
    absent from an epoch holds NaN there, so all lists have the same length.

    Examples
    --------
    >>> import rnncore
    >>> history = rnncore.History()
    >>> history.log(train_loss=1.0, val_loss=1.2, val_accuracy=0.5)
    >>> history.log(train_loss=0.7)
    >>> history["val_loss"]
    [1.2, nan]
    """

    def __init__(self) -> None:
        self.history: dict = {}
        self.epochs = 0

    def __getitem__(self, key: str) -> list:
        """``history[key]``: the values of ``key``, one per logged epoch."""
        try:
            return self.history[key]
        except KeyError:
            raise KeyError(f"{key!r} was never logged; logged: {', '.join(self.history) or 'nothing'}") from None

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def log(self, *, grad_stats: Optional[Mapping] = None, **metrics: Any) -> None:
        """Append one epoch.

        Parameters
        ----------
        grad_stats : dict, optional
            :meth:`GradientMonitor.summary`, stored as
            ``grad_norm/<param>/mean`` (also ``min``, ``max``).
        **metrics : float
            Any named numbers (``train_loss=...``, ``val_accuracy=...``).
        """
        row = {}
        for key, value in metrics.items():
            if not isinstance(value, numbers.Real):
                raise TypeError(f"{key} must be a real number, got {type(value).__name__}")
            row[key] = float(value)
        for name, stats in (grad_stats or {}).items():
            row.update({f"grad_norm/{name}/{stat}": float(stats[stat]) for stat in _GRAD_STATS})
        for key in [*self.history, *(k for k in row if k not in self.history)]:
            self.history.setdefault(key, [math.nan] * self.epochs).append(row.get(key, math.nan))
        self.epochs += 1

    def plot(self, path: Union[str, os.PathLike]) -> None:
        """Write a PNG: the losses (keys containing "loss") above, the mean
        gradient norm of each parameter (log scale) below, per epoch.

        Needs matplotlib (``pip install 'rnncore[plot]'``).
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as error:
            raise ImportError("History.plot needs matplotlib: pip install 'rnncore[plot]'") from error
        epochs = np.arange(1, self.epochs + 1)
        losses = [key for key in self.history if "loss" in key]
        grad_means = [key for key in self.history if key.startswith("grad_norm/") and key.endswith("/mean")]
        fig = Figure(figsize=(8, 7 if grad_means else 4), layout="constrained")
        axes = fig.subplots(2 if grad_means else 1, 1, sharex=True, squeeze=False)[:, 0]
        for key in losses:
            axes[0].plot(epochs, self.history[key], marker=".", label=key)
        axes[0].set_ylabel("loss")
        for key in grad_means:
            axes[1].plot(epochs, self.history[key], label=key[len("grad_norm/") : -len("/mean")])
        if grad_means:
            axes[1].set_yscale("log")
            axes[1].set_ylabel("mean gradient norm")
        for ax in axes:
            if ax.lines:
                ax.legend(fontsize="small")
        axes[-1].set_xlabel("epoch")
        fig.savefig(path, format="png")
