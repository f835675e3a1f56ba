"""Throw random bad calls at rnncore's public API and check how it fails.

Each call starts from a valid call of one public entry point -- the
functional kernels, layers, cells, save/load, nn modules, losses,
optimizers, schedules, training tools, thread settings and (with --torch)
the torch adapter -- and breaks one to three of its arguments: wrong types,
dtypes, ranks, shapes, layouts (non-contiguous, misaligned, masked),
values out of range, non-finite hyper-parameters, corrupted files, stale
caches.  A broken call may happen to stay valid; it then returns normally.

Allowed outcomes: a return, ValueError or TypeError.  Also allowed, and
counted apart: FloatingPointError from the documented non-finite guards
(clip_grad_norm, Optimizer.step, EarlyStopping.step,
ReduceLROnPlateau.step), RuntimeError from a layer's or module's backward
without a usable forward pass, and OSError (no such file ...) from load and
save given a path that was broken into another string.  Anything else is a
failure, printed with the call that raised it.  Every 50 calls a fixed
valid call must still give bitwise the same result (no state corrupted),
and a watchdog ends the run with a traceback if one call takes more than
60 s (a hang).  A crash ends the process: run the script from a shell or CI
step that reports its exit status.

Usage::

    python tools/bad_calls.py [--calls 1000] [--seed 0] [--torch]

Exit status 0 when every call ended in an allowed way.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import os
import sys
import tempfile
import traceback
import warnings

import numpy as np

import rnncore
from rnncore import functional as F
from rnncore import losses, nn, optim

ALLOWED = (ValueError, TypeError)
NONFINITE_GUARDS = {"clip_grad_norm", "Optimizer.step", "EarlyStopping.step", "ReduceLROnPlateau.step"}
NO_FORWARD = {"layer.backward", "nn.backward"}
FILE_FUNCTIONS = {"rnncore.load", "module.save"}  # document FileNotFoundError and other OSErrors
PREBROKEN = {"rnncore.load"}  # the builder already damaged the call (the file): mutate it less often


# --------------------------------------------------------------------------
# Bad values
# --------------------------------------------------------------------------


def bad_array(rng, a):
    """Something that is not ``a`` but looks a bit like it."""
    choices = [
        lambda: a.astype(rng.choice([np.int32, np.int64, np.float16, np.complex64, np.bool_, object])),
        lambda: a.astype(np.float64 if a.dtype == np.float32 else np.float32),
        lambda: a.astype(a.dtype.newbyteorder(">")),
        lambda: a[..., None],
        lambda: a.reshape(-1) if a.ndim > 1 else a.reshape(1, -1),
        lambda: np.asarray(a.flat[0]) if a.size else np.zeros(()),
        lambda: np.resize(a, tuple(max(0, n + int(rng.integers(-1, 2))) for n in a.shape)),
        lambda: np.zeros(tuple(0 if k == rng.integers(a.ndim) else n for k, n in enumerate(a.shape)), a.dtype),
        lambda: np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim else a,  # non-contiguous, same shape
        lambda: a.T,
        lambda: misaligned(a),
        lambda: np.ma.masked_array(a),
        lambda: a.tolist(),
        lambda: tuple(a.reshape(-1)),
        lambda: np.full_like(a, rng.choice([np.nan, np.inf, -np.inf, 1e30])) if a.dtype.kind == "f" else a,
        lambda: a * a.dtype.type(1e20) if a.dtype.kind == "f" else a,
        lambda: None,
        lambda: "array",
        lambda: {"a": a},
        lambda: object(),
        lambda: 3,
    ]
    return choices[rng.integers(len(choices))]()


def misaligned(a):
    """The same values in C order at an address one byte off its alignment."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(buf.data, a.dtype, count=a.size, offset=1).reshape(a.shape)
    return out


