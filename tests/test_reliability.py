"""Reliability: rnncore never crashes, hangs, leaks or loads what it should not.

Sections follow the reliability issue: validation at the boundary,
non-finite values, concurrency, limits (very long sequences, requests
beyond memory), determinism, files (atomic save, hostile files) and leaks.
Anything that could hang or kill the interpreter runs in a subprocess with
a timeout, so a regression fails the test instead of stalling the run.
"""

from __future__ import annotations

import concurrent.futures
import gc
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

import rnncore
from cellcases import (ALL_VARIANTS, TOL, VARIANTS, arg_names, backward, forward, make_args, misaligned, quiet,
                       random_lengths, rel_err)
from rnncore import functional as F
from rnncore import losses, optim
from rnncore import reference as R

LAYERS = {"lstm": rnncore.LSTM, "gru": rnncore.GRU, "rnn": rnncore.RNN}


@pytest.fixture
def threads():
    """Restores the thread count after the test."""
    before = rnncore.get_num_threads()
    yield rnncore.set_num_threads
    rnncore.set_num_threads(before)


def run_python(code, timeout=120):
    """Run ``code`` in a fresh interpreter like this one; returns the completed process."""
    flags = ["-S"] if sys.flags.no_site else []
    return subprocess.run([sys.executable, *flags, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONHASHSEED": "0"})


# --------------------------------------------------------------------------
# 1. Validation at the boundary: what the kernels must never see
# --------------------------------------------------------------------------


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("name", ["x", "weight_hh", "h0"])
def test_misaligned_arrays_are_refused(v, name, rng):
    args = make_args(v, 3, 2, 4, 5, np.float32, rng)
    k = arg_names(v).index(name)
    args[k] = misaligned(args[k])
    with pytest.raises(ValueError, match=f"{name} is not aligned"):
        forward(F, v, args)


def test_masked_arrays_are_refused(rng):
    v = VARIANTS[0]
    args = make_args(v, 3, 2, 4, 5, np.float32, rng)
    args[0] = np.ma.masked_array(args[0], mask=args[0] > 1)
    with pytest.raises(TypeError, match="x is a numpy.ma.MaskedArray, whose mask would be ignored"):
        forward(F, v, args)


def test_equivalent_dtypes_are_accepted(rng):
    """A float32 dtype carrying metadata is float32: same results, not a dtype error."""
    v = VARIANTS[1]
    args = make_args(v, 3, 2, 4, 5, np.float32, rng)
    tagged = np.dtype(np.float32, metadata={"unit": "m"})
    want = forward(F, v, args, keep_cache=False)[0]
    got = forward(F, v, [a.astype(tagged) for a in args], keep_cache=False)[0]
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)


def test_byte_swapped_arrays_are_refused_with_the_fix(rng):
    v = VARIANTS[2]
    args = make_args(v, 3, 2, 4, 5, np.float64, rng)
    args[3] = args[3].astype(">f8")
    with pytest.raises(TypeError, match=r"weight_hh has dtype >f8.*non-native byte order"):
        forward(F, v, args)


class _Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("cannot be an array")


@pytest.mark.parametrize("lengths", [[[1], [1, 2]], _Unconvertible()], ids=["ragged", "raises"])
def test_lengths_that_cannot_become_an_array_name_the_argument(lengths, rng):
    v = VARIANTS[0]
    args = make_args(v, 3, 2, 4, 5, np.float32, rng)
    with pytest.raises(TypeError, match="lstm_forward: lengths must be an array of integers"):
        forward(F, v, args, lengths=lengths)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda p: optim.SGD(p, momentum=0.9, nesterov="yes"), TypeError, "nesterov must be a bool"),
    (lambda p: optim.RMSprop(p, centered=1), TypeError, "centered must be a bool"),
    (lambda p: rnncore.EarlyStopping(restore_best=None), TypeError, "restore_best must be a bool"),
    (lambda p: rnncore.GradientMonitor(warn="no"), TypeError, "warn must be a bool"),
    (lambda p: rnncore.clip_grad_norm(p, 1.0, error_if_nonfinite=0), TypeError, "error_if_nonfinite"),
    (lambda p: rnncore.EarlyStopping().step("0.5"), TypeError, "metric must be a real number"),
    (lambda p: optim.ReduceLROnPlateau(optim.SGD(p)).step(True), TypeError, "metric must be a real number"),
    (lambda p: rnncore.nn.Linear(2, 2).train("no"), TypeError, "mode must be a bool"),
])
def test_training_flags_and_metrics_are_not_coerced(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make({"w": np.ones(3)})


@pytest.mark.parametrize("cell, G", [("lstm", 4), ("gru", 3), ("rnn", 1)])
def test_sizes_that_overflow_indexing_are_refused(cell, G):
    """An empty weight of shape (0, 2**60) costs nothing yet says H = 2**60:
    G*H and T*B*G*H would overflow the kernels' 64-bit indices."""
    x = np.zeros((2, 1, 3), np.float32)
    w_ih, w_hh = np.zeros((0, 3), np.float32), np.zeros((0, 2**60), np.float32)
    args = [x, None, None, w_ih, w_hh] if cell == "lstm" else [x, None, w_ih, w_hh]
    with pytest.raises(ValueError, match=rf"{cell}_forward: sizes .* overflow 64-bit indexing"):
        getattr(F, f"{cell}_forward")(*args)


@pytest.mark.parametrize("size", [{"num_layers": 2**64}, {"num_layers": 10**30}, {"hidden_size": 2**62}])
def test_unaddressable_layer_sizes_are_refused_at_once(size):
    """Refused before the per-layer loop: a huge num_layers used to hang the constructor."""
    with pytest.raises(ValueError, match="more than can be addressed"):
        rnncore.GRU(**{"input_size": 3, "hidden_size": 4, **size})


# --------------------------------------------------------------------------
# 2. Non-finite values: never a crash or a hang; the forward pass carries
#    them (NaN in, NaN out where it reaches) and training tools stop on them
# --------------------------------------------------------------------------


def injections(values):
    """(variant, argument, value) for every array argument of every variant."""
    cases = []
    for v in ALL_VARIANTS:
        for name in arg_names(v):
            for value in values:
                cases.append(pytest.param(v, name, value, id=f"{v}-{name}-{value}"))
    return cases


def inject(v, args, name, value, rng):
    k = arg_names(v).index(name)
    args[k].flat[rng.integers(args[k].size)] = value
    return args


@pytest.mark.parametrize("v,name,value", injections([np.nan]))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_is_carried_like_the_reference(v, name, value, dtype, rng):
    """A NaN anywhere shows in every output and gradient it reaches -- exactly
    those the reference (plain NumPy) makes NaN -- and the rest agree."""
    args = inject(v, make_args(v, 5, 3, 4, 19, dtype, rng), name, value, rng)
    fast, cache = forward(F, v, args)
    ref, ref_cache = quiet(forward, R, v, args)
    dy = np.ones_like(fast[0])
    fast += tuple(g for g in backward(F, v, cache, dy, []) if g is not None)
    ref += tuple(g for g in quiet(backward, R, v, ref_cache, dy, []) if g is not None)
    assert not np.isfinite(fast[0]).all()
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        finite = np.isfinite(b)
        assert rel_err(a[finite], b[finite]) <= 10 * TOL[dtype]


@pytest.mark.parametrize("v,name,value", injections([np.inf, -np.inf]))
def test_infinities_never_crash_and_keep_the_padding(v, name, value, rng):
    """Infinities give NaN or saturate, depending on the order of operations (inf - inf,
    0 * inf), so only the invariants are checked: no error, the right shapes and
    dtypes, and exact zeros past each sequence's length."""
    T, B = 6, 4
    args = inject(v, make_args(v, T, B, 3, 20, np.float32, rng), name, value, rng)
    lengths = random_lengths(T, B, rng)
    for reverse in (False, True):
        (y, *states), cache = forward(F, v, args, lengths=lengths, reverse=reverse)
        assert y.dtype == np.float32 and (y[np.arange(T)[:, None] >= lengths] == 0).all()
        grads = backward(F, v, cache, np.ones_like(y), [])
        assert grads.dx.shape == args[0].shape


@pytest.mark.parametrize("v", ALL_VARIANTS, ids=str)
@pytest.mark.parametrize("name", ["weight_ih", "weight_hh"])
def test_padding_never_reaches_gradients_even_with_nan_weights(v, name, rng):
    """0 times a NaN weight is NaN: padded rows of dx stay exactly zero, and
    NaN reaches exactly the gradients it reaches in the reference."""
    T, B = 5, 3
    args = inject(v, make_args(v, T, B, 4, 6, np.float64, rng), name, np.nan, rng)
    lengths = np.array([5, 1, 3])
    for reverse in (False, True):
        (y, *_), cache = forward(F, v, args, lengths=lengths, reverse=reverse)
        _, ref_cache = quiet(forward, R, v, args, lengths=lengths, reverse=reverse)
        grads = backward(F, v, cache, np.ones_like(y), [])
        ref = quiet(backward, R, v, ref_cache, np.ones_like(y), [])
        assert (grads.dx[np.arange(T)[:, None] >= lengths] == 0).all()
        for field, got in zip(grads._fields, grads):
            if got is not None:
                np.testing.assert_array_equal(np.isnan(got), np.isnan(getattr(ref, field)), err_msg=field)


@pytest.mark.parametrize("v", ALL_VARIANTS, ids=str)
def test_nonfinite_padding_is_never_read(v, rng):
    """NaN and inf in padded steps of x and of dy change nothing, bitwise."""
    T, B, I, H = 6, 4, 3, 20
    args = make_args(v, T, B, I, H, np.float32, rng)
    lengths = random_lengths(T, B, rng)
    pad = np.arange(T)[:, None] >= lengths[None, :]
    dirty = [a.copy() for a in args]
    dirty[0][pad] = np.where(rng.random(dirty[0][pad].shape) < 0.5, np.nan, np.inf)
    for reverse in (False, True):
        (y, *states), cache = forward(F, v, args, lengths=lengths, reverse=reverse)
        (y2, *states2), cache2 = forward(F, v, dirty, lengths=lengths, reverse=reverse)
        for a, b in zip([y, *states], [y2, *states2]):
            np.testing.assert_array_equal(a, b)
        assert (y2[pad] == 0).all()
        dy = rng.standard_normal(y.shape).astype(y.dtype)
        dy2 = dy.copy()
        dy2[pad] = np.nan
        for a, b in zip(backward(F, v, cache, dy, []), backward(F, v, cache2, dy2, [])):
            if a is not None:
                np.testing.assert_array_equal(a, b)


def test_layers_and_cells_run_on_nonfinite_weights(rng):
    for cls in (rnncore.LSTM, rnncore.GRU, rnncore.RNN):
        layer = cls(3, 4, num_layers=2, bidirectional=True, seed=0)
        layer.params["weight_hh_l0"][0, 0] = np.nan
        y, _ = layer(rng.standard_normal((5, 2, 3)).astype(np.float32))
        assert np.isnan(y).any()
        dx, _ = layer.backward(np.ones_like(y))
        assert np.isnan(dx).any()
    cell = rnncore.LSTMCell(3, 4, seed=0)
    cell.params["bias_ih"][:] = np.inf
    h, c = cell(np.ones((2, 3), np.float32))
    assert h.shape == (2, 4)


def test_optimizer_refuses_nonfinite_gradients(rng):
    params = {"w": rng.standard_normal(4), "b": rng.standard_normal(2)}
    before = {k: v.copy() for k, v in params.items()}
    opt = optim.Adam(params, lr=0.1)
    grads = {"w": np.array([1.0, np.nan, 0.0, 1.0]), "b": np.array([np.inf, 0.0])}
    with pytest.raises(FloatingPointError, match="non-finite gradients: w, b; nothing was updated"):
        opt.step(grads)
    opt.step(grads, skip_nonfinite=True)
    assert opt.steps == 0 and opt.skipped_steps == 1
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    for buffers in opt.state.values():
        assert all((b == 0).all() for b in buffers.values())
    opt.step({"w": np.ones(4), "b": np.ones(2)})
    assert opt.steps == 1 and np.isfinite(params["w"]).all()


def test_training_stops_with_a_clear_error_on_a_nonfinite_loss(rng):
    """A diverged model: the loss is NaN, its gradient too, and the training tools
    refuse to apply it (clip_grad_norm and Optimizer.step each say so)."""
    gru = rnncore.GRU(3, 4, seed=0)
    opt = optim.SGD(gru.params, lr=0.1)
    gru.params["weight_ih_l0"][1, 2] = np.nan
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    y, _ = gru(x)
    loss, dy = losses.mse_loss(y, np.zeros_like(y))
    assert not np.isfinite(loss)
    gru.backward(dy)
    with pytest.raises(FloatingPointError, match="non-finite gradients: .*weight_ih_l0"):
        rnncore.clip_grad_norm(gru.grads, 1.0)
    with pytest.raises(FloatingPointError, match="nothing was updated"):
        opt.step(gru.grads)


# --------------------------------------------------------------------------
# 3. Concurrency
# --------------------------------------------------------------------------


def _inference_in_threads(layer, xs, workers=8):
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda x: layer(x)[0], xs))


