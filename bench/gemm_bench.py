"""GEMM throughput of rnncore against NumPy's matmul (OpenBLAS), one thread.

The recurrent product of an RNN step, C [M, N] = A [M, K] W^T with
W [N, K] = W_hh [4H, H] (N = 4H, K = H, M = batch), through

- ``gemm``:   rnncore's gemm(N, T) as the cells call it (packs W every call);
- ``packed``: gemm_packed on W packed once (pack_b), as the time loop uses it;
- ``numpy``:  ``np.matmul(A, W.T, out=C)``.

rnncore repeats the product inside C++ (``repeat``), NumPy in a Python loop,
so NumPy's per-call overhead (~1 us) shows on the smallest shapes.  For
M = 1 the product is a GEMV that streams W once: the ``GB/s`` column is
K*N*itemsize / time, to compare with the memory (or cache) bandwidth.

Times are the calling thread's CPU time (both libraries run in it), medians
of interleaved rounds.  Run on one thread, without OPENBLAS_CORETYPE (it can select a slower
OpenBLAS kernel)::

    env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS=1 python bench/gemm_bench.py
    ... --isa avx2 --dtype float64

Not run by pytest.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread setting)

from rnncore import _core  # noqa: E402

HIDDEN = (64, 256, 512, 1024)
BATCH = (1, 16, 64, 256)


def calibrate(run, min_round):
    """Calls of run per round so that a round takes >= min_round seconds."""
    repeat = 1
    while True:
        t = time.thread_time()
        run(repeat)
        if time.thread_time() - t >= min_round:
            return repeat
        repeat *= 2


def seconds_per_call(runs, min_round=0.02, rounds=7):
    """{name: median seconds per call} of each run(repeat) in `runs`.

    Rounds of the contenders alternate, and time is the calling thread's CPU
    time: on a shared machine, load then hits every contender alike.
    """
    repeats = {name: calibrate(run, min_round) for name, run in runs.items()}
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            t = time.thread_time()
            run(repeats[name])
            times[name].append((time.thread_time() - t) / repeats[name])
    return {name: float(np.median(v)) for name, v in times.items()}


def numpy_loop(a, b_t, c):
    def run(repeat):
        for _ in range(repeat):
            np.matmul(a, b_t, out=c)
    return run


def check(got, want, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    scale = max(1.0, float(np.abs(want).max()))
    assert np.abs(got - want).max() <= tol * scale, "rnncore disagrees with numpy"


def bench_shape(rng, M, H, dtype):
    N, K = 4 * H, H
    a = rng.standard_normal((M, K)).astype(dtype)
    w = rng.standard_normal((N, K)).astype(dtype)
    c = np.empty((M, N), dtype)
    want = a @ w.T
    packed = _core._TestingPackedB("T", w)

    def gemm(repeat):
        _core._testing_gemm("N", "T", 1.0, a, w, 0.0, c, repeat=repeat)

    def gemm_packed(repeat):
        packed.matmul(1.0, a, 0.0, c, repeat=repeat)

    for run in (gemm, gemm_packed):
        run(1)
        check(c, want, dtype)
    times = seconds_per_call(
        {"gemm": gemm, "packed": gemm_packed, "numpy": numpy_loop(a, w.T, c)})
    return 2.0 * M * N * K, K * N * a.itemsize, times


def square(rng, n, dtype):
    """The machine's practical limit: an n^3 product, rnncore and NumPy."""
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)

    def gemm(repeat):
        _core._testing_gemm("N", "N", 1.0, a, b, 0.0, c, repeat=repeat)

    t = seconds_per_call({"gemm": gemm, "numpy": numpy_loop(a, b, c)})
    return 2.0 * n**3, t["gemm"], t["numpy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", default=None, help="kernel set (default: auto)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    if args.isa:
        _core._set_isa(args.isa)
    dtype = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")}
    print(f"rnncore isa={_core.cpu_info()['isa']} dtype={args.dtype} env={env}")
    if env["OPENBLAS_CORETYPE"]:
        print("warning: OPENBLAS_CORETYPE is set; NumPy may run a slower kernel")

    print("| H | M | gemm GFLOP/s | packed GFLOP/s | numpy GFLOP/s "
          "| packed/numpy | packed GB/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for H in HIDDEN:
        for M in BATCH:
            flops, nbytes, t = bench_shape(rng, M, H, dtype)
            g = {k: flops / v / 1e9 for k, v in t.items()}
            print(f"| {H} | {M} | {g['gemm']:.1f} | {g['packed']:.1f} "
                  f"| {g['numpy']:.1f} | {t['numpy'] / t['packed']:.2f} "
                  f"| {nbytes / t['packed'] / 1e9:.1f} |", flush=True)

    flops, ours, theirs = square(rng, 2048, dtype)
    print(f"\n2048^3 product: rnncore gemm {flops / ours / 1e9:.1f} GFLOP/s, "
          f"numpy {flops / theirs / 1e9:.1f} GFLOP/s, "
          f"ratio {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