def bad_scalar(rng, value):
    pool = [None, "1", b"x", 1.5, -1, 0, 2**64, -(2**63), 10**30, float("nan"), float("inf"),
            -float("inf"), True, False, np.float32(1), np.int64(-3), 1j, [1], (1, 2), {}, object()]
    if isinstance(value, str):
        pool += ["", "tanh ", "TANH", "float16", "mean\0"]
    return pool[rng.integers(len(pool))]


def bad_value(rng, value):
    if isinstance(value, np.ndarray):
        return bad_array(rng, value)
    if isinstance(value, dict):
        choices = [lambda: {}, lambda: dict(list(value.items())[1:]), lambda: {**value, "extra": np.zeros(1)},
                   lambda: {k: bad_value(rng, v) for k, v in value.items()}, lambda: list(value.values()),
                   lambda: None]
        return choices[rng.integers(len(choices))]()
    return bad_scalar(rng, value)


# --------------------------------------------------------------------------
# Valid calls of every public entry point: name -> builder(rng) returning
# (label, function, kwargs)
# --------------------------------------------------------------------------


def rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def dims(rng):
    return [int(v) for v in rng.integers(1, 5, size=4)]  # T, B, I, H


def functional_forward(rng):
    cell = rng.choice(["lstm", "gru", "rnn"])
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    T, B, I, H = dims(rng)
    dt = rng.choice([np.float32, np.float64])
    kw = dict(x=rand(rng, T, B, I, dtype=dt), h0=rand(rng, B, H, dtype=dt),
              weight_ih=rand(rng, G * H, I, dtype=dt), weight_hh=rand(rng, G * H, H, dtype=dt),
              bias_ih=rand(rng, G * H, dtype=dt), bias_hh=rand(rng, G * H, dtype=dt),
              lengths=rng.integers(1, T + 1, size=B), reverse=bool(rng.integers(2)),
              keep_cache=bool(rng.integers(2)))
    if cell == "lstm":
        kw["c0"] = rand(rng, B, H, dtype=dt)
    if cell == "gru":
        kw["reset_after"] = bool(rng.integers(2))
    if cell == "rnn":
        kw["nonlinearity"] = str(rng.choice(["tanh", "relu"]))
    return f"F.{cell}_forward", getattr(F, f"{cell}_forward"), kw


def functional_backward(rng):
    name, fn, kw = functional_forward(rng)
    cell = name[2:-8]
    kw["keep_cache"] = True
    y, *states, cache = fn(**kw)
    grads = dict(cache=cache, dy=np.ones_like(y), dh_n=np.ones_like(states[0]))
    if cell == "lstm":
        grads["dc_n"] = np.ones_like(states[1])
    return f"F.{cell}_backward", getattr(F, f"{cell}_backward"), grads


PACKED = {"lstm": F.PrepackedLSTM, "gru": F.PrepackedGRU, "rnn": F.PrepackedRNN}
WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def packed_ctor(rng):
    name, _, kw = functional_forward(rng)
    cell = name[2:-8]
    return f"F.Prepacked{cell.upper()}", PACKED[cell], {k: kw[k] for k in WEIGHTS}


def packed_call(rng):
    name, _, kw = functional_forward(rng)
    cell = name[2:-8]
    layer = PACKED[cell](**{k: kw[k] for k in WEIGHTS})
    call = {k: v for k, v in kw.items() if k not in WEIGHTS and k != "keep_cache"}
    return f"F.Prepacked{cell.upper()}()", layer, call


LAYERS = [rnncore.LSTM, rnncore.GRU, rnncore.RNN]
CELLS = [rnncore.LSTMCell, rnncore.GRUCell, rnncore.RNNCell]


def layer_config(rng, cls):
    kw = dict(input_size=int(rng.integers(1, 4)), hidden_size=int(rng.integers(2, 5)),
              num_layers=int(rng.integers(1, 3)), bias=bool(rng.integers(2)),
              batch_first=bool(rng.integers(2)), bidirectional=bool(rng.integers(2)),
              dtype=str(rng.choice(["float32", "float64"])), seed=int(rng.integers(100)))
    if kw["num_layers"] > 1:
        kw["dropout"] = float(rng.uniform(0, 0.5))
    if cls is rnncore.LSTM:
        kw["proj_size"] = int(rng.integers(0, kw["hidden_size"]))
    if cls is rnncore.GRU:
        kw["reset_after"] = bool(rng.integers(2))
    if cls is rnncore.RNN:
        kw["nonlinearity"] = str(rng.choice(["tanh", "relu"]))
    return kw