def test_eight_threads_on_one_layer_match_serial_calls(threads, rng):
    """Inference on one layer from 8 Python threads: the same arrays as serial calls
    (with the kernels single-threaded; see the test below for the thread pool)."""
    threads(1)
    for cls in LAYERS.values():
        layer = cls(16, 32, num_layers=2, bidirectional=True, seed=1).eval()
        xs = [rng.standard_normal((8, 16, 16)).astype(np.float32) for _ in range(16)]
        serial = [layer(x)[0] for x in xs]
        for want, got in zip(serial, _inference_in_threads(layer, xs)):
            np.testing.assert_array_equal(want, got)


def test_eight_threads_sharing_the_thread_pool_do_not_deadlock():
    """The same with two kernel threads and shapes big enough to use them, in a
    subprocess so that a deadlock fails the test instead of hanging the run."""
    code = """
        import concurrent.futures, numpy as np, rnncore
        rnncore.set_num_threads(2)
        lstm = rnncore.LSTM(16, 64, seed=0).eval()      # B*4H*H = 16*256*64 >= 32768
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal((20, 16, 16)).astype(np.float32) for _ in range(32)]
        serial = [lstm(x)[0] for x in xs]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            parallel = list(pool.map(lambda x: lstm(x)[0], xs))
        assert all((a == b).all() for a, b in zip(serial, parallel))
        print("ok")
    """
    try:
        done = run_python(code, timeout=10)  # a healthy run takes well under 2 s
    except subprocess.TimeoutExpired:
        pytest.fail("8 threads calling one layer deadlocked (no result after 10 s)")
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


