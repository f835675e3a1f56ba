"""Optimizers and learning-rate schedules, updating NumPy arrays in place.

An optimizer is built on a dict of live parameter arrays and stepped with
a dict of gradients under the same names -- a model's ``params`` and
``grads``::

    opt = Adam(model.params, lr=1e-3)
    for batch in data:
        model.zero_grad()
        ...                      # forward, loss, backward
        opt.step(model.grads)

``step`` updates every parameter in place, so the model sees the change.
The update rules are PyTorch's (``torch.optim``), one parameter group,
with the learning rate in ``opt.lr`` (schedules change it).  Every
parameter is stepped each time: a parameter with a zero gradient still
moves under momentum or weight decay (PyTorch skips parameters whose
gradient is None).

``state_dict()`` holds the hyper-parameters (JSON-able scalars), the step
count and the per-parameter buffers (NumPy arrays); ``load_state_dict``
resumes from it.  Schedules have the same pair.

Examples
--------
>>> import numpy as np
>>> from rnncore import optim
>>> params = {"w": np.array([1.0, -2.0])}
>>> opt = optim.SGD(params, lr=0.1, momentum=0.9)
>>> opt.step({"w": np.array([1.0, 1.0])})
>>> params["w"]
array([ 0.9, -2.1])
>>> schedule = optim.StepLR(opt, step_size=2, gamma=0.5)
>>> for epoch in range(4):
...     schedule.step()
>>> opt.lr
0.025
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .nn import (_check_choice, _check_count, _check_flag, _check_float_array, _check_number, _check_real,
                 _raise_problems, _state_problems)

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "LRScheduler",
    "StepLR",
    "CosineAnnealingLR",
    "ReduceLROnPlateau",
]

_STATE_KEYS = ("hyperparams", "steps", "state")


class Optimizer:
    """Base of the optimizers: parameters, gradient checks, L2 decay, state.

    A subclass lists its hyper-parameters in ``_HYPERPARAMS`` (attributes
    of the same names), names its buffers in ``_buffer_names`` and
    updates one parameter in ``_update``.

    Parameters
    ----------
    params : dict of str -> ndarray
        The live, writeable float arrays to update (``model.params``).
    lr : float
        Learning rate, ``>= 0``.
    weight_decay : float
        L2 penalty coefficient, ``>= 0``.
    """

    _HYPERPARAMS: tuple = ("lr", "weight_decay")

    def __init__(self, params: Mapping, lr: float, weight_decay: float) -> None:
        if not isinstance(params, Mapping):
            got = type(params).__name__
            raise TypeError(f"params must be a dict of name -> numpy.ndarray (model.params), got {got}")
        if not params:
            raise ValueError("params is empty: nothing to optimize")
        for name, p in params.items():
            _check_float_array(f"params[{name!r}]", p)
            if not p.flags.writeable:
                raise ValueError(f"params[{name!r}] is read-only: the optimizer updates it in place")
        self.params = dict(params)
        self.lr = _check_real("lr", lr, 0.0)
        self.weight_decay = _check_real("weight_decay", weight_decay, 0.0)
        self.steps = 0
        self.skipped_steps = 0
        self.state = self._new_state(self.hyperparams())

    def hyperparams(self) -> dict:
        """The hyper-parameters by name (JSON-able scalars)."""
        return {name: getattr(self, name) for name in self._HYPERPARAMS}

    def _buffer_names(self, hyperparams: Mapping) -> tuple:
        """Names of the per-parameter buffers under ``hyperparams``."""
        raise NotImplementedError

    def _new_state(self, hyperparams: Mapping) -> dict:
        names = self._buffer_names(hyperparams)
        return {name: {b: np.zeros_like(p) for b in names} for name, p in self.params.items()}

    def step(self, grads: Mapping, *, skip_nonfinite: bool = False) -> None:
        """Update every parameter in place from ``grads`` (same names, shapes, dtypes).

        A NaN or infinite gradient would poison the parameters and the
        buffers for good: then nothing changes and FloatingPointError names
        the parameters, or, with ``skip_nonfinite=True``, the step is
        skipped (counted in ``skipped_steps``; ``steps`` does not advance).
        """
        _raise_problems("grads", _state_problems(self.params, grads, "grads"))
        bad = [name for name in self.params if not np.isfinite(grads[name]).all()]
        if bad:
            if _check_flag("skip_nonfinite", skip_nonfinite):
                self.skipped_steps += 1
                return
            raise FloatingPointError(f"non-finite gradients: {', '.join(bad)}; nothing was updated "
                                     "(pass skip_nonfinite=True to skip such steps)")
        self.steps += 1
        for name, p in self.params.items():
            self._update(p, grads[name], self.state[name])

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    def _regularized(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The gradient with the L2 penalty added (a new array when it is)."""
        return g + self.weight_decay * p if self.weight_decay else g

    def state_dict(self) -> dict:
        """``{"hyperparams": {...}, "steps": int, "state": {param: {buffer: array}}}`` (copies)."""
        state = {name: {b: v.copy() for b, v in buffers.items()} for name, buffers in self.state.items()}
        return {"hyperparams": self.hyperparams(), "steps": self.steps, "state": state}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Resume from :meth:`state_dict`: hyper-parameters, step count and buffers.

        Nothing changes unless everything matches; one ValueError lists
        every problem.
        """
        if not isinstance(state_dict, Mapping) or set(state_dict) != set(_STATE_KEYS):
            raise ValueError(f"state_dict must be a dict with keys {_STATE_KEYS}")
        hyperparams, steps, state = (state_dict[k] for k in _STATE_KEYS)
        problems = []
        if not isinstance(hyperparams, Mapping) or set(hyperparams) != set(self._HYPERPARAMS):
            problems.append(f"hyperparams must have the keys {self._HYPERPARAMS}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            problems.append(f"steps must be an int >= 0, got {steps!r}")
        if not isinstance(state, Mapping) or not all(isinstance(b, Mapping) for b in state.values()):
            problems.append("state must be a dict of parameter name -> dict of buffer name -> array")
        elif set(state) != set(self.params):
            problems.append(f"state must have one entry per parameter: {', '.join(self.params)}")
        _raise_problems("optimizer state_dict", problems)
        flat = {f"{n}[{b}]": v for n, buffers in state.items() for b, v in buffers.items()}
        expected = self._new_state(hyperparams)
        flat_expected = {f"{n}[{b}]": v for n, buffers in expected.items() for b, v in buffers.items()}
        _raise_problems("optimizer state_dict", _state_problems(flat_expected, flat))
        for name, value in hyperparams.items():
            setattr(self, name, value)
        self.steps = int(steps)
        self.state = {n: {b: np.array(v) for b, v in buffers.items()} for n, buffers in state.items()}


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2.

    ``g = grad + weight_decay * p``; with momentum ``buf = g`` at the first
    step, then ``buf = momentum * buf + (1 - dampening) * g``, and
    ``g = g + momentum * buf`` (Nesterov) or ``g = buf``; ``p -= lr * g``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.optim import SGD
    >>> params = {"w": np.ones(2)}
    >>> SGD(params, lr=0.5, weight_decay=1.0).step({"w": np.ones(2)})
    >>> params["w"]
    array([0., 0.])
    """

    _HYPERPARAMS = ("lr", "momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        params: Mapping,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.momentum = _check_real("momentum", momentum, 0.0)
        self.dampening = _check_real("dampening", dampening)
        self.nesterov = _check_flag("nesterov", nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening == 0")
        super().__init__(params, lr, weight_decay)

    def _buffer_names(self, hyperparams: Mapping) -> tuple:
        return ("momentum_buffer",) if hyperparams["momentum"] else ()

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        g = self._regularized(p, g)
        if self.momentum:
            buf = state["momentum_buffer"]
            if self.steps == 1:
                buf[...] = g
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum, as PyTorch.

    ``s = alpha * s + (1 - alpha) * g**2``; centered also keeps
    ``m = alpha * m + (1 - alpha) * g`` and uses ``s - m**2``;
    ``step = g / (sqrt(...) + eps)``, accumulated in a momentum buffer
    when ``momentum > 0``; ``p -= lr * step``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.optim import RMSprop
    >>> params = {"w": np.zeros(1)}
    >>> RMSprop(params, lr=0.01, alpha=0.99).step({"w": np.array([2.0])})
    >>> params["w"].round(4)
    array([-0.1])
    """

    _HYPERPARAMS = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(
        self,
        params: Mapping,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        self.alpha = _check_real("alpha", alpha, 0.0, 1.0)
        self.eps = _check_real("eps", eps, 0.0)
        self.momentum = _check_real("momentum", momentum, 0.0)
        self.centered = _check_flag("centered", centered)
        super().__init__(params, lr, weight_decay)

    def _buffer_names(self, hyperparams: Mapping) -> tuple:
        names = ("square_avg",)
        if hyperparams["centered"]:
            names += ("grad_avg",)
        if hyperparams["momentum"] > 0:
            names += ("momentum_buffer",)
        return names

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        g = self._regularized(p, g)
        square_avg = state["square_avg"]
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * g * g
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg *= self.alpha
            grad_avg += (1 - self.alpha) * g
            denom = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denom = np.sqrt(square_avg)
        denom += self.eps
        if self.momentum > 0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            buf += g / denom
            p -= self.lr * buf
        else:
            p -= self.lr * (g / denom)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; ``weight_decay`` is an L2
    penalty added to the gradient, as in ``torch.optim.Adam``.

    ``m = b1 * m + (1 - b1) * g``, ``v = b2 * v + (1 - b2) * g**2``,
    ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.optim import Adam
    >>> params = {"w": np.zeros(2)}
    >>> Adam(params, lr=0.1).step({"w": np.array([3.0, -0.5])})
    >>> params["w"].round(6)
    array([-0.1,  0.1])
    """

    _HYPERPARAMS = ("lr", "betas", "eps", "weight_decay")

    def __init__(
        self,
        params: Mapping,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if not isinstance(betas, Sequence) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = [_check_real(f"betas[{k}]", b, 0.0, 1.0, high_open=True) for k, b in enumerate(betas)]
        self.eps = _check_real("eps", eps, 0.0)
        super().__init__(params, lr, weight_decay)

    def _buffer_names(self, hyperparams: Mapping) -> tuple:
        return ("exp_avg", "exp_avg_sq")

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> None:
        g = self._regularized(p, g)
        beta1, beta2 = self.betas
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg *= beta1
        exp_avg += (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * g * g
        denom = np.sqrt(exp_avg_sq)
        denom /= math.sqrt(1 - beta2**self.steps)
        denom += self.eps
        p -= self.lr / (1 - beta1**self.steps) * (exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as
    ``torch.optim.AdamW``: ``p *= 1 - lr * weight_decay`` before the Adam
    step, which sees the plain gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.optim import AdamW
    >>> params = {"w": np.ones(1)}
    >>> AdamW(params, lr=0.1, weight_decay=0.5).step({"w": np.zeros(1)})
    >>> params["w"]
    array([0.95])
    """

    def __init__(
        self,
        params: Mapping,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)

    def _regularized(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        p *= 1 - self.lr * self.weight_decay
        return g


# --------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------


class LRScheduler:
    """Base of the schedules: sets ``optimizer.lr`` from the epoch count.

    ``step()`` is called once per epoch, after the optimizer's steps.  The
    learning rate is computed from ``base_lr`` (the optimizer's at
    construction) and the epoch: PyTorch's closed form, which its chained
    form equals as long as nothing else changes ``lr``.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an rnncore.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def step(self) -> None:
        """Advance one epoch and set the optimizer's learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self._lr(self.last_epoch)

    def _lr(self, epoch: int) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """The schedule's counters and settings (JSON-able scalars)."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Resume from :meth:`state_dict` (the same keys, or a ValueError)."""
        expected = set(self.state_dict())
        if not isinstance(state_dict, Mapping) or set(state_dict) != expected:
            raise ValueError(f"state_dict must have the keys {sorted(expected)}")
        vars(self).update(state_dict)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.optim import SGD, StepLR
    >>> opt = SGD({"w": np.zeros(1)}, lr=1.0)
    >>> schedule = StepLR(opt, step_size=2, gamma=0.1)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     schedule.step()
    ...     lrs.append(round(opt.lr, 6))
    >>> lrs
    [1.0, 0.1, 0.1, 0.01, 0.01]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        self.step_size = _check_count("step_size", step_size)
        self.gamma = _check_real("gamma", gamma, 0.0)

    def _lr(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs
    (and back up after, periodically, as PyTorch).

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.optim import SGD, CosineAnnealingLR
    >>> opt = SGD({"w": np.zeros(1)}, lr=1.0)
    >>> schedule = CosineAnnealingLR(opt, T_max=2)
    >>> schedule.step(); round(opt.lr, 6)
    0.5
    >>> schedule.step(); round(opt.lr, 6)
    0.0
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        self.T_max = _check_count("T_max", T_max)
        self.eta_min = _check_real("eta_min", eta_min, 0.0)

    def _lr(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class ReduceLROnPlateau(LRScheduler):
    """Divide the learning rate when a validation metric stops improving.

    ``step(metric)`` once per epoch.  An epoch improves on the best so far
    when (mode ``"min"``) ``metric < best * (1 - threshold)``
    (``threshold_mode="rel"``) or ``metric < best - threshold`` (``"abs"``);
    mirrored for ``"max"``.  After more than ``patience`` epochs without
    improvement, ``lr = max(lr * factor, min_lr)`` (skipped when the change
    is at most ``eps``), then ``cooldown`` epochs pass before counting again.
    These are PyTorch's rules.

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.optim import Adam, ReduceLROnPlateau
    >>> opt = Adam({"w": np.zeros(1)}, lr=1e-3)
    >>> plateau = ReduceLROnPlateau(opt, factor=0.5, patience=1)
    >>> for val_loss in [1.0, 0.9, 0.9, 0.9]:
    ...     plateau.step(val_loss)
    >>> opt.lr
    0.0005
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(optimizer)
        self.mode = _check_choice("mode", mode, ("min", "max"))
        self.factor = _check_real("factor", factor, 0.0, 1.0, high_open=True)
        self.patience = _check_count("patience", patience, minimum=0)
        self.threshold = _check_real("threshold", threshold, 0.0)
        self.threshold_mode = _check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = _check_count("cooldown", cooldown, minimum=0)
        self.min_lr = _check_real("min_lr", min_lr, 0.0)
        self.eps = _check_real("eps", eps, 0.0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _improves(self, metric: float) -> bool:
        relative = self.threshold_mode == "rel"
        if self.mode == "min":
            return metric < (self.best * (1 - self.threshold) if relative else self.best - self.threshold)
        return metric > (self.best * (1 + self.threshold) if relative else self.best + self.threshold)

    def step(self, metric: Any) -> None:  # type: ignore[override]
        """Record this epoch's ``metric`` and lower the learning rate on a plateau.

        A NaN metric never improves on the best (as in PyTorch).
        """
        metric = _check_number("metric", metric)
        self.last_epoch += 1
        if self._improves(metric):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.optimizer.lr * self.factor, self.min_lr)
            if self.optimizer.lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
