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

With ``--pack`` it measures the packing of a weight matrix W [4H, H] into
the panels of W^T (the transposing pack each call makes of W_ih and
W_hh), from cache (the same W every time) and from L3 (16 different
copies in turn), beside NumPy's copy of as many bytes (``np.copyto``), the
rate a pack could reach at best::

    python bench/gemm_bench.py --pack

With ``--sequence`` it measures instead the products over all T*B rows of
a sequence (R = T*B rows, GH = 4H gates, I = H inputs), as the cells run
them once per call: the forward's input projection ``xp = x W_ih^T`` (NT),
the backward's ``dx = dG W_ih`` (NN) and ``dW_ih = dG^T x`` (TN, K = R)::

    python bench/gemm_bench.py --sequence

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


def bench_sequence(rng, R, H, dtype):
    """GFLOP/s of the three products over all R = T*B rows, and NumPy's."""
    GH, I = 4 * H, H
    dG = rng.standard_normal((R, GH)).astype(dtype)
    w = rng.standard_normal((GH, I)).astype(dtype)
    x = rng.standard_normal((R, I)).astype(dtype)
    products = {  # name: (ta, tb, A, B, C)
        "NN dx": ("N", "N", dG, w, np.empty((R, I), dtype)),
        "TN dW": ("T", "N", dG, x, np.empty((GH, I), dtype)),
        "NT xp": ("N", "T", x, w, np.empty((R, GH), dtype)),
    }
    runs = {}
    for name, (ta, tb, a, b, c) in products.items():
        def ours(repeat, ta=ta, tb=tb, a=a, b=b, c=c):
            _core._testing_gemm(ta, tb, 1.0, a, b, 0.0, c, repeat=repeat)
        ours(1)
        check(c, (a if ta == "N" else a.T) @ (b if tb == "N" else b.T), dtype)
        runs[name] = ours
        runs[name + " numpy"] = numpy_loop(a if ta == "N" else a.T,
                                           b if tb == "N" else b.T, c)
    t = seconds_per_call(runs, rounds=5)
    return {name: 2.0 * R * GH * I / v / 1e9 for name, v in t.items()}


def main_pack(rng, dtype):
    """Packing W [4H, H] (transposed) per call: GiB/s of W, and NumPy's copy."""
    print("| H | W MiB | pack, in cache GiB/s | pack, from L3 GiB/s "
          "| numpy copy, from L3 GiB/s |")
    print("|---:|---:|---:|---:|---:|")
    for H in (128, 256, 512, 1024):
        copies = [rng.standard_normal((4 * H, H)).astype(dtype) for _ in range(16)]
        out = np.empty_like(copies[0])
        nbytes = copies[0].nbytes

        def pack(arrays):
            def run(repeat):
                for _ in range(repeat):
                    for w in arrays:
                        _core._TestingPackedB("T", w)
            return run

        def copy(repeat):
            for _ in range(repeat):
                for w in copies:
                    np.copyto(out, w)

        t = seconds_per_call({"hot": pack([copies[0]] * 16),
                              "cold": pack(copies), "copy": copy})
        rate = {k: 16 * nbytes / v / 2**30 for k, v in t.items()}
        print(f"| {H} | {nbytes / 2**20:.2f} | {rate['hot']:.1f} | {rate['cold']:.1f} "
              f"| {rate['copy']:.1f} |", flush=True)


def main_sequence(rng, dtype):
    print("| H | R | NN dx | TN dW | NT xp | numpy NN | numpy TN | numpy NT |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for H in (256, 512, 1024):
        for R in (1000, 3200, 12800):
            g = bench_sequence(rng, R, H, dtype)
            names = ("NN dx", "TN dW", "NT xp")
            print(f"| {H} | {R} | "
                  + " | ".join(f"{g[n]:.1f}" for n in names) + " | "
                  + " | ".join(f"{g[n + ' numpy']:.1f}" for n in names) + " |",
                  flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", default=None, help="kernel set (default: auto)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--sequence", action="store_true",
                        help="the products over all T*B rows (see above)")
    parser.add_argument("--pack", action="store_true",
                        help="the transposing pack of W per call (see above)")
    args = parser.parse_args()
    if args.isa:
        _core._set_isa(args.isa)
    dtype = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")}
    print(f"rnncore isa={_core.cpu_info()['isa']} dtype={args.dtype} env={env}")
    if env["OPENBLAS_CORETYPE"]:
        print("warning: OPENBLAS_CORETYPE is set; NumPy may run a slower kernel")
    if args.sequence:
        return main_sequence(rng, dtype)
    if args.pack:
        return main_pack(rng, dtype)

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
