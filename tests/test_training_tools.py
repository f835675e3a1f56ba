"""rnncore.training: gradient clipping against torch.nn.utils, the gradient
monitor's warnings and statistics, early stopping, the history, and a
small end-to-end training run with all the tools."""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest

import rnncore
from rnncore import losses, nn, optim


def grads_dict(rng, scale=1.0):
    return {
        "encoder.weight_hh_l0": rng.standard_normal((8, 2)) * scale,
        "encoder.bias_hh_l0": rng.standard_normal(8) * scale,
        "head.weight": rng.standard_normal((3, 2)) * scale,
    }


# --------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3, math.inf])
@pytest.mark.parametrize("as_list", [False, True], ids=["dict", "list"])
def test_clip_grad_norm_matches_torch(torch, rng, max_norm, as_list):
    grads = grads_dict(rng)
    tensors = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    arrays = list(grads.values())
    total = rnncore.clip_grad_norm(arrays if as_list else grads, max_norm)
    assert isinstance(total, float) and total == pytest.approx(expected.item(), rel=1e-12)
    for g, t in zip(arrays, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_in_place_float32(rng):
    grads = {name: g.astype(np.float32) for name, g in grads_dict(rng, 10.0).items()}
    arrays = dict(grads)
    rnncore.clip_grad_norm(grads, 1.0)
    after = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    assert after == pytest.approx(1.0, rel=1e-5)
    assert all(grads[name] is arrays[name] and g.dtype == np.float32 for name, g in grads.items())


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_nonfinite(rng, bad):
    grads = grads_dict(rng)
    grads["head.weight"][1, 1] = bad
    with pytest.raises(FloatingPointError, match="non-finite gradients: head.weight"):
        rnncore.clip_grad_norm(grads, 1.0)
    before = {name: g.copy() for name, g in grads.items()}
    total = rnncore.clip_grad_norm(grads, 1.0, error_if_nonfinite=False)
    assert not math.isfinite(total)
    for name, g in grads.items():
        np.testing.assert_array_equal(g, before[name])  # left for the caller, who skips the step


def test_clip_grad_value_matches_torch(torch, rng):
    grads = grads_dict(rng, 2.0)
    tensors = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tensors, 0.7)
    assert rnncore.clip_grad_value(grads, 0.7) is None
    for g, t in zip(grads.values(), tensors):
        np.testing.assert_array_equal(g, t.grad.numpy())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda g: rnncore.clip_grad_norm(g, -1.0), ValueError, "max_norm must be in"),
        (lambda g: rnncore.clip_grad_norm(g, float("nan")), ValueError, "max_norm"),
        (lambda g: rnncore.clip_grad_norm(g, None), TypeError, "max_norm must be a real number"),
        (lambda g: rnncore.clip_grad_value(g, -0.5), ValueError, "clip_value must be in"),
        (lambda g: rnncore.clip_grad_norm(g["head.weight"], 1.0), TypeError, "grads must be a dict"),
        (lambda g: rnncore.clip_grad_norm({"w": [1.0, 2.0]}, 1.0), TypeError, r"grads\['w'\] must be a numpy"),
        (lambda g: rnncore.clip_grad_value([np.ones(2, np.int32)], 1.0), TypeError, r"grads\['0'\] must have dtype"),
        (lambda g: rnncore.GradientMonitor().record(None), TypeError, "grads must be a dict"),
    ],
)
def test_clipping_argument_errors(rng, call, error, match):
    with pytest.raises(error, match=match):
        call(grads_dict(rng))


# --------------------------------------------------------------------------
# GradientMonitor
# --------------------------------------------------------------------------


