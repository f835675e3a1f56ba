"""Loss functions returning the loss and its gradient in one call.

Each function returns ``(loss, grad)``: the loss as a Python float and the
gradient with respect to its first argument, an array of the same shape
and dtype, ready for the model's ``backward``.  They compute in the dtype
of the input (float32 or float64), stably for any finite input.

``mask`` (bool, True where a step counts) leaves padded steps of a
variable-length batch out of both the loss and the gradient; its shape is
the leading part of the target's shape (``[T, B]`` for targets ``[T, B]``
or ``[T, B, F]``).  ``reduction="mean"`` divides by the number of counted
elements (for :func:`cross_entropy`, by their summed class weights, as
PyTorch does); ``"sum"`` adds them up.  When nothing counts, the mean is
0.0 with a zero gradient (PyTorch returns NaN).

Examples
--------
>>> import numpy as np
>>> from rnncore import losses
>>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
>>> loss, dlogits = losses.cross_entropy(logits, np.array([0, 2]))
>>> round(loss, 4), dlogits.shape
(0.6691, (2, 3))
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .nn import _check_choice, _check_float_array, _check_int_array, _check_shape, _sigmoid

__all__ = ["cross_entropy", "mse_loss", "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("mean", "sum")


def _check_mask(mask: Optional[np.ndarray], shape: tuple) -> Optional[np.ndarray]:
    """``mask`` reshaped to broadcast against ``shape`` (None stays None)."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        got = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"mask must be a numpy.ndarray of bool (True where a step counts), got {got}")
    if mask.shape != shape[: mask.ndim]:
        raise ValueError(f"mask must have shape {shape} or a leading part of it, got {mask.shape}")
    return mask.reshape(mask.shape + (1,) * (len(shape) - mask.ndim))


def _check_pair(input_name: str, input: np.ndarray, target: np.ndarray) -> None:
    """``input`` a float array; ``target`` of the same shape and dtype."""
    _check_float_array(input_name, input)
    _check_float_array("target", target, input.dtype)
    _check_shape("target", target, input.shape)


def _reduce(loss: np.ndarray, weight: Optional[np.ndarray], reduction: str) -> tuple:
    """Reduce the element-wise ``loss`` (times ``weight``, broadcast).

    Returns ``(value, factor)``: the gradient of each element is its own
    gradient times ``weight`` times ``factor``.
    """
    if weight is None:
        total, count = loss.sum(), loss.size
    else:
        total, count = (loss * weight).sum(), np.broadcast_to(weight, loss.shape).sum()
    if reduction == "sum":
        return float(total), 1.0
    if count == 0:
        return 0.0, 0.0
    return float(total / count), 1.0 / count


def _scale(grad: np.ndarray, weight: Optional[np.ndarray], factor: float) -> np.ndarray:
    """``grad * weight * factor`` in ``grad``'s dtype."""
    grad *= grad.dtype.type(factor)
    if weight is not None:
        grad *= weight
    return grad


def cross_entropy(
    logits: np.ndarray,
    target: np.ndarray,
    *,
    weight: Optional[np.ndarray] = None,
    ignore_index: int = -100,
    mask: Optional[np.ndarray] = None,
    reduction: str = "mean",
) -> tuple:
    """Softmax cross-entropy of class logits against integer targets.

    ``loss_i = -w[t_i] * log softmax(logits_i)[t_i]`` over the counted
    positions (target not ``ignore_index`` and ``mask`` True), computed
    with a stable log-sum-exp.  The mean divides by ``sum_i w[t_i]``
    (PyTorch's weighted mean).

    Parameters
    ----------
    logits : ndarray [..., C]
        float32 or float64, classes on the last axis (PyTorch puts them on
        axis 1: move the axis when comparing).
    target : ndarray [...] of int
        Class indices in ``[0, C)``, or ``ignore_index``; positions left
        out by ``mask`` may hold anything.
    weight : ndarray [C], optional
        Class weights, same dtype as ``logits``.
    ignore_index : int
        Target value that does not count.
    mask : bool ndarray, optional
        True where a position counts (shape: leading part of target's).
    reduction : {"mean", "sum"}

    Returns
    -------
    loss : float
    dlogits : ndarray [..., C]

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.losses import cross_entropy
    >>> logits = np.zeros((3, 2, 4), np.float32)                 # [T, B, C]
    >>> target = np.array([[1, 2], [3, 0], [0, 0]])              # [T, B]
    >>> lengths = np.array([3, 2])
    >>> mask = np.arange(3)[:, None] < lengths                   # [T, B]
    >>> loss, dlogits = cross_entropy(logits, target, mask=mask)
    >>> round(loss, 4), dlogits.dtype, float(abs(dlogits[2, 1]).sum())
    (1.3863, dtype('float32'), 0.0)
    """
    _check_float_array("logits", logits)
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape [..., C] with C >= 1, got {logits.shape}")
    num_classes = logits.shape[-1]
    _check_int_array("target", target)
    _check_shape("target", target, logits.shape[:-1])
    _check_choice("reduction", reduction, _REDUCTIONS)
    counts = target != ignore_index
    mask = _check_mask(mask, target.shape)
    if mask is not None:
        counts &= mask
    out_of_range = counts & ((target < 0) | (target >= num_classes))
    if out_of_range.any():
        raise ValueError(
            f"target must be in [0, {num_classes}) or ignore_index={ignore_index}, "
            f"got {target[out_of_range][0]}"
        )
    safe_target = np.where(counts, target, 0)[..., None]
    if weight is None:
        sample_weight = counts.astype(logits.dtype)
    else:
        _check_float_array("weight", weight, logits.dtype)
        _check_shape("weight", weight, (num_classes,))
        sample_weight = np.where(counts, weight[safe_target[..., 0]], 0)

    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=-1, keepdims=True)
    log_prob = np.take_along_axis(shifted, safe_target, axis=-1) - np.log(sum_exp)
    value, factor = _reduce(-log_prob[..., 0], sample_weight, reduction)

    grad = exp / sum_exp
    np.put_along_axis(grad, safe_target, np.take_along_axis(grad, safe_target, axis=-1) - 1, axis=-1)
    return value, _scale(grad, sample_weight[..., None], factor)