def new_layer(rng):
    cls = LAYERS[rng.integers(3)]
    return cls(**layer_config(rng, cls))


def layer_ctor(rng):
    cls = LAYERS[rng.integers(3)]
    return f"{cls.__name__}()", cls, layer_config(rng, cls)


def layer_input(rng, layer):
    T, B = (int(v) for v in rng.integers(1, 5, size=2))
    x = rand(rng, T, B, layer.input_size, dtype=layer.dtype)
    if layer.batch_first:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    return x, T, B


def layer_forward(rng):
    layer = new_layer(rng)
    x, T, B = layer_input(rng, layer)
    LD = layer.num_layers * (2 if layer.bidirectional else 1)
    h0 = rand(rng, LD, B, layer._stack.out_size, dtype=layer.dtype)
    if isinstance(layer, rnncore.LSTM):
        h0 = (h0, rand(rng, LD, B, layer.hidden_size, dtype=layer.dtype))
    return "layer.forward", layer, dict(x=x, h0=h0, lengths=rng.integers(1, T + 1, size=B),
                                        keep_cache=bool(rng.integers(2)))


def layer_backward(rng):
    layer = new_layer(rng)
    x, _, _ = layer_input(rng, layer)
    y, h_n = layer(x, keep_cache=True)
    dh_n = tuple(np.ones_like(h) for h in h_n) if isinstance(h_n, tuple) else np.ones_like(h_n)
    return "layer.backward", layer.backward, dict(dy=np.ones_like(y), dh_n=dh_n)


def layer_load_state_dict(rng):
    layer = new_layer(rng)
    return "layer.load_state_dict", layer.load_state_dict, dict(state_dict=layer.state_dict())


def layer_misc(rng):
    layer = new_layer(rng)
    method = rng.choice(["train", "from_layer"])
    if method == "train":
        return "layer.train", layer.train, dict(mode=bool(rng.integers(2)))
    cell_cls = CELLS[LAYERS.index(type(layer))]
    return "Cell.from_layer", cell_cls.from_layer, dict(layer=layer, k=0, reverse=False)


def cell_ctor(rng):
    cls = CELLS[rng.integers(3)]
    kw = dict(input_size=int(rng.integers(1, 4)), hidden_size=int(rng.integers(2, 5)), bias=bool(rng.integers(2)),
              dtype=str(rng.choice(["float32", "float64"])), seed=int(rng.integers(100)))
    return f"{cls.__name__}()", cls, kw


def cell_forward(rng):
    _, cls, kw = cell_ctor(rng)
    cell = cls(**kw)
    B = int(rng.integers(1, 4))
    hx = rand(rng, B, cell.hidden_size, dtype=cell.dtype)
    if cls is rnncore.LSTMCell:
        hx = (hx, rand(rng, B, cell.hidden_size, dtype=cell.dtype))
    return "cell.forward", cell, dict(x=rand(rng, B, cell.input_size, dtype=cell.dtype), hx=hx)