def test_training_state_is_per_object(threads, rng):
    """Layers trained in different threads at once keep their own caches and
    gradients: the same as training them one after the other."""
    threads(1)
    xs = [rng.standard_normal((7, 3, 5)).astype(np.float32) for _ in range(6)]

    def train(k):
        layer = rnncore.LSTM(5, 6, num_layers=2, dropout=0.3, seed=k)
        for _ in range(3):
            y, _ = layer(xs[k])
            layer.backward(np.ones_like(y))
        return layer.grads

    serial = [train(k) for k in range(6)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(train, range(6)))
    for want, got in zip(serial, parallel):
        for name in want:
            np.testing.assert_array_equal(want[name], got[name])


def test_no_grad_is_per_thread():
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def inside():
        with rnncore.no_grad():
            entered.set()
            checked.wait()

    t = threading.Thread(target=inside)
    t.start()
    entered.wait()
    seen["here"] = rnncore._grad_mode.is_grad_enabled()
    checked.set()
    t.join()
    assert seen["here"] is True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_layers_work_after_fork_from_a_threaded_parent():
    """The parent used the kernel pool from a worker thread; the child (one thread,
    no pool) computes the same output with two kernel threads."""
    code = """
        import os, threading, warnings, numpy as np, rnncore
        rnncore.set_num_threads(2)
        gru = rnncore.GRU(16, 64, num_layers=2, seed=0).eval()
        x = np.random.default_rng(0).standard_normal((12, 16, 16)).astype(np.float32)
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("y", gru(x)[0]))
        t.start(); t.join()
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            try:
                os.write(w, gru(x)[0].tobytes())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        assert np.array_equal(np.frombuffer(data, np.float32).reshape(out["y"].shape), out["y"])
        print("ok")
    """
    done = run_python(code, timeout=60)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


