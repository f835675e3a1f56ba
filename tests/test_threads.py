"""The thread pool: results do not depend on the thread count, and the
kernels are safe to call from many Python threads at once."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import time
import warnings

import numpy as np
import pytest

import rnncore
from cellcases import TOL, VARIANTS, backward, forward, make_args, random_lengths, rel_err
from rnncore import reference as R
from rnncore import functional as F


@pytest.fixture
def threads():
    """Restores the thread count after the test."""
    before = rnncore.get_num_threads()
    yield rnncore.set_num_threads
    rnncore.set_num_threads(before)


def run(v, args, lengths, reverse, dy_seed=7):
    (y, *states), cache = forward(F, v, args, lengths=lengths, reverse=reverse)
    rng = np.random.default_rng(dy_seed)
    dy = rng.standard_normal(y.shape).astype(y.dtype)
    d_states = [rng.standard_normal(s.shape).astype(s.dtype) for s in states]
    grads = backward(F, v, cache, dy, d_states)
    return [y, *states, *(g for g in grads if g is not None)]


def assert_same_for_1_2_3_threads(threads, v, args, lengths, reverse):
    """Every output and gradient bit for bit the same on 1, 2 and 3 threads."""
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(run(v, args, lengths, reverse))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


# H = 50 gives 4 shares of 16 units (the last one short); B*G*H*H is large
# enough for the kernels to use every thread, even for the dense cell.
@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
def test_thread_count_does_not_change_results(v, dtype, reverse, threads, rng):
    T, B, I, H = 6, 16, 7, 50
    args = make_args(v, T, B, I, H, dtype, rng)
    assert_same_for_1_2_3_threads(threads, v, args, random_lengths(T, B, rng), reverse)


# Batch 1 reads the recurrent weights in place (gemv) in short calls (here
# T = 6) and packs them otherwise (T = 12); the backward reads W_hh in
# place too when it is at most 1 MiB (H = 100 here; at H = 300 only the
# tanh RNN's): whichever way, and whatever share of the rows a thread has,
# the results must be the same.
@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("T, H", [(6, 300), (12, 300), (12, 100)])
@pytest.mark.parametrize("reverse", [False, True])
def test_thread_count_does_not_change_batch_one(v, T, H, reverse, threads, rng):
    args = make_args(v, T, 1, 5, H, np.float64, rng)
    assert_same_for_1_2_3_threads(threads, v, args, None, reverse)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_threaded_kernels_match_reference(v, threads, rng):
    threads(2)
    T, B, I, H = 5, 4, 6, 40
    args = make_args(v, T, B, I, H, np.float64, rng)
    lengths = random_lengths(T, B, rng)
    fast = run(v, args, lengths, True)
    (y, *states), cache = forward(R, v, args, lengths=lengths, reverse=True)
    r = np.random.default_rng(7)
    dy = r.standard_normal(y.shape)
    d_states = [r.standard_normal(s.shape) for s in states]
    grads = backward(R, v, cache, dy, d_states)
    ref = [y, *states, *(g for g in grads if g is not None)]
    for a, b in zip(fast, ref):
        assert rel_err(a, b) <= TOL[np.float64]


def test_concurrent_calls_from_python_threads_match_serial(threads, rng):
    threads(2)
    v = VARIANTS[0]
    calls = [make_args(v, 8, 3, 16, 48, np.float32, rng) for _ in range(8)]
    serial = [forward(F, v, a, keep_cache=False)[0] for a in calls]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(forward, F, v, a, keep_cache=False) for a in calls]
        parallel = [f.result()[0] for f in futures]
    for want, got in zip(serial, parallel):
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)


def _ticks_during(call):
    """Run call() while another Python thread records timestamps; returns
    the call's (start, end) and the timestamps."""
    ticks, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    other = threading.Thread(target=ticker)
    other.start()
    time.sleep(0.01)
    start = time.perf_counter()
    call()
    end = time.perf_counter()
    stop.set()
    other.join()
    return start, end, ticks


