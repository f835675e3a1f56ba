"""rnncore.optim against torch.optim on identical parameter and gradient
sequences (float64, 1e-6), schedules against torch's, resuming from
state_dict, and argument errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnncore import nn, optim

SHAPES = {"encoder.weight_hh_l0": (4, 3), "head.bias": (3,)}
STEPS = 6

OPTIMIZERS = {
    "sgd_momentum_nesterov_wd": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd_momentum_dampening": ("SGD", dict(lr=0.1, momentum=0.8, dampening=0.3)),
    "sgd_plain": ("SGD", dict(lr=0.05)),
    "rmsprop_centered_momentum_wd": (
        "RMSprop",
        dict(lr=0.01, alpha=0.9, eps=1e-6, momentum=0.5, centered=True, weight_decay=0.1),
    ),
    "rmsprop_plain": ("RMSprop", dict(lr=0.01)),
    "adam": ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-7)),
    "adam_l2": ("Adam", dict(lr=0.01, weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.01, betas=(0.85, 0.99), weight_decay=0.3)),
}


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}


def grad_sequence(steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(shape) for name, shape in SHAPES.items()} for _ in range(steps)]


def torch_run(torch, cls_name, options, params, grads_seq, schedule=None):
    """Parameters after each step of torch.optim's ``cls_name``, and the learning rates."""
    tensors = {name: torch.nn.Parameter(torch.tensor(p)) for name, p in params.items()}
    opt = getattr(torch.optim, cls_name)(tensors.values(), **options)
    sched = schedule(opt) if schedule else None
    history, lrs = [], []
    for grads in grads_seq:
        for name, t in tensors.items():
            t.grad = torch.tensor(grads[name])
        opt.step()
        if sched:
            sched.step()
        history.append({name: t.detach().numpy().copy() for name, t in tensors.items()})
        lrs.append(opt.param_groups[0]["lr"])
    return history, lrs


def ours_run(cls_name, options, params, grads_seq, schedule=None):
    opt = getattr(optim, cls_name)(params, **options)
    sched = schedule(opt) if schedule else None
    history, lrs = [], []
    for grads in grads_seq:
        opt.step(grads)
        if sched:
            sched.step()
        history.append({name: p.copy() for name, p in params.items()})
        lrs.append(opt.lr)
    return history, lrs


def assert_same_history(ours, theirs):
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-9, err_msg=f"{name} at step {step + 1}")


@pytest.mark.parametrize("case", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_optimizer_matches_torch(torch, case):
    cls_name, options = case
    grads_seq = grad_sequence()
    params = make_params()
    theirs, _ = torch_run(torch, cls_name, options, make_params(), grads_seq)
    ours, _ = ours_run(cls_name, options, params, grads_seq)
    assert_same_history(ours, theirs)


SCHEDULES = {
    "step": ({"step_size": 3, "gamma": 0.5}, "StepLR"),
    "cosine": ({"T_max": 5, "eta_min": 1e-3}, "CosineAnnealingLR"),
}


@pytest.mark.parametrize("case", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_schedule_with_adam_matches_torch(torch, case):
    kwargs, cls_name = case
    grads_seq = grad_sequence(steps=14)  # past T_max: cosine goes back up, as torch's
    torch_schedule = getattr(torch.optim.lr_scheduler, cls_name)
    theirs, torch_lrs = torch_run(torch, "Adam", {"lr": 0.05}, make_params(), grads_seq,
                                  lambda opt: torch_schedule(opt, **kwargs))
    ours, lrs = ours_run("Adam", {"lr": 0.05}, make_params(), grads_seq,
                         lambda opt: getattr(optim, cls_name)(opt, **kwargs))
    np.testing.assert_allclose(lrs, torch_lrs, rtol=1e-12, atol=1e-15)
    assert_same_history(ours, theirs)


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.89999, 0.91, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.71, 0.7, 0.7, 0.69, 0.7]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"factor": 0.5, "patience": 1, "cooldown": 2},
        {"factor": 0.3, "patience": 0, "min_lr": 0.02, "threshold": 0.01, "threshold_mode": "abs"},
        {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.05},
        {"mode": "max", "patience": 2, "threshold_mode": "abs", "cooldown": 1},
    ],
    ids=["defaults", "cooldown", "min_lr_abs", "max_rel", "max_abs"],
)
def test_reduce_on_plateau_matches_torch(torch, options):
    tensor = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    torch_opt = torch.optim.SGD([tensor], lr=0.1)
    torch_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **options)
    opt = optim.SGD({"w": np.zeros(1)}, lr=0.1)
    sched = optim.ReduceLROnPlateau(opt, **options)
    for epoch, metric in enumerate(PLATEAU_METRICS * 2):
        torch_sched.step(metric)
        sched.step(metric)
        assert opt.lr == pytest.approx(torch_opt.param_groups[0]["lr"], rel=1e-12), f"epoch {epoch + 1}"
    assert opt.lr < 0.1 or options.get("mode") == "max"


