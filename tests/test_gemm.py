"""The GEMM engine against a float64 NumPy product, under every ISA.

Every kernel set the CPU supports (``_core._available_isas()``) is switched
in with ``_core._set_isa`` for the test and restored afterwards.  Shapes sit
on and around the micro-tile (MR x NR) and the cache blocks (KC, NC);
``beta == 0`` runs on a NaN-filled C, which must not leak into the result.

Threshold: every entry of the result must be within ``(K + 2) * eps`` of
``|alpha| |op(A)| |op(B)| + |beta| |C|`` (the forward error bound of a dot
product of length K, per dtype: eps of float32 or float64) of the exact
product.  A wrong, missing or doubled term is far larger than that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import rnncore
from rnncore import _core

ISAS = _core._available_isas()
DTYPES = [np.float32, np.float64]
TRANS = [("N", "N"), ("N", "T"), ("T", "N"), ("T", "T")]
BETAS = [0.0, 1.0, 0.5]


@pytest.fixture(params=ISAS)
def isa(request):
    before = rnncore.cpu_info()["isa"]
    _core._set_isa(request.param)
    yield request.param
    _core._set_isa(before)


def tile(isa, dtype):
    """(MR, NR) of the ISA's micro-kernel for dtype."""
    return _core._testing_ukernel_shapes(isa)[np.dtype(dtype).name][:2]


def narrow_width(isa, dtype):
    """The panel width of the ISA's narrow tile for dtype."""
    return _core._testing_ukernel_shapes(isa)[np.dtype(dtype).name][2]


def strided(rng, rows, cols, dtype, pad=3):
    """A [rows, cols] view whose row stride exceeds its width by `pad`."""
    full = rng.standard_normal((rows, cols + pad)).astype(dtype)
    return full[:, :cols]


def c_start(rng, M, N, dtype, beta):
    """Initial C, with ldc > N; NaN everywhere when beta == 0."""
    c = strided(rng, M, N, dtype, pad=5)
    if beta == 0.0:
        c[...] = np.nan
    return c