@pytest.mark.parametrize("v", VARIANTS[:3], ids=str)
def test_kernels_release_the_gil(v, threads, rng):
    """Another Python thread runs while a forward or backward call is in C++.

    A call holding the GIL would let the ticker run only before and after
    it; ticks in the middle half of a call of at least 60 ms show it is
    released.  One kernel thread leaves a core for the ticker; a loaded
    machine gets three tries."""
    threads(1)
    T, B, I, H = 50, 32, 128, 256
    while True:  # long enough to measure
        args = make_args(v, T, B, I, H, np.float32, rng)
        start = time.perf_counter()
        _, cache = forward(F, v, args)
        if time.perf_counter() - start >= 0.06 or T >= 5000:
            break
        T *= 2
    y = forward(F, v, args, keep_cache=False)[0][0]
    dy = np.ones_like(y)
    calls = {"forward": lambda: forward(F, v, args, keep_cache=False),
             "forward with cache": lambda: forward(F, v, args),
             "backward": lambda: backward(F, v, cache, dy, [])}
    for name, call in calls.items():
        for attempt in range(3):
            start, end, ticks = _ticks_during(call)
            quarter = (end - start) / 4
            if any(start + quarter <= t <= end - quarter for t in ticks):
                break
        else:
            pytest.fail(f"{v} {name}: no other Python thread ran during a {end - start:.3f} s call")


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("failing", [1, 2])
def test_a_failed_allocation_in_a_thread_raises_and_the_pool_recovers(v, failing, threads, rng):
    """An allocation failing in one thread of a time loop (or in all) raises
    MemoryError in the caller, leaves no thread waiting at a barrier, and
    the next call gives the same result as before."""
    from rnncore import _core

    threads(2)
    args = make_args(v, 6, 16, 7, 50, np.float32, rng)
    (y, *_), cache = forward(F, v, args)
    dy = np.ones_like(y)
    grads = backward(F, v, cache, dy, [])
    try:
        _core._testing_fail_steppers(failing)
        with pytest.raises(MemoryError):
            forward(F, v, args, keep_cache=False)
        _core._testing_fail_steppers(failing)
        with pytest.raises(MemoryError):
            backward(F, v, cache, dy, [])
    finally:
        _core._testing_fail_steppers(0)
    np.testing.assert_array_equal(forward(F, v, args, keep_cache=False)[0][0], y)
    for a, b in zip(backward(F, v, cache, dy, []), grads):
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_set_num_threads_checks_its_argument(threads):
    with pytest.raises(ValueError, match="at least 1"):
        rnncore.set_num_threads(0)
    with pytest.raises(TypeError, match="int"):
        rnncore.set_num_threads(1.5)
    threads(3)
    assert rnncore.get_num_threads() == 3
    assert rnncore.cpu_info()["num_threads"] == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_kernels_work_in_a_forked_child(threads, rng):
    threads(2)
    v = VARIANTS[0]
    args = make_args(v, 6, 8, 16, 64, np.float64, rng)
    want = forward(F, v, args, keep_cache=False)[0][0]  # the pool now exists
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        pid = os.fork()
    if pid == 0:  # child: the parent's workers do not exist here
        try:
            y = forward(F, v, args, keep_cache=False)[0][0]
            os.write(write_end, y.tobytes())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    np.testing.assert_array_equal(np.frombuffer(data).reshape(want.shape), want)


def rnncore_workers():
    """Thread ids of this process's rnncore pool workers (Linux)."""
    tids = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() == "rnncore-worker":
                    tids.append(int(tid))
        except OSError:  # a thread that has just ended
            pass
    return tids


@pytest.mark.skipif(not sys.platform.startswith("linux")
                    or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and two CPUs")
def test_workers_keep_off_the_callers_cpu(threads, rng):
    # A worker woken onto the caller's CPU would share it with the caller
    # for the whole call (pool.cpp): the workers may use every CPU they
    # started with but the caller's.
    threads(3)
    v = VARIANTS[0]
    args = make_args(v, 6, 8, 16, 64, np.float64, rng)
    want = forward(F, v, args, keep_cache=False)[0][0]  # the pool now exists
    workers = rnncore_workers()
    assert len(workers) >= 2
    allowed = os.sched_getaffinity(0)  # this (the calling) thread's CPUs
    try:
        for cpu in sorted(allowed)[:2]:
            os.sched_setaffinity(0, {cpu})
            y = forward(F, v, args, keep_cache=False)[0][0]
            np.testing.assert_array_equal(y, want)
            for tid in workers:
                assert os.sched_getaffinity(tid) == allowed - {cpu}
    finally:
        os.sched_setaffinity(0, allowed)


def test_inference_memory_does_not_grow_with_sequence_length():
    """keep_cache=False keeps O(B*H) beyond inputs and outputs: the input
    projection is computed a chunk of steps at a time, never for all T."""
    code = """
import resource, numpy as np
from rnncore import functional as F
T, B, I, H = 50000, 1, 64, 64
rng = np.random.default_rng(0)
x = rng.standard_normal((T, B, I)).astype(np.float32)
w = [rng.uniform(-0.1, 0.1, s).astype(np.float32) for s in ((4*H, I), (4*H, H), (4*H,), (4*H,))]
F.lstm_forward(x[:10], None, None, *w, keep_cache=False)   # warm up
y = np.empty((T, B, H), np.float32); y[:] = 0                # the output's pages
del y
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y, h, c, cache = F.lstm_forward(x, None, None, *w, keep_cache=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    grown = int(out.stdout.strip())
    # All-steps projection: T*B*4H floats = 51 MB.  Allow the output (12.8 MB,
    # already counted above) to be re-faulted plus a few MB of chunks.
    assert grown < 8 * 2**20, f"peak memory grew by {grown / 2**20:.1f} MiB"


@pytest.mark.parametrize("n", [1, 2])
def test_kernels_flush_subnormals_to_zero_unless_turned_off(n, threads):
    """FTZ/DAZ hold inside the kernels only: a subnormal input is 0 there
    (the default) or passes through (off), and NumPy keeps gradual underflow."""
    threads(n)
    tiny = np.float32(1e-39)
    assert 0 < tiny < np.finfo(np.float32).tiny  # subnormal
    T, B, H = 3, 16, 50  # enough work for every thread
    x = np.full((T, B, 1), tiny, np.float32)
    W_ih, W_hh = np.ones((H, 1), np.float32), np.zeros((H, H), np.float32)
    assert rnncore.get_flush_denormal() is True
    try:
        y = F.rnn_forward(x, None, W_ih, W_hh, nonlinearity="relu", keep_cache=False)[0]
        assert (y == 0).all()
        assert tiny * np.float32(1) == tiny  # the calling thread's mode was restored
        rnncore.set_flush_denormal(False)
        y = F.rnn_forward(x, None, W_ih, W_hh, nonlinearity="relu", keep_cache=False)[0]
        assert (y == tiny).all()
    finally:
        rnncore.set_flush_denormal(True)
    with pytest.raises(TypeError, match="on must be a bool"):
        rnncore.set_flush_denormal(1)