@pytest.mark.parametrize("case", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_resume_from_state_dict(case):
    cls_name, options = case
    grads_seq = grad_sequence()
    straight, _ = ours_run(cls_name, options, make_params(), grads_seq)

    params = make_params()
    first = getattr(optim, cls_name)(params, **options)
    for grads in grads_seq[:3]:
        first.step(grads)
    saved = first.state_dict()
    json.dumps({"hyperparams": saved["hyperparams"], "steps": saved["steps"]})  # JSON-able scalars
    resumed_params = {name: p.copy() for name, p in params.items()}
    fresh_options = {**options, "lr": 123.0}  # overwritten by the loaded hyper-parameters
    resumed = getattr(optim, cls_name)(resumed_params, **fresh_options)
    resumed.load_state_dict(saved)
    for buffers in saved["state"].values():
        for buf in buffers.values():
            buf += 1  # the optimizer holds copies
    for grads in grads_seq[3:]:
        resumed.step(grads)
    assert_same_history([resumed_params], [straight[-1]])


def test_schedule_resume_from_state_dict():
    def run(opt, sched, epochs):
        for _ in range(epochs):
            sched.step()
        return opt.lr

    opt = optim.SGD({"w": np.zeros(1)}, lr=1.0)
    expected = run(opt, optim.CosineAnnealingLR(opt, T_max=10), 7)
    opt2 = optim.SGD({"w": np.zeros(1)}, lr=1.0)
    sched2 = optim.CosineAnnealingLR(opt2, T_max=10)
    run(opt2, sched2, 3)
    saved = json.loads(json.dumps(sched2.state_dict()))
    opt3 = optim.SGD({"w": np.zeros(1)}, lr=1.0)
    sched3 = optim.CosineAnnealingLR(opt3, T_max=4)
    sched3.load_state_dict(saved)
    assert run(opt3, sched3, 4) == pytest.approx(expected)
    with pytest.raises(ValueError, match="keys"):
        sched3.load_state_dict({"last_epoch": 1})


def test_updates_a_module_in_place(rng):
    model = nn.MLP([3, 4, 2], dtype="float64", seed=0)
    before = {name: p.copy() for name, p in model.params.items()}
    opt = optim.AdamW(model.params, lr=0.1)
    model(rng.standard_normal((5, 3)))
    model.backward(np.ones((5, 2)))
    opt.step(model.grads)
    for name, p in model.params.items():
        assert not np.array_equal(p, before[name])
        assert p is opt.params[name]


def test_float32_parameters_stay_float32(rng):
    params = {"w": rng.standard_normal(5).astype(np.float32)}
    opt = optim.Adam(params, lr=0.1, weight_decay=0.1)
    opt.step({"w": np.ones(5, np.float32)})
    assert params["w"].dtype == np.float32
    assert all(buf.dtype == np.float32 for buf in opt.state["w"].values())


def test_step_argument_errors():
    opt = optim.SGD(make_params(), lr=0.1)
    grads = grad_sequence(1)[0]
    bad = dict(grads)
    del bad["head.bias"]
    bad["extra"] = np.zeros(1)
    bad["encoder.weight_hh_l0"] = np.zeros((3, 4))
    with pytest.raises(ValueError) as info:
        opt.step(bad)
    for part in ["missing: head.bias", "unexpected: extra", "encoder.weight_hh_l0: expected shape (4, 3)"]:
        assert part in str(info.value)
    with pytest.raises(ValueError, match="expected dtype float64"):
        opt.step({**grads, "head.bias": np.zeros(3, np.float32)})
    with pytest.raises(TypeError, match="grads must be a dict"):
        opt.step(list(grads.values()))
    assert opt.steps == 0


def test_load_state_dict_errors():
    params = make_params()
    opt = optim.Adam(params, lr=0.1)
    opt.step(grad_sequence(1)[0])
    saved = opt.state_dict()
    saved["state"]["head.bias"]["exp_avg"] = np.zeros(4)
    del saved["state"]["encoder.weight_hh_l0"]["exp_avg_sq"]
    with pytest.raises(ValueError) as info:
        optim.Adam(make_params(), lr=0.1).load_state_dict(saved)
    assert "head.bias[exp_avg]: expected shape (3,)" in str(info.value)
    assert "missing: encoder.weight_hh_l0[exp_avg_sq]" in str(info.value)
    with pytest.raises(ValueError, match="keys"):
        opt.load_state_dict({"state": {}})
    with pytest.raises(ValueError, match="hyperparams"):
        optim.SGD(make_params()).load_state_dict(opt.state_dict())


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda p: optim.SGD(p, lr=-1.0), ValueError, "lr must be in"),
        (lambda p: optim.SGD(p, lr="0.1"), TypeError, "lr must be a real number"),
        (lambda p: optim.SGD(p, nesterov=True), ValueError, "nesterov"),
        (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "nesterov"),
        (lambda p: optim.SGD(p, weight_decay=-0.1), ValueError, "weight_decay"),
        (lambda p: optim.RMSprop(p, alpha=1.5), ValueError, "alpha"),
        (lambda p: optim.Adam(p, betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=0.9), TypeError, "betas"),
        (lambda p: optim.AdamW(p, eps=-1.0), ValueError, "eps"),
        (lambda p: optim.Adam(list(p.values())), TypeError, "params must be a dict"),
        (lambda p: optim.Adam({}), ValueError, "params is empty"),
        (lambda p: optim.Adam({"w": np.zeros(2, np.int64)}), TypeError, r"params\['w'\] must have dtype"),
        (lambda p: optim.StepLR(object(), 2), TypeError, "optimizer must be"),
        (lambda p: optim.StepLR(optim.SGD(p), 0), ValueError, "step_size"),
        (lambda p: optim.CosineAnnealingLR(optim.SGD(p), T_max=0), ValueError, "T_max"),
        (lambda p: optim.ReduceLROnPlateau(optim.SGD(p), factor=1.0), ValueError, "factor"),
        (lambda p: optim.ReduceLROnPlateau(optim.SGD(p), mode="best"), ValueError, "mode"),
        (lambda p: optim.ReduceLROnPlateau(optim.SGD(p), threshold_mode="x"), ValueError, "threshold_mode"),
    ],
)
def test_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make(make_params())


def test_read_only_parameter_is_refused():
    w = np.zeros(3)
    w.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.SGD({"w": w})