def load_file(rng):
    if rng.integers(2):
        module = new_layer(rng)
    else:
        _, cls, kw = cell_ctor(rng)
        module = cls(**kw)
    path = os.path.join(WORKDIR, f"m{rng.integers(10**9)}.npz")
    module.save(path)
    data = bytearray(open(path, "rb").read())
    how = rng.integers(4)
    if how == 0:
        data = data[: rng.integers(len(data))]
    elif how == 1:
        for _ in range(rng.integers(1, 8)):
            data[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
    elif how == 2:
        data += bytes(rng.integers(0, 256, size=rng.integers(1, 64), dtype=np.uint8))
    else:
        start = rng.integers(len(data))
        data[start:start + 64] = bytes(rng.integers(0, 256, size=len(data[start:start + 64]), dtype=np.uint8))
    with open(path, "wb") as f:
        f.write(bytes(data))
    return "rnncore.load", rnncore.load, dict(path=path)


def save_file(rng):
    layer = new_layer(rng)
    return "module.save", layer.save, dict(path=os.path.join(WORKDIR, "saved.npz"))


def set_threads(rng):
    return "set_num_threads", rnncore.set_num_threads, dict(n=int(rng.integers(1, 3)))


def nn_module(rng):
    kind = rng.integers(5)
    if kind == 0:
        return "nn.Linear()", nn.Linear, dict(in_features=3, out_features=2, bias=True, dtype="float32", seed=0)
    if kind == 1:
        return "nn.Embedding()", nn.Embedding, dict(num_embeddings=5, embedding_dim=3, padding_idx=0, seed=0)
    if kind == 2:
        return "nn.Dropout()", nn.Dropout, dict(p=0.5, seed=0)
    if kind == 3:
        return "nn.Activation()", nn.Activation, dict(name="tanh")
    return "nn.MLP()", nn.MLP, dict(sizes=[3, 4, 2], activation="relu", dropout=0.1, seed=0)


def nn_forward(rng):
    kind = rng.integers(3)
    if kind == 0:
        m = nn.MLP([3, 4, 2], seed=0)
        return "nn.forward", m, dict(x=rand(rng, 5, 3))
    if kind == 1:
        m = nn.Embedding(5, 3, seed=0)
        return "nn.forward", m, dict(indices=rng.integers(0, 5, size=(2, 3)))
    m = nn.Linear(3, 2, seed=0)
    m(rand(rng, 4, 3))
    return "nn.backward", m.backward, dict(dy=rand(rng, 4, 2))


def loss_call(rng):
    kind = rng.integers(3)
    logits = rand(rng, 4, 3)
    if kind == 0:
        return "losses.cross_entropy", losses.cross_entropy, dict(
            logits=logits, target=rng.integers(0, 3, size=4), weight=np.ones(3, np.float32),
            mask=np.ones(4, bool), reduction="mean")
    if kind == 1:
        return "losses.mse_loss", losses.mse_loss, dict(input=logits, target=rand(rng, 4, 3), reduction="sum")
    return "losses.binary_cross_entropy_with_logits", losses.binary_cross_entropy_with_logits, dict(
        logits=logits, target=rng.uniform(0, 1, (4, 3)).astype(np.float32), pos_weight=np.ones(3, np.float32))


def params(rng):
    return {"w": rand(rng, 3, 2), "b": rand(rng, 2)}


OPTIMIZERS = {
    "SGD": (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.01, nesterov=True)),
    "RMSprop": (optim.RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-8, momentum=0.5, centered=True)),
    "Adam": (optim.Adam, dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0)),
    "AdamW": (optim.AdamW, dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)),
}


def optimizer_ctor(rng):
    name = list(OPTIMIZERS)[rng.integers(len(OPTIMIZERS))]
    cls, kw = OPTIMIZERS[name]
    return f"optim.{name}()", cls, dict(params=params(rng), **kw)


def optimizer_use(rng):
    name = list(OPTIMIZERS)[rng.integers(len(OPTIMIZERS))]
    cls, kw = OPTIMIZERS[name]
    p = params(rng)
    opt = cls(p, **kw)
    if rng.integers(2):
        return "Optimizer.step", opt.step, dict(grads={k: np.ones_like(v) for k, v in p.items()})
    opt.step({k: np.ones_like(v) for k, v in p.items()})
    return "Optimizer.load_state_dict", opt.load_state_dict, dict(state_dict=opt.state_dict())