# --------------------------------------------------------------------------
# 4. Limits
# --------------------------------------------------------------------------


def _on_small_stack(fn, stack_bytes=256 * 1024):
    """Run ``fn`` on a thread with a small stack: any recursion or stack
    buffer growing with T would overflow it."""
    result, old = {}, threading.stack_size(stack_bytes)
    try:
        t = threading.Thread(target=lambda: result.setdefault("value", fn()))
        t.start()
        t.join()
    finally:
        threading.stack_size(old)
    return result["value"]


@pytest.mark.parametrize("cell", LAYERS)
def test_a_sequence_of_100000_steps(cell, rng):
    """T = 100 000, B = 1: forward and backward work on a small stack, stay finite,
    and the first 1000 outputs are bitwise those of a 1000-step run (the loop
    carries state step by step, nothing grows with T)."""
    layer = LAYERS[cell](4, 16, seed=0)
    x = rng.standard_normal((100_000, 1, 4)).astype(np.float32)

    def run():
        y, _ = layer(x)
        dx, _ = layer.backward(np.ones_like(y))
        return y, dx

    y, dx = _on_small_stack(run)
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    head, _ = layer(x[:1000], keep_cache=False)
    np.testing.assert_array_equal(y[:1000], head)


def _huge_x(T, B, I=1):
    """[T, B, I] zeros that cost no memory until touched (the kernels must not touch them)."""
    return np.zeros((T, B, I), np.float32)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("keep_cache", [False, True])