def assert_product(got, alpha, a, b, beta, c0, what):
    """got == alpha a b + beta c0 within the dtype's forward error bound."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    c64 = np.zeros_like(got, np.float64) if beta == 0.0 else c0.astype(np.float64)
    want = alpha * (a64 @ b64) + beta * c64
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + abs(beta) * np.abs(c64)
    eps = np.finfo(got.dtype).eps
    bound = (a.shape[1] + 2) * eps * scale + np.finfo(got.dtype).tiny
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(np.isfinite(got)), f"{what}: non-finite result"
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
    assert np.all(err <= bound), (
        f"{what}: error {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"
    )


def run_gemm(rng, ta, tb, M, N, K, alpha, beta, dtype):
    a = strided(rng, *((M, K) if ta == "N" else (K, M)), dtype)
    b = strided(rng, *((K, N) if tb == "N" else (N, K)), dtype)
    c = c_start(rng, M, N, dtype, beta)
    c0 = c.copy()
    _core._testing_gemm(ta, tb, alpha, a, b, beta, c)
    op_a = a if ta == "N" else a.T
    op_b = b if tb == "N" else b.T
    what = f"gemm {ta}{tb} M={M} N={N} K={K} alpha={alpha} beta={beta}"
    assert_product(c, alpha, op_a, op_b, beta, c0, what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("beta", BETAS)
def test_gemm_edge_shapes(isa, dtype, ta, tb, beta, rng):
    mr, nr = tile(isa, dtype)
    ms = sorted({0, 1, mr - 1, mr, mr + 1, 3 * mr + 2})
    ns = sorted({0, 1, nr - 1, nr, nr + 1, 2 * nr + 3})
    ks = [0, 1, 2, 7, 33]
    for M in ms:
        for N in ns:
            for K in ks:
                run_gemm(rng, ta, tb, M, N, K, -0.75, beta, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
def test_gemm_crosses_cache_blocks(isa, dtype, ta, tb, rng):
    # K > KC and N > NC for every ISA and dtype (at K = 1100: KC <= 552,
    # NC <= 448), with ragged remainders.
    run_gemm(rng, ta, tb, 31, 470, 1100, 1.25, 0.5, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_slabs_cross_column_and_k_blocks(isa, dtype, ta, tb, beta, rng):
    # A transposed, or with rows too long to be read in place (1100 values)
    # and more than one column block, runs K blocks outermost, slabs of MC
    # rows of op(A) inside, and the B panels of all the column blocks of a
    # K block packed once (gemm.cpp): M > MC (<= 224 for every ISA and
    # dtype), N > NC, K > KC; 470 rows leave a short last tile of 2 rows
    # for MR = 4 and 6.
    run_gemm(rng, ta, tb, 470, 950, 1100, -0.5, beta, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_rnn_shapes(isa, dtype, rng):
    H = 40
    for M in (1, 3, 16, 64):
        run_gemm(rng, "N", "T", M, 4 * H, H, 1.0, 0.0, dtype)  # h W_hh^T
        run_gemm(rng, "N", "N", M, H, 4 * H, 1.0, 1.0, dtype)  # dG W_hh
    run_gemm(rng, "T", "N", 4 * H, 24, 70, 1.0, 0.0, dtype)  # dG^T x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
def test_gemm_rounding_does_not_depend_on_the_split(isa, dtype, ta, tb, rng):
    # The cells split a product among threads by columns (any range) or by
    # rows at whole micro-tiles, the short remainder on the last share, and
    # rely on every element being summed in the same order for a given M, K
    # and ISA.  M crosses the slabs of a transposed A, K the K blocks.
    mr, _ = tile(isa, dtype)
    M, N, K = 260, 75, 1100
    a = strided(rng, *((M, K) if ta == "N" else (K, M)), dtype)
    b = strided(rng, *((K, N) if tb == "N" else (N, K)), dtype)
    c0 = c_start(rng, M, N, dtype, 0.5)
    whole = c0.copy()
    _core._testing_gemm(ta, tb, 0.75, a, b, 0.5, whole)

    def rows(r0, r1):
        return a[r0:r1] if ta == "N" else a[:, r0:r1]

    def cols(j0, j1):
        return b[:, j0:j1] if tb == "N" else b[j0:j1]

    for j0, j1 in [(0, 1), (0, 33), (5, 75), (32, 64), (74, 75)]:
        part = c0[:, j0:j1].copy()
        _core._testing_gemm(ta, tb, 0.75, a, cols(j0, j1), 0.5, part)
        np.testing.assert_array_equal(part, whole[:, j0:j1], f"columns {j0}:{j1}")
    for cuts in [(mr,), (3 * mr, 7 * mr), ((M // mr - 1) * mr,)]:
        bounds = (0, *cuts, M)
        for r0, r1 in zip(bounds, bounds[1:]):
            part = c0[r0:r1].copy()
            _core._testing_gemm(ta, tb, 0.75, rows(r0, r1), b, 0.5, part)
            np.testing.assert_array_equal(part, whole[r0:r1], f"rows {r0}:{r1}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_alpha_zero_reads_neither_a_nor_b(isa, dtype, rng):
    a = np.full((5, 4), np.nan, dtype)
    b = np.full((4, 6), np.nan, dtype)
    c = rng.standard_normal((5, 6)).astype(dtype)
    want = 0.5 * c
    _core._testing_gemm("N", "N", 0.0, a, b, 0.5, c)
    np.testing.assert_array_equal(c, want)
    _core._testing_gemm("N", "N", 0.0, a, b, 0.0, c)
    np.testing.assert_array_equal(c, np.zeros_like(c))


def b_panel(rng, k, nr, n, dtype):
    """A packed B panel [k, NR]: n random columns, NaN padding after."""
    p = np.full((k, nr), np.nan, dtype)
    p[:, :n] = rng.standard_normal((k, n))
    return p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("k", [0, 1, 5, 64])
def test_ukernel_edge_tiles(isa, dtype, beta, k, rng):
    # The padding of the B panel is NaN: it may be read but must never reach
    # C; C has a sentinel border that must stay untouched.
    mr, nr = tile(isa, dtype)
    for m in sorted({1, 2, mr - 1, mr}):
        for n in (0, 1, nr - 1, nr):
            a = rng.standard_normal((k, m)).astype(dtype)
            b = b_panel(rng, k, nr, n, dtype)
            full = rng.standard_normal((mr + 2, nr + 7)).astype(dtype)
            if beta == 0.0:
                full[:m, :n] = np.nan
            before = full.copy()
            _core._testing_ukernel(isa, m, n, 1.5, a, b, beta, full)
            what = f"ukernel m={m} n={n} k={k} beta={beta}"
            assert_product(full[:m, :n], 1.5, a.T, b[:, :n], beta,
                           before[:m, :n], what)
            outside = np.ones(full.shape, bool)
            outside[:m, :n] = False
            np.testing.assert_array_equal(full[outside], before[outside], what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("k", [0, 1, 5, 64])
def test_ukernel_rows_edge_tiles_narrow_and_wide(isa, dtype, beta, k, rng):
    # The kernels that read the rows of A in place (strided rows), on a
    # panel NR wide and on one of the narrow tile's width: each checked
    # against NumPy with NaN padding and a sentinel border, and the narrow
    # one against the wide one bit for bit (the same sums for every
    # element: a product may take either).
    mr, nr = tile(isa, dtype)
    w = narrow_width(isa, dtype)
    assert 1 <= w <= nr and nr % w == 0
    for m in sorted({1, 2, 3, 4, mr - 1, mr}):
        for n in sorted({0, 1, w - 1, w}):
            a = strided(rng, m, k, dtype, pad=5)
            b = b_panel(rng, k, w, n, dtype)
            wide = np.full((k, nr), np.nan, dtype)
            wide[:, :n] = b[:, :n]
            got = {}
            for narrow, panel in ((True, b), (False, wide)):
                full = rng.standard_normal((mr + 2, nr + 7)).astype(dtype)
                if beta == 0.0:
                    full[:m, :n] = np.nan
                else:
                    full[:m, :n] = got.get("c0", full[:m, :n])
                got["c0"] = full[:m, :n].copy()
                before = full.copy()
                _core._testing_ukernel_rows(isa, narrow, m, n, 1.5, a, panel,
                                            beta, full)
                what = f"ukernel_rows narrow={narrow} m={m} n={n} k={k} beta={beta}"
                assert_product(full[:m, :n], 1.5, a, b[:, :n], beta,
                               before[:m, :n], what)
                outside = np.ones(full.shape, bool)
                outside[:m, :n] = False
                np.testing.assert_array_equal(full[outside], before[outside], what)
                got[narrow] = full[:m, :n].copy()
            np.testing.assert_array_equal(got[True], got[False], f"m={m} n={n} k={k}")


def test_ukernel_rows_rejects_a_panel_of_the_wrong_width(isa, rng):
    mr, nr = tile(isa, np.float32)
    w = narrow_width(isa, np.float32)
    a = rng.standard_normal((2, 8)).astype(np.float32)
    c = np.zeros((2, nr), np.float32)
    with pytest.raises(ValueError, match="panel"):
        _core._testing_ukernel_rows(isa, True, 2, 1, 1.0, a,
                                    np.zeros((8, nr * 2), np.float32), 0.0, c)
    with pytest.raises(ValueError, match="panel width"):
        _core._testing_ukernel_rows(isa, True, 2, w + 1, 1.0, a,
                                    np.zeros((8, w), np.float32), 0.0, c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tb", ["N", "T"])
@pytest.mark.parametrize("beta", BETAS)
def test_gemm_packed_column_ranges(isa, dtype, tb, beta, rng):
    mr, nr = tile(isa, dtype)
    K = 37
    for N in (1, 3 * nr + 5):
        b = strided(rng, *((K, N) if tb == "N" else (N, K)), dtype)
        op_b = b if tb == "N" else b.T
        packed = _core._TestingPackedB(tb, b)
        assert packed.shape == (K, N) and packed.panel_width == nr
        ranges = {(0, N), (0, 0)}
        for s in range(0, N, nr):
            ranges |= {(s, s), (s, N), (s, min(N, s + nr)), (s, min(N, s + 3))}
        for M in (1, 2, mr + 1, 40):
            a = strided(rng, M, K, dtype)
            for n0, n1 in sorted(ranges):
                c = c_start(rng, M, N, dtype, 1.0)
                if beta == 0.0:
                    c[:, n0:n1] = np.nan
                c0 = c.copy()
                packed.matmul(0.5, a, beta, c, n0, n1)
                what = f"gemm_packed {tb} M={M} N={N} [{n0}, {n1}) beta={beta}"
                assert_product(c[:, n0:n1], 0.5, a, op_b[:, n0:n1], beta,
                               c0[:, n0:n1], what)
                np.testing.assert_array_equal(c[:, :n0], c0[:, :n0], what)
                np.testing.assert_array_equal(c[:, n1:], c0[:, n1:], what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_packed_large_and_reused(isa, dtype, rng):
    # K > KC, N > NC; the same packed B serves many A (time steps).
    K, N = 1100, 470
    b = rng.standard_normal((N, K)).astype(dtype)
    packed = _core._TestingPackedB("T", b)
    for M in (1, 16, 45):
        a = rng.standard_normal((M, K)).astype(dtype)
        c = np.full((M, N), np.nan, dtype)
        packed.matmul(1.0, a, 0.0, c)
        assert_product(c, 1.0, a, b.T, 0.0, None, f"gemm_packed M={M}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [512, 1024, 2048])
def test_gemm_packed_padded_panels(isa, dtype, K, rng):
    # K * NR values a multiple of 64 KiB (K a multiple of 512 for every
    # AVX-512 panel, 1024 for AVX2 float32): the panels are padded apart
    # (gemm.cpp panel_stride); K = 2048 is cut into equal K blocks.  N spans
    # two column blocks with a ragged last panel; both walk directions.
    N = 600
    b = rng.standard_normal((N, K)).astype(dtype)
    packed = _core._TestingPackedB("T", b)
    for M in (1, 16, 45):
        a = rng.standard_normal((M, K)).astype(dtype)
        for reverse in (False, True):
            c = np.full((M, N), np.nan, dtype)
            packed.matmul(1.0, a, 0.0, c, repeat=2 if reverse else 1, alternate=reverse)
            assert_product(c, 1.0, a, b.T, 0.0, None, f"padded panels K={K} M={M}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_gemm_packed_reverse_gives_the_same_bits(isa, dtype, beta, rng):
    # The time loops walk W's panels backwards on odd steps (cache reuse);
    # the column blocks (N > NC), the K blocks (K > KC) and the row tiles
    # (balanced heights) must not change a single bit of the result.
    mr, nr = tile(isa, dtype)
    for K, N in ((37, 3 * nr + 5), (1100, 470)):
        b = rng.standard_normal((N, K)).astype(dtype)
        packed = _core._TestingPackedB("T", b)
        for M in (1, 2, 3, mr - 1, mr, mr + 2, 2 * mr + 3):
            a = strided(rng, M, K, dtype)
            c0 = c_start(rng, M, N, dtype, beta)
            forwards, alternating = c0.copy(), c0.copy()
            packed.matmul(0.5, a, beta, forwards, repeat=2)
            packed.matmul(0.5, a, beta, alternating, repeat=2, alternate=True)
            what = f"M={M} K={K} N={N}"
            np.testing.assert_array_equal(alternating, forwards, what)
            if beta == 0.0:
                assert_product(alternating, 0.5, a, b.T, 0.0, None, what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_gemm_packed_one_row_gives_the_bits_of_gemm(isa, dtype, beta, rng):
    # One row of A with K in one K block goes straight to the micro-kernel,
    # panel by panel (gemm.cpp gemm_packed): the same bits as gemm, which
    # packs B for the call and runs the blocked loops; column ranges and
    # both walk directions.
    mr, nr = tile(isa, dtype)
    for K in (1, 37, 300, 1024):
        N = 470
        b = rng.standard_normal((N, K)).astype(dtype)
        a = strided(rng, 1, K, dtype)
        packed = _core._TestingPackedB("T", b)
        c0 = c_start(rng, 1, N, dtype, beta)
        want = c0.copy()
        _core._testing_gemm("N", "T", 0.5, a, b, beta, want)
        for n0, n1 in ((0, N), (nr, N), (0, 3 * nr + 1)):
            for alternate in (False, True):
                c = c0.copy()
                packed.matmul(0.5, a, beta, c, n0, n1, repeat=2 if alternate else 1,
                              alternate=alternate)
                what = f"K={K} [{n0}, {n1}) alternate={alternate}"
                if beta == 0.0 or not alternate:
                    np.testing.assert_array_equal(c[:, n0:n1], want[:, n0:n1], what)
                np.testing.assert_array_equal(c[:, :n0], c0[:, :n0], what)
                np.testing.assert_array_equal(c[:, n1:], c0[:, n1:], what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_gemm_packed_whole_a_gives_the_same_bits(isa, dtype, beta, rng):
    # Given room (whole_a), gemm_packed packs rows too long to be read in
    # place once for every column block instead of once per block: the same
    # bits, for every tile height, K across K blocks, N across column blocks
    # (ragged), column ranges and both walk directions.  K = 300 (float32,
    # 1200 bytes) is read in place unless the row stride is wide.
    mr, nr = tile(isa, dtype)
    for K, N, wide in ((1100, 950, 0), (300, 950, 4096), (37, 950, 4096)):
        b = rng.standard_normal((N, K)).astype(dtype)
        packed = _core._TestingPackedB("T", b)
        for M in (1, 3, mr - 1, mr + 2, 3 * mr + 1):
            a = strided(rng, M, K, dtype, pad=max(3, wide // np.dtype(dtype).itemsize - K))
            for n0, n1 in ((0, N), (2 * nr, N - 5)):
                c0 = c_start(rng, M, N, dtype, beta)
                per_block, once = c0.copy(), c0.copy()
                packed.matmul(0.5, a, beta, per_block, n0, n1, repeat=2, alternate=True)
                packed.matmul(0.5, a, beta, once, n0, n1, repeat=2, alternate=True,
                              whole_a=True)
                what = f"M={M} K={K} N={N} [{n0}, {n1})"
                np.testing.assert_array_equal(once, per_block, what)
                if beta == 0.0:
                    assert_product(once[:, n0:n1], 0.5, a, b.T[:, n0:n1], 0.0, None, what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_read_in_place_or_packed_give_the_same_bits(isa, dtype, rng):
    # Short rows of A (<= 2 KiB) go to the micro-kernel in place, longer
    # ones through a packed Ã: the same A with a wide row stride must give
    # the same bits, for every tile height and for K across the K blocks.
    mr, nr = tile(isa, dtype)
    wide = 4096 // np.dtype(dtype).itemsize  # a row stride of 4 KiB: packed
    for K in (1, 37, 200):
        b = rng.standard_normal((3 * nr + 5, K)).astype(dtype)
        packed = _core._TestingPackedB("T", b)
        for M in (1, 2, 3, 5, mr, mr + 1, 2 * mr + 3):
            a = rng.standard_normal((M, K)).astype(dtype)
            far = np.zeros((M, wide), dtype)
            far[:, :K] = a
            for beta in (0.0, 0.5):
                c0 = c_start(rng, M, b.shape[0], dtype, beta)
                near_c, far_c = c0.copy(), c0.copy()
                packed.matmul(0.5, a, beta, near_c)
                packed.matmul(0.5, far[:, :K], beta, far_c)
                np.testing.assert_array_equal(near_c, far_c, f"M={M} K={K}")
                if beta == 0.0:
                    assert_product(near_c, 0.5, a, b.T, 0.0, None, f"M={M} K={K}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_a_is_read_correctly(isa, dtype, rng):
    # A NumPy array need not be aligned to its type: such an A must not go
    # to the in-place micro-kernel (a scalar load of a misaligned value is
    # undefined behaviour, which the UBSan run of this file would report).
    M, K = 5, 24
    raw = np.zeros(M * K * np.dtype(dtype).itemsize + 1, np.uint8)
    a = raw[1:].view(dtype).reshape(M, K)
    assert a.ctypes.data % np.dtype(dtype).itemsize != 0
    a[...] = rng.standard_normal((M, K))
    b = rng.standard_normal((K, 40)).astype(dtype)
    c = np.full((M, 40), np.nan, dtype)
    _core._testing_gemm("N", "N", 1.0, a, b, 0.0, c)
    assert_product(c, 1.0, a, b, 0.0, None, "misaligned A, gemm")
    packed = _core._TestingPackedB("N", b)
    c2 = np.full((M, 40), np.nan, dtype)
    packed.matmul(1.0, a, 0.0, c2)
    assert_product(c2, 1.0, a, b, 0.0, None, "misaligned A, gemm_packed")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [1, 5, 8, 16, 17, 33, 64])
@pytest.mark.parametrize("K", [0, 1, 7, 16, 31, 256, 300])
def test_gemv_t_edge_shapes(isa, dtype, rows, K, rng):
    # The batch-1 product straight from a row-major W (row stride > K):
    # partial row blocks, K not a multiple of the vector width, K = 0.
    W = strided(rng, rows, K, dtype)
    x = rng.standard_normal(K).astype(dtype)
    y = np.full(rows, np.nan, dtype)  # overwritten, never read
    _core._testing_gemv_t(W, x, y)
    assert_product(y[:, None], 1.0, W, x[:, None], 0.0, None, f"gemv {rows}x{K}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [0, 1, 2, 7, 64])
@pytest.mark.parametrize("cols", [1, 5, 16, 33, 64, 100, 300])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemv_n_edge_shapes(isa, dtype, rows, cols, beta, rng):
    # The backward's batch-1 product y = beta y + a W, W read in place:
    # odd row counts (two chains), partial column blocks, rows = 0.
    W = strided(rng, rows, cols, dtype)
    a = rng.standard_normal(rows).astype(dtype)
    y0 = rng.standard_normal(cols).astype(dtype)
    y = np.full(cols, np.nan, dtype) if beta == 0.0 else y0.copy()
    _core._testing_gemv_n(W, a, beta, y)
    assert_product(y[None, :], 1.0, a[None, :], W, beta, y0[None, :], f"gemv_n {rows}x{cols}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["gemv_t", "gemv_n"])
def test_gemv_shares_get_the_bits_of_the_whole(isa, dtype, kind, rng):
    # Threads take shares of the outputs (rows of W for gemv_t, columns for
    # gemv_n; any start, any count) and the forward loops alternate
    # gemv_t's `reverse`: every output must come out with the same bits.
    W = strided(rng, 70, 203, dtype)
    v = rng.standard_normal(W.shape[1] if kind == "gemv_t" else W.shape[0]).astype(dtype)

    def product(part, reverse=False):
        out = np.empty(part.shape[0] if kind == "gemv_t" else part.shape[1], dtype)
        if kind == "gemv_t":
            _core._testing_gemv_t(part, v, out, reverse=reverse)
        else:
            _core._testing_gemv_n(part, v, 0.0, out)
        return out

    whole = product(W)
    np.testing.assert_array_equal(product(W, reverse=True), whole)
    for a0, a1 in [(0, 16), (3, 9), (16, 70), (17, 69), (64, 70), (5, 6)]:
        part = W[a0:a1] if kind == "gemv_t" else W[:, a0:a1]
        np.testing.assert_array_equal(product(part), whole[a0:a1], err_msg=f"{a0}:{a1}")


def test_gemm_packed_rejects_bad_column_ranges(isa):
    packed = _core._TestingPackedB("N", np.ones((4, 40), np.float32))
    pw = packed.panel_width
    a = np.ones((2, 4), np.float32)
    c = np.zeros((2, 40), np.float32)
    for n0, n1 in [(1, 40), (0, 41), (pw, pw - 1), (-pw, 4)]:
        with pytest.raises(ValueError, match="multiple of the panel width"):
            packed.matmul(1.0, a, 0.0, c, n0, n1)


def test_packed_b_keeps_the_isa_it_was_packed_for(rng):
    b = rng.standard_normal((30, 50)).astype(np.float32)
    a = rng.standard_normal((7, 30)).astype(np.float32)
    before = rnncore.cpu_info()["isa"]
    try:
        for packed_isa in ISAS:
            _core._set_isa(packed_isa)
            packed = _core._TestingPackedB("N", b)
            for used_isa in ISAS:
                _core._set_isa(used_isa)
                c = np.empty((7, 50), np.float32)
                packed.matmul(1.0, a, 0.0, c)
                assert_product(c, 1.0, a, b, 0.0, None,
                               f"packed {packed_isa}, used {used_isa}")
    finally:
        _core._set_isa(before)


def test_concurrent_products_are_independent(isa, rng):
    # The GIL is released around the products; per-thread packing buffers
    # keep two simultaneous products apart.
    jobs = []
    for t in range(4):
        a = rng.standard_normal((60 + t, 300)).astype(np.float32)
        b = rng.standard_normal((500 + 7 * t, 300)).astype(np.float32)
        jobs.append((a, b, np.empty((a.shape[0], b.shape[0]), np.float32)))

    def work(a, b, c):
        for _ in range(5):
            _core._testing_gemm("N", "T", 1.0, a, b, 0.0, c)

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, b, c in jobs:
        assert_product(c, 1.0, a, b.T, 0.0, None, "concurrent")


def test_available_isas_and_set_isa():
    assert ISAS[-1] == "reference" and len(set(ISAS)) == len(ISAS)
    assert set(ISAS) <= {"avx512", "avx2", "reference"}
    before = rnncore.cpu_info()["isa"]
    assert before in ISAS
    try:
        for name in ISAS:
            _core._set_isa(name)
            assert rnncore.cpu_info()["isa"] == name
        with pytest.raises(ValueError, match="unknown instruction set"):
            _core._set_isa("avx9000")
        assert rnncore.cpu_info()["isa"] == ISAS[-1]
    finally:
        _core._set_isa(before)


def import_with_forced_isa(value):
    env = dict(os.environ, RNNCORE_FORCE_ISA=value)
    code = "import rnncore; print(rnncore.cpu_info()['isa'])"
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True)


@pytest.mark.parametrize("name", ISAS)
def test_force_isa_environment_variable(name):
    run = import_with_forced_isa(name)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == name


def test_force_isa_unknown_fails_the_import():
    run = import_with_forced_isa("sse9")
    assert run.returncode != 0
    assert "ImportError" in run.stderr
    assert "RNNCORE_FORCE_ISA='sse9'" in run.stderr
    assert "unknown instruction set" in run.stderr


@pytest.mark.skipif("avx512" in ISAS, reason="this CPU has every ISA")
def test_force_isa_missing_from_cpu_fails_the_import():
    run = import_with_forced_isa("avx512")
    assert run.returncode != 0
    assert "this CPU lacks the instruction set" in run.stderr


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_swapped_product_gives_the_bits_of_the_packed_one(isa, dtype, beta, rng):
    # gemm(N, T) with few rows of A and B's rows short enough to read in
    # place computes C^T = B A^T (no packing of B): the same bits as the
    # product on B packed (gemm_packed), with strided A and C, K across K
    # blocks, N ragged; beta == 0 on a NaN-filled C; C contiguous (C^T
    # is transposed straight into it) and strided.  Rows of A are taken as
    # panels NR wide, narrow ones (the narrow tile) or both (M = 48: 32 +
    # 16).  The sizes around the path's bounds (rows 4..64 for K >= 256,
    # 12..64 for K in [64, 256), M < N) are checked to take it or not, so
    # the comparison cannot pass on the usual path alone.
    K_in_place = 512 if dtype == np.float32 else 256  # rows of 2 KiB
    swapped = 0
    for M, N, K, contiguous in (
            (16, 100, 256, False), (64, 1030, K_in_place, True),
            (33, 200, 300, False), (40, 41, 256, True), (15, 300, 256, True),
            (65, 300, 256, False), (30, 30, 256, False), (20, 300, 255, True),
            (20, 300, 600, False), (4, 50, 256, True), (3, 50, 256, False),
            (7, 300, 300, False), (48, 200, 256, True), (12, 200, 128, True),
            (11, 200, 128, False), (24, 100, 64, False), (16, 100, 63, True),
            (8, 9, 256, False), (56, 300, 256, True)):
        b = rng.standard_normal((N, K)).astype(dtype)
        takes = _core._testing_reads_b_in_place(M, b)
        in_place = K * np.dtype(dtype).itemsize <= 2048
        min_rows = 4 if K >= 256 else 12
        # ... and the usual path's row tiles (near-equal, at most MR rows)
        # of 4 rows or more: below, a tile splits its sums.
        mr = tile(isa, dtype)[0]
        smallest_tile = M // -(-M // mr)
        assert takes == (min_rows <= M <= 64 and M < N and K >= 64
                         and in_place and smallest_tile >= 4), (M, N, K)
        swapped += takes
        a = strided(rng, M, K, dtype)
        c0 = c_start(rng, M, N, dtype, beta)
        if contiguous:
            c0 = np.ascontiguousarray(c0)
        got = c0.copy()
        _core._testing_gemm("N", "T", 0.75, a, b, beta, got)
        assert_product(got, 0.75, a, b.T, beta, c0, f"M={M} N={N} K={K}")
        if takes:
            # The product on B packed (the time loops'), and gemm's usual
            # path (B's rows 4 KiB apart: not read in place) with A's rows
            # read in place as the swap needs B's (a packed A over several
            # column blocks goes by slabs, whose last tile may be short).
            packed, usual = c0.copy(), c0.copy()
            _core._TestingPackedB("T", b).matmul(0.75, a, beta, packed)
            far = np.zeros((N, 4096 // np.dtype(dtype).itemsize), dtype)
            far[:, :K] = b
            assert not _core._testing_reads_b_in_place(M, far[:, :K])
            a_in_place = np.ascontiguousarray(a)
            _core._testing_gemm("N", "T", 0.75, a_in_place, far[:, :K], beta, usual)
            np.testing.assert_array_equal(got, packed, f"M={M} N={N} K={K}")
            np.testing.assert_array_equal(got, usual, f"M={M} N={N} K={K}")
    assert swapped >= 10


@pytest.mark.parametrize("dtype", DTYPES)
def test_swapped_product_with_a_strided_b(isa, dtype, rng):
    # B's rows in place need only a unit column stride: a row stride wider
    # than K (up to 2 KiB) still goes the swapped way; a wider one does not.
    K, N, M = 256, 300, 24
    for pad in (3, 2048 // np.dtype(dtype).itemsize):
        b = strided(rng, N, K, dtype, pad=pad)
        assert _core._testing_reads_b_in_place(M, b) == (
            (K + pad) * np.dtype(dtype).itemsize <= 2048)
        a = rng.standard_normal((M, K)).astype(dtype)
        c = c_start(rng, M, N, dtype, 0.0)
        _core._testing_gemm("N", "T", 1.0, a, b, 0.0, c)
        assert_product(c, 1.0, a, b.T, 0.0, None, f"pad={pad}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_sum_alike_whatever_the_height_of_the_product(isa, dtype, rng):
    # From 4 rows of A on, a product is cut into the same K blocks whatever
    # its number of rows, so a row of C gets the same bits in a product of 4
    # rows (a one-step call at batch 4) as in one of 40 (the chunks of a
    # longer call): packed, through gemm's usual path, and swapped.  K spans
    # several blocks for every ISA (KC <= 1024).  (So do the row tiles, but
    # for a product whose near-equal tiles go below 4 rows: AVX2's MR = 6
    # cuts M = 7 into 4 + 3, and a 3-row tile splits its sums.)
    K, N = 1100, 90
    mr = tile(isa, dtype)[0]
    a = rng.standard_normal((40, K)).astype(dtype)
    b = rng.standard_normal((N, K)).astype(dtype)
    packed = _core._TestingPackedB("T", b)
    full = np.zeros((40, N), dtype)
    packed.matmul(1.0, a, 0.0, full)
    for M in (4, 5, 7, 13, 14, 15, 40):
        if M // -(-M // mr) < 4:
            continue
        got = np.zeros((M, N), dtype)
        packed.matmul(1.0, a[:M], 0.0, got)
        np.testing.assert_array_equal(got, full[:M], f"packed M={M}")
        usual = np.zeros((M, N), dtype)
        _core._testing_gemm("N", "N", 1.0, a[:M], np.ascontiguousarray(b.T), 0.0, usual)
        np.testing.assert_array_equal(usual, full[:M], f"gemm NN M={M}")
    short = 256 if dtype == np.float64 else 512  # rows of 2 KiB: swapped
    bs = np.ascontiguousarray(b[:, :short])
    ref = np.zeros((40, N), dtype)
    _core._TestingPackedB("T", bs).matmul(1.0, a[:, :short], 0.0, ref)
    for M in (4, 8, 16):
        got = np.zeros((M, N), dtype)
        _core._testing_gemm("N", "T", 1.0, np.ascontiguousarray(a[:M, :short]), bs, 0.0, got)
        assert _core._testing_reads_b_in_place(M, bs)
        np.testing.assert_array_equal(got, ref[:M], f"swapped M={M}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_a_product_gives_the_bits_of_a_not_transposed(isa, dtype, rng):
    # gemm(T, N) with beta == 0 and A's columns at least twice B's computes
    # C^T = B^T A and transposes it (the backward's dW = dG^T x): the same
    # bits as gemm(N, N) on a copy of A^T, whose tiles all keep one chain
    # per element -- as long as every tile of both sides has 4 rows or
    # more, which the swap checks.  A transposed A goes by slabs of MR-row
    # tiles, the last X % MR rows: with 1-3 (225 rows, MR 14; 512, MR 6)
    # that tile splits its sums, swapped or not, and only the product is
    # checked.  Strided and contiguous C, K across K blocks.
    mr = tile(isa, dtype)[0]

    def whole(rows):
        return rows >= 4 and (rows % mr == 0 or rows % mr >= 4)

    for M, N, K in ((512, 128, 300), (200, 50, 37), (225, 100, 50),
                    (100, 100, 64), (60, 7, 30), (28, 4, 5), (64, 30, 1000),
                    (1000, 200, 20), (96, 48, 1)):
        a = strided(rng, K, M, dtype)
        b = strided(rng, K, N, dtype)
        for contiguous in (False, True):
            c = c_start(rng, M, N, dtype, 0.0)
            if contiguous:
                c = np.ascontiguousarray(c)
            _core._testing_gemm("T", "N", 0.75, a, b, 0.0, c)
            assert_product(c, 0.75, a.T, b, 0.0, None, f"TN M={M} N={N} K={K}")
            if not (whole(M) and whole(N)):
                continue
            want = np.full((M, N), np.nan, dtype)
            _core._testing_gemm("N", "N", 0.75, np.ascontiguousarray(a.T), b, 0.0, want)
            np.testing.assert_array_equal(c, want, f"TN M={M} N={N} K={K}")