def schedule(rng):
    opt = optim.SGD(params(rng), lr=0.1)
    kind = rng.integers(4)
    if kind == 0:
        return "optim.StepLR()", optim.StepLR, dict(optimizer=opt, step_size=2, gamma=0.5)
    if kind == 1:
        return "optim.CosineAnnealingLR()", optim.CosineAnnealingLR, dict(optimizer=opt, T_max=3, eta_min=0.0)
    if kind == 2:
        return "optim.ReduceLROnPlateau()", optim.ReduceLROnPlateau, dict(
            optimizer=opt, mode="min", factor=0.5, patience=1, threshold=1e-4, threshold_mode="rel",
            cooldown=0, min_lr=0.0, eps=1e-8)
    plateau = optim.ReduceLROnPlateau(opt)
    return "ReduceLROnPlateau.step", plateau.step, dict(metric=float(rng.uniform()))


def training_tool(rng):
    grads = {"w": rand(rng, 3, 2), "b": rand(rng, 2)}
    kind = rng.integers(6)
    if kind == 0:
        return "clip_grad_norm", rnncore.clip_grad_norm, dict(grads=grads, max_norm=1.0, error_if_nonfinite=True)
    if kind == 1:
        return "clip_grad_value", rnncore.clip_grad_value, dict(grads=grads, clip_value=0.5)
    if kind == 2:
        return "GradientMonitor.record", rnncore.GradientMonitor(warn=False).record, dict(grads=grads)
    if kind == 3:
        return "EarlyStopping()", rnncore.EarlyStopping, dict(patience=2, min_delta=0.0, mode="min",
                                                             restore_best=True)
    if kind == 4:
        return "EarlyStopping.step", rnncore.EarlyStopping(patience=2).step, dict(metric=0.5, params=grads)
    return "History.log", rnncore.History().log, dict(train_loss=0.5, val_loss=0.7)


def torch_forward(rng):
    import torch

    import rnncore.torch as rt

    cls = [rt.LSTM, rt.GRU, rt.RNN][rng.integers(3)]
    module = cls(3, 4, num_layers=int(rng.integers(1, 3)), bidirectional=bool(rng.integers(2)))
    T, B = (int(v) for v in rng.integers(1, 5, size=2))
    x = torch.randn(T, B, 3, requires_grad=bool(rng.integers(2)))
    lengths = torch.from_numpy(rng.integers(1, T + 1, size=B))
    return "torch.forward", module, dict(input=x, lengths=lengths)


BUILDERS = [functional_forward, functional_backward, packed_ctor, packed_call, layer_ctor, layer_forward, layer_backward,
            layer_load_state_dict, layer_misc, cell_ctor, cell_forward, load_file, save_file, set_threads,
            nn_module, nn_forward, loss_call, optimizer_ctor, optimizer_use, schedule, training_tool]


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