def test_requests_beyond_memory_raise_memoryerror_naming_the_size(cell, keep_cache):
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    H = 4096
    x = _huge_x(100_000, 1000)  # y alone would be 1.5 TiB
    w_ih, w_hh = np.zeros((G * H, 1), np.float32), np.zeros((G * H, H), np.float32)
    args = [x, None, None, w_ih, w_hh] if cell == "lstm" else [x, None, w_ih, w_hh]
    with pytest.raises(MemoryError, match=rf"{cell}_forward: the outputs.* need \d+\.\d [TP]iB "
                                          rf"\(\d+ bytes\), but only .* of memory is available"):
        getattr(F, f"{cell}_forward")(*args, keep_cache=keep_cache)


def test_a_layer_beyond_memory_raises_memoryerror():
    lstm = rnncore.LSTM(1, 2048, seed=0)
    with pytest.raises(MemoryError, match="lstm_forward: .* TiB"):
        lstm(_huge_x(200_000, 1000))


# --------------------------------------------------------------------------
# 5. Determinism
# --------------------------------------------------------------------------

_TRAINING_RUN = """
    import hashlib, numpy as np, rnncore
    from rnncore import losses, optim
    rnncore.set_num_threads(2)
    digest = hashlib.sha256()
    rng = np.random.default_rng(7)
    for cls in (rnncore.LSTM, rnncore.GRU, rnncore.RNN):
        layer = cls(8, 48, num_layers=2, bidirectional=True, dropout=0.2, seed=3)
        opt = optim.Adam(layer.params, lr=1e-2)
        for step in range(3):
            x = rng.standard_normal((9, 12, 8)).astype(np.float32)
            lengths = rng.integers(1, 10, size=12)
            y, _ = layer(x, lengths=lengths)
            loss, dy = losses.mse_loss(y, np.zeros_like(y))
            layer.zero_grad()
            dx, _ = layer.backward(dy)
            opt.step(layer.grads)
            for a in (y, dx, *layer.grads.values(), *layer.params.values()):
                digest.update(a.tobytes())
    print(digest.hexdigest())
"""


def test_training_is_bitwise_reproducible_across_processes():
    """Same seed, inputs and thread count: two interpreters produce bitwise the same
    outputs, gradients and updated parameters (dropout masks included)."""
    runs = [run_python(_TRAINING_RUN) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout.strip()) == 64


# --------------------------------------------------------------------------
# 6. Files
# --------------------------------------------------------------------------


def test_a_crash_mid_save_keeps_the_previous_file(tmp_path):
    """The process dies half-way through writing: the old file is intact and loads."""
    path = tmp_path / "model.npz"
    old = rnncore.GRU(3, 4, seed=1)
    old.save(path)
    before = path.read_bytes()
    code = f"""
        import os, numpy as np, rnncore
        def dying_savez(f, **arrays):
            f.write(b"PK\\x03\\x04 half an archive")
            f.flush()
            os._exit(3)
        np.savez = dying_savez
        rnncore.GRU(3, 4, seed=2).save({str(path)!r})
    """
    done = run_python(code)
    assert done.returncode == 3, done.stderr
    assert path.read_bytes() == before
    loaded = rnncore.load(path)
    np.testing.assert_array_equal(loaded.params["weight_hh_l0"], old.params["weight_hh_l0"])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.npz.") and leftovers[0].endswith(".tmp")