def test_monitor_records_norms_without_warning_when_healthy(rng):
    monitor = rnncore.GradientMonitor()
    steps = [grads_dict(rng) for _ in range(3)]
    for grads in steps:
        norms = monitor.record(grads)
    assert norms["head.weight"] == pytest.approx(np.linalg.norm(steps[-1]["head.weight"]))
    assert monitor.steps == 3 and [len(v) for v in monitor.norms.values()] == [3, 3, 3]
    stats = monitor.summary()["encoder.weight_hh_l0"]
    expected = [np.linalg.norm(g["encoder.weight_hh_l0"]) for g in steps]
    assert stats["mean"] == pytest.approx(np.mean(expected)) and stats["max"] == pytest.approx(max(expected))
    assert stats["min"] == pytest.approx(min(expected)) and stats["last"] == pytest.approx(expected[-1])
    assert (stats["steps"], stats["vanished"], stats["exploded"], stats["nonfinite"]) == (3, 0, 0, 0)
    monitor.reset()
    assert monitor.summary() == {} and monitor.steps == 3


@pytest.mark.parametrize(
    "value, match",
    [
        (1e-9, r"'encoder.weight_hh_l0' vanished: norm .* < 1e-07 at step 1"),
        (1e4, r"'encoder.weight_hh_l0' exploded: norm .* > 1000 at step 1"),
        (np.nan, "'encoder.weight_hh_l0' is not finite: norm nan at step 1"),
        (np.inf, "'encoder.weight_hh_l0' is not finite: norm inf at step 1"),
    ],
)
def test_monitor_warns_naming_the_parameter(rng, value, match):
    grads = grads_dict(rng)
    grads["encoder.weight_hh_l0"][...] = value
    with pytest.warns(rnncore.GradientWarning, match=match) as caught:
        rnncore.GradientMonitor().record(grads)
    assert len(caught) == 1
    assert issubclass(rnncore.GradientWarning, UserWarning)


def test_monitor_warns_on_entering_a_condition_only(rng):
    monitor = rnncore.GradientMonitor(explode_threshold=50.0)
    healthy, exploding = grads_dict(rng), grads_dict(rng, 100.0)
    with pytest.warns(rnncore.GradientWarning) as caught:
        monitor.record(exploding)
    assert len(caught) == 3  # every parameter, once
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor.record(exploding)  # still exploding: no repeat
        monitor.record(healthy)
    with pytest.warns(rnncore.GradientWarning, match="at step 4"):
        monitor.record(exploding)  # entered again
    assert monitor.summary()["head.weight"]["exploded"] == 3


def test_monitor_warn_false_and_threshold_errors(rng):
    monitor = rnncore.GradientMonitor(warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor.record({"w": np.zeros(3)})
    assert monitor.summary()["w"]["vanished"] == 1
    with pytest.raises(ValueError, match="explode_threshold"):
        rnncore.GradientMonitor(vanish_threshold=1.0, explode_threshold=0.5)


# --------------------------------------------------------------------------
# EarlyStopping
# --------------------------------------------------------------------------


def test_early_stopping_restores_the_best_params():
    params = {"w": np.zeros(2)}
    live = params["w"]
    stopper = rnncore.EarlyStopping(patience=3, min_delta=0.01)
    decisions = []
    for epoch, val_loss in enumerate([1.0, 0.8, 0.795, 0.9, 0.7999, 0.85], start=1):
        params["w"][:] = epoch
        decisions.append(stopper.step(val_loss, params))
    assert decisions == [False, False, False, False, True, True]  # 0.795 is within min_delta of 0.8
    assert stopper.best == 0.8 and stopper.best_epoch == 2
    np.testing.assert_array_equal(params["w"], [2.0, 2.0])
    assert params["w"] is live


def test_early_stopping_max_mode_and_no_restore():
    params = {"w": np.zeros(1)}
    stopper = rnncore.EarlyStopping(patience=2, mode="max", restore_best=False)
    results = []
    for epoch, accuracy in enumerate([0.5, 0.6, 0.6, 0.55], start=1):
        params["w"][0] = epoch
        results.append(stopper.step(accuracy, params))
    assert results == [False, False, False, True]
    assert params["w"][0] == 4  # not restored automatically
    stopper.restore(params)
    assert params["w"][0] == 2 and stopper.best_params["w"][0] == 2


def test_early_stopping_nan_is_no_improvement_and_errors():
    stopper = rnncore.EarlyStopping(patience=1)
    assert stopper.step(float("nan")) is True
    with pytest.raises(RuntimeError, match="no parameters recorded"):
        stopper.restore({"w": np.zeros(1)})
    stopper = rnncore.EarlyStopping(patience=1)
    stopper.step(1.0, {"w": np.zeros(2)})
    with pytest.raises(ValueError, match="w: expected shape"):
        stopper.restore({"w": np.zeros(3)})
    with pytest.raises(TypeError, match="params must be a dict"):
        stopper.step(0.5, [np.zeros(2)])
    with pytest.raises(ValueError, match="mode"):
        rnncore.EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match="patience"):
        rnncore.EarlyStopping(patience=0)