def to_torch_like(rng, value):
    """A torch tensor in place of an ndarray (used only with --torch)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value


def mutate(rng, kwargs, use_torch):
    kwargs = dict(kwargs)
    for _ in range(rng.integers(1, 3)):
        what = rng.integers(40)
        if what == 0 and kwargs:  # drop an argument
            kwargs.pop(list(kwargs)[rng.integers(len(kwargs))])
        elif what == 1:  # an argument that does not exist
            kwargs["colour"] = "red"
        elif kwargs:
            key = list(kwargs)[rng.integers(len(kwargs))]
            try:
                kwargs[key] = break_one(rng, kwargs[key], use_torch)
            except (TypeError, ValueError):  # a breakage that does not apply to this value
                pass
    return kwargs


def break_one(rng, value, use_torch):
    if isinstance(value, tuple) and value and isinstance(value[0], np.ndarray) and rng.integers(2):
        items = list(value)
        items[rng.integers(len(items))] = bad_value(rng, items[0])
        return tuple(items)
    if use_torch and isinstance(value, np.ndarray) and rng.integers(4) == 0:
        return to_torch_like(rng, value)
    return bad_value(rng, value)


def reference_call():
    """A fixed valid call; its result must never change during the run."""
    rng = np.random.default_rng(1234)
    x, w_ih, w_hh = rand(rng, 6, 3, 5), rand(rng, 16, 5), rand(rng, 16, 4)
    return F.lstm_forward(x, None, None, w_ih, w_hh, keep_cache=False)[0]


def classify(name, e):
    """(label, allowed) for the exception ``e`` raised by entry point ``name``."""
    if isinstance(e, ALLOWED):
        return type(e).__name__, True
    if isinstance(e, FloatingPointError):
        return "FloatingPointError (non-finite guard)", name in NONFINITE_GUARDS
    if isinstance(e, RuntimeError):
        return "RuntimeError (backward without forward)", name in NO_FORWARD
    if isinstance(e, OSError):
        return f"{type(e).__name__} (file system)", name in FILE_FUNCTIONS
    return f"UNEXPECTED {type(e).__name__}", False


def describe(kwargs):
    def short(v):
        if isinstance(v, np.ndarray):
            return f"ndarray{v.shape}:{v.dtype}{'' if v.flags.c_contiguous else ':noncontig'}"
        text = repr(v)
        return text if len(text) < 60 else text[:57] + "..."
    return ", ".join(f"{k}={short(v)}" for k, v in kwargs.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch", action="store_true", help="also call the torch adapter (imports torch)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one call may take (a hang)")
    args = parser.parse_args(argv)

    global WORKDIR
    warnings.simplefilter("ignore")  # numpy's overflow warnings on huge values are not failures
    builders = BUILDERS + ([torch_forward] if args.torch else [])
    rng = np.random.default_rng(args.seed)
    expected = reference_call()
    outcomes = collections.Counter()
    per_entry = collections.defaultdict(collections.Counter)
    threads = rnncore.get_num_threads()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as WORKDIR:
        os.chdir(WORKDIR)  # a path broken into a bare string ("TANH") lands here, not in the caller's cwd
        try:
            failures = run(args, builders, rng, expected, outcomes, per_entry, threads)
        finally:
            os.chdir(cwd)
        if failures is None:
            return 2
    rnncore.set_num_threads(threads)
    report(args, outcomes, per_entry, failures)
    return 1 if failures else 0


def run(args, builders, rng, expected, outcomes, per_entry, threads):
    """The calls; returns the failures, or None when the fixed reference call changed."""
    failures = []
    for i in range(args.calls):
        builder = builders[rng.integers(len(builders))]
        name, fn, kwargs = builder(rng)
        if name not in PREBROKEN or rng.integers(4) == 0:
            kwargs = mutate(rng, kwargs, args.torch)
        faulthandler.dump_traceback_later(args.timeout, exit=True)
        try:
            fn(**kwargs)
            outcome, allowed = "returned", True
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - the point is to see everything
            outcome, allowed = classify(name, e)
            if not allowed:
                failures.append((i, name, kwargs, e))
        finally:
            faulthandler.cancel_dump_traceback_later()
        outcomes[outcome] += 1
        per_entry[name][outcome if allowed else "FAILED"] += 1
        if i % 50 == 49:
            rnncore.set_num_threads(threads)
            if not np.array_equal(reference_call(), expected):
                print(f"call {i}: the fixed reference call changed its result", file=sys.stderr)
                return None
    return failures


def report(args, outcomes, per_entry, failures):
    print(f"{args.calls} bad calls, seed {args.seed}:")
    for outcome, count in sorted(outcomes.items(), key=lambda kv: -kv[1]):
        print(f"  {count:5d}  {outcome}")
    print("per entry point (calls: outcomes):")
    for name, counts in sorted(per_entry.items()):
        print(f"  {name:34s} {sum(counts.values()):4d}: " +
              ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for i, name, kwargs, e in failures:
        print(f"\nFAILURE at call {i}: {name}({describe(kwargs)})", file=sys.stderr)
        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
    print("interpreter alive; " + ("FAILED" if failures else "only allowed outcomes"))


WORKDIR = ""

if __name__ == "__main__":
    sys.exit(main())
