"""rnncore.losses: gradients against float64 finite differences, values and
gradients against torch.nn.functional, stability and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import losses
from test_nn import numerical_grad

T, B, C = 4, 3, 5


def assert_grad_matches_fd(loss_fn, x):
    value, grad = loss_fn(x)
    assert isinstance(value, float) and grad.shape == x.shape and grad.dtype == x.dtype
    np.testing.assert_allclose(grad, numerical_grad(lambda: loss_fn(x)[0], x), rtol=1e-6, atol=1e-7)


def lengths_mask(lengths=(4, 2, 1)):
    return np.arange(T)[:, None] < np.array(lengths)  # [T, B]


@pytest.fixture
def ce_case(rng):
    logits = rng.standard_normal((T, B, C)) * 2
    target = rng.integers(0, C, (T, B))
    target[1, 0] = -100  # ignored
    return logits, target


CE_OPTIONS = {
    "plain": {},
    "sum": {"reduction": "sum"},
    "weight": {"weight": np.array([0.5, 2.0, 1.0, 0.1, 3.0])},
    "weight_sum": {"weight": np.array([0.5, 2.0, 1.0, 0.1, 3.0]), "reduction": "sum"},
    "ignore_index_7": {"ignore_index": 7},
    "mask": {"mask": lengths_mask()},
    "mask_weight": {"mask": lengths_mask(), "weight": np.array([0.5, 2.0, 1.0, 0.1, 3.0])},
}


@pytest.mark.parametrize("options", CE_OPTIONS.values(), ids=CE_OPTIONS.keys())
def test_cross_entropy_gradient(ce_case, options):
    logits, target = ce_case
    if options.get("ignore_index") == 7:
        target = np.where(target == -100, 7, target)
    assert_grad_matches_fd(lambda x: losses.cross_entropy(x, target, **options), logits)


@pytest.mark.parametrize("options", CE_OPTIONS.values(), ids=CE_OPTIONS.keys())
def test_cross_entropy_matches_torch(torch, ce_case, options):
    logits, target = ce_case
    ignore_index = options.get("ignore_index", -100)
    if ignore_index == 7:
        target = np.where(target == -100, 7, target)
    torch_target = target.copy()
    if "mask" in options:  # torch has no mask: masked steps become ignored ones
        torch_target[~options["mask"]] = ignore_index
    weight = options.get("weight")
    x = torch.tensor(logits.reshape(-1, C), requires_grad=True)
    expected = torch.nn.functional.cross_entropy(
        x,
        torch.from_numpy(torch_target.reshape(-1)),
        weight=None if weight is None else torch.from_numpy(weight),
        ignore_index=ignore_index,
        reduction=options.get("reduction", "mean"),
    )
    expected.backward()
    value, grad = losses.cross_entropy(logits, target, **options)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad.reshape(-1, C), x.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_cross_entropy_is_stable_and_keeps_float32():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4]], np.float32)
    value, grad = losses.cross_entropy(logits, np.array([1, 2]))
    assert value == pytest.approx(5e3) and grad.dtype == np.float32 and np.isfinite(grad).all()


def test_cross_entropy_nothing_counted_is_zero():
    logits = np.ones((2, 3))
    value, grad = losses.cross_entropy(logits, np.array([-100, -100]))
    assert value == 0.0 and not grad.any()
    value, grad = losses.cross_entropy(logits, np.array([0, 1]), mask=np.array([False, False]))
    assert value == 0.0 and not grad.any()


def test_cross_entropy_masked_steps_may_hold_any_target(rng):
    logits = rng.standard_normal((T, B, C))
    target = rng.integers(0, C, (T, B))
    mask = lengths_mask()
    padded = np.where(mask, target, -1)  # padding value outside [0, C)
    value, grad = losses.cross_entropy(logits, padded, mask=mask)
    expected = losses.cross_entropy(logits, np.where(mask, target, -100))
    assert value == pytest.approx(expected[0]) and not grad[~mask].any()
    np.testing.assert_allclose(grad, expected[1])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "mask"])
def test_mse_gradient_and_torch(torch, rng, reduction, masked):
    pred, target = rng.standard_normal((2, T, B, 2))
    mask = lengths_mask() if masked else None
    assert_grad_matches_fd(lambda x: losses.mse_loss(x, target, mask=mask, reduction=reduction), pred)
    keep = np.broadcast_to(lengths_mask()[..., None], pred.shape) if masked else np.ones(pred.shape, bool)
    x = torch.tensor(pred[keep], requires_grad=True)
    expected = torch.nn.functional.mse_loss(x, torch.from_numpy(target[keep]), reduction=reduction)
    expected.backward()
    value, grad = losses.mse_loss(pred, target, mask=mask, reduction=reduction)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad[keep], x.grad.numpy(), rtol=1e-12)
    assert not grad[~keep].any()


BCE_OPTIONS = {
    "plain": {},
    "sum": {"reduction": "sum"},
    "pos_weight": {"pos_weight": np.array([0.5, 3.0])},
    "pos_weight_scalar": {"pos_weight": np.array([2.5])},
    "mask": {"mask": lengths_mask()},
}


@pytest.mark.parametrize("options", BCE_OPTIONS.values(), ids=BCE_OPTIONS.keys())
def test_bce_with_logits_gradient_and_torch(torch, rng, options):
    logits = rng.standard_normal((T, B, 2)) * 3
    target = rng.uniform(0, 1, (T, B, 2)).round(1)  # hard and soft labels
    assert_grad_matches_fd(lambda x: losses.binary_cross_entropy_with_logits(x, target, **options), logits)
    mask = options.get("mask")
    keep = np.broadcast_to(mask[..., None], logits.shape) if mask is not None else np.ones(logits.shape, bool)
    pos_weight = options.get("pos_weight")
    x = torch.tensor(logits, requires_grad=True)
    elementwise = torch.nn.functional.binary_cross_entropy_with_logits(
        x,
        torch.from_numpy(target),
        pos_weight=None if pos_weight is None else torch.from_numpy(pos_weight),
        reduction="none",
    )
    kept = elementwise[torch.tensor(keep)]
    expected = kept.sum() if options.get("reduction") == "sum" else kept.mean()
    expected.backward()
    value, grad = losses.binary_cross_entropy_with_logits(logits, target, **options)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_bce_with_logits_is_stable():
    logits = np.array([-800.0, 800.0, -800.0, 800.0])
    value, grad = losses.binary_cross_entropy_with_logits(logits, np.array([0.0, 1.0, 1.0, 0.0]), reduction="sum")
    assert value == pytest.approx(1600.0) and np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [0.0, 0.0, -1.0, 1.0])


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: losses.cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 3])), ValueError,
         r"target must be in \[0, 3\) or ignore_index=-100, got 3"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0, -2])), ValueError, "target must be in"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError,
         "target must be a numpy.ndarray of integers"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])), ValueError,
         r"target must have shape \(2,\)"),
        (lambda: losses.cross_entropy(np.zeros((2, 3), np.int64), np.array([0, 1])), TypeError, "logits"),
        (lambda: losses.cross_entropy([[0.0, 1.0]], np.array([0])), TypeError, "logits must be a numpy.ndarray"),
        (lambda: losses.cross_entropy(np.zeros((2, 0)), np.array([0, 1])), ValueError, "C >= 1"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=np.ones(2)), ValueError,
         r"weight must have shape \(3,\)"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=np.ones(3, np.float32)),
         TypeError, "weight must have dtype float64"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), mask=np.ones(2)), TypeError,
         "mask must be a numpy.ndarray of bool"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), mask=np.ones(3, bool)), ValueError,
         "mask must have shape"),
        (lambda: losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="none"), ValueError,
         "reduction must be one of"),
        (lambda: losses.mse_loss(np.zeros(3), np.zeros(4)), ValueError, r"target must have shape \(3,\)"),
        (lambda: losses.mse_loss(np.zeros(3), np.zeros(3, np.float32)), TypeError, "target must have dtype float64"),
        (lambda: losses.mse_loss(np.zeros((3, 2)), np.zeros((3, 2)), mask=np.ones(2, bool)), ValueError, "mask"),
        (lambda: losses.binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 2.0])), ValueError,
         r"target must hold values in \[0, 1\]"),
        (lambda: losses.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)),
         ValueError, r"pos_weight must have shape \(3,\) or \(1,\)"),
        (lambda: losses.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2), pos_weight=2.0), TypeError,
         "pos_weight must be a numpy.ndarray"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