def mse_loss(
    input: np.ndarray, target: np.ndarray, *, mask: Optional[np.ndarray] = None, reduction: str = "mean"
) -> tuple:
    """Mean squared error ``(input - target)**2``.

    Parameters
    ----------
    input, target : ndarray
        Same shape and float dtype.
    mask : bool ndarray, optional
        True where an element counts (shape: leading part of input's).
    reduction : {"mean", "sum"}

    Returns
    -------
    loss : float
    dinput : ndarray, like ``input``

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.losses import mse_loss
    >>> y = np.array([[1.0], [3.0]])
    >>> mse_loss(y, np.zeros((2, 1)))
    (5.0, array([[1.],
           [3.]]))
    >>> mse_loss(y, np.zeros((2, 1)), mask=np.array([True, False]))[0]
    1.0
    """
    _check_pair("input", input, target)
    _check_choice("reduction", reduction, _REDUCTIONS)
    weight = _check_mask(mask, input.shape)
    diff = input - target
    value, factor = _reduce(diff * diff, weight, reduction)
    return value, _scale(2 * diff, weight, factor)


def binary_cross_entropy_with_logits(
    logits: np.ndarray,
    target: np.ndarray,
    *,
    pos_weight: Optional[np.ndarray] = None,
    mask: Optional[np.ndarray] = None,
    reduction: str = "mean",
) -> tuple:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1].

    ``loss = p * y * softplus(-x) + (1 - y) * softplus(x)`` with
    ``p = pos_weight`` (1 without it): stable for any finite logit.

    Parameters
    ----------
    logits : ndarray
        float32 or float64.
    target : ndarray
        Same shape and dtype, values in ``[0, 1]`` (soft labels allowed).
    pos_weight : ndarray [C] or [1], optional
        Weight of the positive term per class on the last axis (PyTorch's
        ``pos_weight``), same dtype as ``logits``.
    mask : bool ndarray, optional
        True where an element counts (shape: leading part of logits').
    reduction : {"mean", "sum"}

    Returns
    -------
    loss : float
    dlogits : ndarray, like ``logits``

    Examples
    --------
    >>> import numpy as np
    >>> from rnncore.losses import binary_cross_entropy_with_logits
    >>> loss, dlogits = binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 1.0]))
    >>> round(loss, 4), dlogits
    (0.6931, array([ 0.25, -0.25]))
    """
    _check_pair("logits", logits, target)
    _check_choice("reduction", reduction, _REDUCTIONS)
    weight = _check_mask(mask, logits.shape)
    counted = target if weight is None else target[np.broadcast_to(weight, target.shape)]
    if counted.size and not ((counted >= 0) & (counted <= 1)).all():
        raise ValueError("target must hold values in [0, 1]")
    if pos_weight is None:
        positive = target
    else:
        _check_float_array("pos_weight", pos_weight, logits.dtype)
        last = logits.shape[-1] if logits.ndim else 1
        if pos_weight.ndim != 1 or pos_weight.shape[0] not in (1, last):
            raise ValueError(f"pos_weight must have shape ({last},) or (1,), got {pos_weight.shape}")
        positive = pos_weight * target
    neg_log_p = np.logaddexp(0, -logits)  # -log(sigmoid(x))
    neg_log_not_p = np.logaddexp(0, logits)  # -log(1 - sigmoid(x))
    value, factor = _reduce(positive * neg_log_p + (1 - target) * neg_log_not_p, weight, reduction)
    prob = _sigmoid(logits)
    return value, _scale(prob * (1 - target + positive) - positive, weight, factor)