# --------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------


def test_history_aligns_keys_and_flattens_gradient_stats():
    history = rnncore.History()
    history.log(train_loss=1.0)
    stats = {"head.bias": {"mean": 1.0, "min": 0.5, "max": 2.0}}
    history.log(train_loss=np.float32(0.5), val_loss=0.7, grad_stats=stats)
    h = history.history
    assert h["train_loss"] == [1.0, 0.5] and math.isnan(h["val_loss"][0]) and h["val_loss"][1] == 0.7
    assert h["grad_norm/head.bias/mean"][1] == 1.0 and h["grad_norm/head.bias/max"][1] == 2.0
    history.log(val_loss=0.6)
    assert all(len(values) == 3 for values in h.values()) and math.isnan(h["train_loss"][2])
    with pytest.raises(TypeError, match="train_loss must be a real number"):
        history.log(train_loss="0.5")


def test_history_plot_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    history = rnncore.History()
    history.log(train_loss=1.0)
    with pytest.raises(ImportError, match=r"pip install 'rnncore\[plot\]'"):
        history.plot(tmp_path / "history.png")


def test_history_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    history = rnncore.History()
    for epoch in range(4):
        history.log(train_loss=1.0 / (epoch + 1), val_loss=1.2 / (epoch + 1),
                    grad_stats={"encoder.weight_hh_l0": {"mean": 0.1 * (epoch + 1), "min": 0.05, "max": 1.0}})
    path = tmp_path / "history.png"
    history.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------
# All together
# --------------------------------------------------------------------------


def test_training_loop_with_every_tool():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    labels = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
    train, val = slice(0, 150), slice(150, 200)
    model = nn.MLP([4, 32, 2], "tanh", dropout=0.1, dtype="float64", seed=0)
    opt = optim.Adam(model.params, lr=0.02)
    schedule = optim.ReduceLROnPlateau(opt, patience=3)
    monitor, history = rnncore.GradientMonitor(), rnncore.History()
    stopper = rnncore.EarlyStopping(patience=10)
    for epoch in range(200):
        model.train()
        model.zero_grad()
        loss, dlogits = losses.cross_entropy(model(x[train]), labels[train])
        model.backward(dlogits)
        rnncore.clip_grad_norm(model.grads, 5.0)
        monitor.record(model.grads)
        opt.step(model.grads)
        model.eval()
        val_loss, _ = losses.cross_entropy(model(x[val]), labels[val])
        schedule.step(val_loss)
        history.log(train_loss=loss, val_loss=val_loss, grad_stats=monitor.summary())
        monitor.reset()
        if stopper.step(val_loss, model.params):
            break
    assert history.epochs < 200 and stopper.best_epoch == history.epochs - 10  # stopped early
    assert history.history["train_loss"][-1] < 0.6 * history.history["train_loss"][0]
    best_val, _ = losses.cross_entropy(model.eval()(x[val]), labels[val])
    assert best_val == pytest.approx(stopper.best)  # the best parameters are back
    accuracy = (model(x[val]).argmax(-1) == labels[val]).mean()
    assert accuracy > 0.8
    assert len(history.history["grad_norm/layers.0.weight/mean"]) == history.epochs


def test_history_is_indexed_by_key():
    history = rnncore.History()
    history.log(train_loss=1.0)
    history.log(train_loss=0.5, val_loss=0.7)
    assert history["train_loss"] == [1.0, 0.5] and "val_loss" in history and "lr" not in history
    assert np.isnan(history["val_loss"][0])
    with pytest.raises(KeyError, match="'lr' was never logged; logged: train_loss, val_loss"):
        history["lr"]
