"""The fused step: at batch 1 or 2 a forward time loop computes each chunk's
input projection during the previous chunk's steps, in the same pass over
the columns as the recurrent product (gemm::fused_step, AVX-512).  It must
give the bits of the same products made one after the other, for every
cell, direction, batch, length, dtype and thread count, in inference and
training (the backward reads the cache the forward wrote)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import rnncore
from cellcases import ALL_VARIANTS, arg_names, backward, forward, make_args, output_grads
from rnncore import _core

# (T, I, H): shapes the fused step takes at batch 1 and 2 (recurrent products of
# 96 columns or more: sequence.h, fused_pays) but for the dense RNNs at
# H < 96.
SHAPES = [
    (32, 96, 96),     # two chunks of 16 steps: the second made fused
    (35, 96, 96),     # 16 + 19: a rest of 3 steps joins the last chunk
    (45, 130, 100),   # 16 + 16 + 13; a last tile narrower than the others
    (40, 5, 128),     # 16 + 16 + 8: I = 5
    (33, 1, 200),     # I = 1
    (100, 256, 256),  # the benchmark's shape
    (34, 17, 97),     # 2 threads: shares of 48 and 49 units
    (40, 1100, 100),  # I past one K block of AVX-512 (fp32 1024): not fused
    (34, 520, 100),   # fp32 batch 1: tiles of 8 rows (2 KiB rows of x), 16 + 18
    (36, 300, 97),    # fp64 batch 1: tiles of 8 rows; 388 columns, 4 in the last panel
]


@contextlib.contextmanager
def fusing(on):
    _core._testing_fuse_products(on)
    try:
        yield
    finally:
        _core._testing_fuse_products(True)


def fused_chunks():
    return _core._testing_fused_chunks()


@pytest.fixture
def threads():
    before = rnncore.get_num_threads()
    yield
    rnncore.set_num_threads(before)


def run(v, args, on, nthreads, lengths, reverse, rng_seed):
    """Forward outputs and, from the same cache, the gradients."""
    rnncore.set_num_threads(nthreads)
    with fusing(on):
        outs, cache = forward(rnncore.functional, v, args, lengths=lengths,
                              reverse=reverse)
        dy, d_states = output_grads(outs, np.random.default_rng(rng_seed))
        grads = backward(rnncore.functional, v, cache, dy, d_states)
        inference = forward(rnncore.functional, v, args, lengths=lengths,
                            reverse=reverse, keep_cache=False)[0]
    return [*outs, *grads, *inference]


@pytest.mark.parametrize("v", ALL_VARIANTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%dI%dH%d" % s)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("B", [1, 2], ids=lambda b: f"B{b}")
def test_same_bits_as_unfused(v, dtype, shape, reverse, B, rng, threads):
    T, I, H = shape
    args = make_args(v, T, B, I, H, dtype, rng, bias=T % 2 == 0)
    # With lengths, batch 2's rows are gathered (the second one shorter).
    lengths = np.array([T - 2, T - 7][:B]) if T % 3 == 0 else None
    for nthreads in (1, 2):
        want = run(v, args, False, nthreads, lengths, reverse, T)
        got = run(v, args, True, nthreads, lengths, reverse, T)
        assert len(got) == len(want)
        for i, (a, b) in enumerate(zip(want, got)):
            if a is None:  # no bias: no bias gradients
                assert b is None
                continue
            assert a.dtype == b.dtype == dtype
            np.testing.assert_array_equal(b, a, err_msg=f"result {i}, {nthreads} threads")


@pytest.mark.skipif(rnncore.cpu_info()["isa"] != "avx512",
                    reason="the fused step kernel is AVX-512's")
@pytest.mark.parametrize("name", ["lstm", "lstm_proj", "gru", "gru_reset_before",
                                  "rnn_tanh"])
@pytest.mark.parametrize("dtype, I", [(np.float32, 256), (np.float32, 520),
                                      (np.float64, 200), (np.float64, 256)],
                         ids=["f32-I256", "f32-I520", "f64-I200", "f64-I256"])
@pytest.mark.parametrize("B", [1, 2], ids=lambda b: f"B{b}")
def test_fused_kernel_runs(name, dtype, I, B, rng, threads):
    """The shapes above do reach the fused kernel (else the comparison
    would hold trivially): T=100, H=256 makes 6 chunks of 16 steps and
    one of 4, the first computed before the loop, the next 5 fused, the
    last after them; at 2 threads, each thread's share of the columns makes
    its own.  Both forms of projection tile run: 16 rows, and at batch 1
    with rows of x of 2 KiB or more, 8 rows a panel wide."""
    itemsize = np.dtype(dtype).itemsize
    assert _core._testing_fused_tile_rows(np.dtype(dtype).name, B, I) == (
        8 if B == 1 and I * itemsize >= 2048 else 16)
    v = next(v for v in ALL_VARIANTS if v.name == name)
    args = make_args(v, 100, B, I, 256, dtype, rng)
    for nthreads in (1, 2):
        rnncore.set_num_threads(nthreads)
        before = fused_chunks()
        forward(rnncore.functional, v, args, keep_cache=False)
        assert fused_chunks() - before == 5 * nthreads
        with fusing(False):
            before = fused_chunks()
            forward(rnncore.functional, v, args, keep_cache=False)
            assert fused_chunks() == before


@pytest.mark.parametrize("name, T, B, I, H", [
    ("lstm", 100, 3, 256, 256),             # batch 3
    ("rnn_tanh", 100, 1, 64, 64),           # 64 columns: too few to pay
    ("lstm", 31, 1, 256, 256),              # fewer than two chunks
    ("lstm", 100, 1, 1024, 256),            # rows of x 4 KiB apart (L1 sets)
])
def test_not_fused(name, T, B, I, H, rng, threads):
    v = next(v for v in ALL_VARIANTS if v.name == name)
    args = make_args(v, T, B, I, H, np.float32, rng)
    rnncore.set_num_threads(1)
    before = fused_chunks()
    forward(rnncore.functional, v, args, keep_cache=False)
    assert fused_chunks() == before


def test_tile_rows():
    """Tiles of 8 rows only at batch 1, from rows of x of 2 KiB; a dtype
    name it does not know is refused."""
    rows = _core._testing_fused_tile_rows
    assert [rows("float32", 1, ki) for ki in (1, 511, 512, 1000)] == [16, 16, 8, 8]
    assert [rows("float64", 1, ki) for ki in (255, 256)] == [16, 8]
    assert rows("float32", 2, 1000) == rows("float64", 2, 500) == 16
    with pytest.raises(ValueError, match="dtype"):
        rows("float16", 1, 512)