def test_a_failed_save_keeps_the_previous_file_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    rnncore.RNN(3, 4, seed=1).save(path)
    before = path.read_bytes()

    def full_disk(f, **arrays):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        rnncore.RNN(3, 4, seed=2).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_save_keeps_the_mode_and_writes_through_symlinks(tmp_path):
    target = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    rnncore.LSTMCell(2, 3, seed=0).save(target)
    os.chmod(target, 0o640)
    link.symlink_to(target)
    rnncore.LSTMCell(2, 3, seed=1).save(link)
    assert link.is_symlink()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    np.testing.assert_array_equal(rnncore.load(target).params["weight_ih"],
                                  rnncore.LSTMCell(2, 3, seed=1).params["weight_ih"])


def _npy_bytes(header, payload=b""):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def _archive(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def _meta_entry(module):
    buf = io.BytesIO()
    meta = {"format": "rnncore", "version": 1, "class": type(module).__name__, "config": module.config}
    np.save(buf, np.array(json.dumps(meta)))
    return buf.getvalue()


@pytest.mark.parametrize("entry, pattern", [
    (_npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}, b"\0" * 64),
     r"declares shape \(1000000, 1000000\) of float32 \(4000000000000 bytes\) but holds 64 bytes"),
    (_npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (2,)}, b"\0" * 12),
     r"declares shape \(2,\) of float32 \(8 bytes\) but holds 12 bytes"),
    (_npy_bytes({"descr": "|O", "fortran_order": False, "shape": (1,)}, b"\0" * 8), "Python objects"),
    (b"\x93NUMPY\x09\x00rest", "unsupported .npy format version"),
], ids=["huge-header", "trailing-bytes", "object-dtype", "bad-version"])
def test_hostile_entries_are_refused_before_reading(entry, pattern, tmp_path):
    module = rnncore.RNNCell(2, 3, seed=0)
    path = _archive(tmp_path / "evil.npz", {"__rnncore__.npy": _meta_entry(module), "weight_ih.npy": entry})
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=pattern):
            rnncore.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


@pytest.mark.parametrize("change, pattern", [
    ({"hidden_size": 10**6}, r"hidden_size \* input_size = 3000000 parameters but holds only"),
    ({"input_size": 10**9}, "hidden_size \\* input_size"),
    ({"num_layers": 10**9}, r"num_layers \* hidden_size \* H_out"),
])
def test_forged_configurations_are_refused_before_building(change, pattern, tmp_path):
    """A configuration its arrays cannot hold is refused at once, without first
    building (allocating) the module it describes."""
    gru = rnncore.GRU(3, 5, seed=0)
    meta = {"format": "rnncore", "version": 1, "class": "GRU", "config": {**gru.config, **change}}
    path = tmp_path / "forged.npz"
    np.savez(path, __rnncore__=np.array(json.dumps(meta)), **gru.params)
    with pytest.raises(ValueError, match=pattern):
        rnncore.load(path)


def test_deeply_nested_metadata_is_a_value_error(tmp_path):
    path = tmp_path / "deep.npz"
    np.savez(path, __rnncore__=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(ValueError, match="invalid __rnncore__ entry"):
        rnncore.load(path)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was called")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    path = tmp_path / "m.npz"
    rnncore.LSTM(2, 3, num_layers=2, seed=0).save(path)
    rnncore.load(path)
    np.savez(tmp_path / "objects.npz", __rnncore__=np.array([{"class": "LSTM"}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        rnncore.load(tmp_path / "objects.npz")


# --------------------------------------------------------------------------
# 7. Leaks (the C++ side is checked under ASan and valgrind: tools/sanitize.sh)
# --------------------------------------------------------------------------


def test_repeated_training_steps_do_not_grow_memory(rng):
    """After warming up, 100 more forward/backward passes through every kind of layer
    leave Python's and NumPy's allocations where they were.  (CPython's type cache
    keeps the last attribute names looked up, up to 4096: it is cleared before
    each measurement.)"""
    layers = [cls(6, 10, num_layers=2, bidirectional=True, seed=0) for cls in LAYERS.values()]
    x = rng.standard_normal((8, 4, 6)).astype(np.float32)

    def steps(n):
        for _ in range(n):
            for layer in layers:
                y, _ = layer(x, lengths=[8, 3, 5, 1])
                layer.backward(np.ones_like(y))
                F.lstm_forward(x, None, None, np.ones((8, 6), np.float32), np.ones((8, 2), np.float32))

    def used():
        sys._clear_type_cache()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    steps(10)
    tracemalloc.start()
    try:
        steps(5)
        start = used()
        steps(100)
        growth = used() - start
    finally:
        tracemalloc.stop()
    assert growth < 16 * 1024, f"{growth} bytes more after 100 steps"
