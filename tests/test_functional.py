"""rnncore.functional (the C++ kernels) against rnncore.reference (NumPy)."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import rnncore
from cellcases import (ALL_VARIANTS, TOL, VARIANTS, arg_names, backward, forward,
                       make_args, random_lengths, rel_err, replace_args)
from rnncore import _core
from rnncore import functional as F
from rnncore import reference as R

SHAPES = [  # (T, B, I, H): T=1, B=1, H not a multiple of 16, I != H
    (1, 1, 1, 1),
    (7, 3, 5, 17),
    (4, 1, 8, 3),
    (5, 6, 2, 33),
    (12, 1, 5, 40),  # batch 1, T > 8: W packed forward, read in place backward
]


def run_both(v, args, lengths, reverse, rng):
    """Forward and backward through both implementations; returns the pairs
    of every output and gradient, named."""
    results = {}
    for name, module in (("fast", F), ("ref", R)):
        outs, cache = forward(module, v, args, lengths=lengths, reverse=reverse)
        results[name] = (outs, cache)
    outs = results["ref"][0]
    dy = rng.standard_normal(outs[0].shape).astype(outs[0].dtype)
    d_states = [rng.standard_normal(o.shape).astype(o.dtype) for o in outs[1:]]
    pairs = {}
    for k, (a, b) in enumerate(zip(results["fast"][0], outs)):
        pairs[f"out{k}"] = (a, b)
    g_fast = backward(F, v, results["fast"][1], dy, d_states)
    g_ref = backward(R, v, results["ref"][1], dy, d_states)
    for field in g_ref._fields:
        pairs[field] = (getattr(g_fast, field), getattr(g_ref, field))
    return pairs


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%dB%dI%dH%d" % s)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_matches_reference(v, dtype, shape, reverse, with_lengths, rng):
    T, B, I, H = shape
    args = make_args(v, T, B, I, H, dtype, rng)
    lengths = random_lengths(T, B, rng) if with_lengths else None
    for name, (fast, ref) in run_both(v, args, lengths, reverse, rng).items():
        if ref is None:  # e.g. dweight_hr without a projection
            assert fast is None, name
            continue
        assert fast.dtype == ref.dtype, name
        assert fast.shape == ref.shape, name
        assert rel_err(fast, ref) <= TOL[dtype], name


def assert_matches_reference(v, T, B, I, H, dtype, with_lengths, rng):
    """Every output and gradient of a forward + backward, fast vs reference."""
    args = make_args(v, T, B, I, H, dtype, rng)
    lengths = random_lengths(T, B, rng) if with_lengths else None
    for name, (fast, ref) in run_both(v, args, lengths, False, rng).items():
        if ref is None:
            continue
        assert rel_err(fast, ref) <= TOL[dtype], name


# (T, B, I, H) the GEMM and the time loops take other paths for.
PATH_SHAPES = [
    # I longer than the GEMM's K block for every ISA: the input projection
    # adds itself, block after block, to rows that start as the bias.
    (3, 5, 600, 20), (2, 17, 1100, 9),
    # H = 520: rows of h (and of the gate gradients) too long for the GEMM
    # to read in place, and step products wider than one column block, so
    # each step packs its A once for all blocks (gemm_packed's whole_a).
    (3, 20, 24, 520),
    # Batch 1 or 2, T >= 32, 96 columns or more (all but the RNN at
    # H = 100): on AVX-512 the forward computes each chunk's input
    # projection fused with the previous chunk's recurrent products
    # (tests/test_fused.py: the same bits as unfused).  H = 100: a last
    # panel partly filled.
    (40, 1, 5, 128), (35, 1, 130, 100), (33, 2, 24, 112),
]


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", PATH_SHAPES, ids=lambda s: "T%dB%dI%dH%d" % s)
@pytest.mark.parametrize("with_lengths", [False, True])
def test_other_paths_match_reference(v, dtype, shape, with_lengths, rng):
    assert_matches_reference(v, *shape, dtype, with_lengths, rng)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_buffers_on_huge_pages_match_reference(v, rng):
    # T*B*H*4 bytes = 4.9 MB: the per-step buffers of the training pass
    # (gates, their gradients) cross the 4 MiB from which they are
    # allocated aligned to, and advised onto, huge pages (cells/cache.cpp).
    assert_matches_reference(v, 100, 32, 16, 384, np.float32, True, rng)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_without_bias_or_initial_state(v, dtype, rng):
    args = make_args(v, 4, 3, 5, 6, dtype, rng, bias=False, states=False)
    pairs = run_both(v, args, None, False, rng)
    assert pairs["dbias_ih"] == (None, None)
    assert pairs["dbias_hh"] == (None, None)
    for name, (fast, ref) in pairs.items():
        if ref is not None:
            assert rel_err(fast, ref) <= TOL[dtype], name


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_inference_keeps_no_cache_and_gives_same_outputs(v, rng):
    args = make_args(v, 6, 2, 3, 5, np.float32, rng)
    lengths = np.array([6, 3])
    train, cache = forward(F, v, args, lengths=lengths)
    infer, none = forward(F, v, args, lengths=lengths, keep_cache=False)
    assert cache is not None and none is None
    for a, b in zip(train, infer):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="keep_cache=False"):
        backward(F, v, None, None, [])


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_padding_is_exactly_zero_and_never_leaks(v, rng):
    T, B = 6, 3
    args = make_args(v, T, B, 4, 5, np.float64, rng)
    lengths = np.array([2, 6, 4])
    (y, *_), cache = forward(F, v, args, lengths=lengths)
    for b, n in enumerate(lengths):
        assert np.all(y[n:, b] == 0.0)
    # NaN in the padding changes nothing valid, forward or backward.
    poisoned = list(args)
    poisoned[0] = args[0].copy()
    for b, n in enumerate(lengths):
        poisoned[0][n:, b] = np.nan
    (y2, *rest2), cache2 = forward(F, v, poisoned, lengths=lengths)
    np.testing.assert_array_equal(y, y2)
    dy = rng.standard_normal(y.shape)
    for b, n in enumerate(lengths):
        dy[n:, b] = np.nan  # ignored: padded outputs have no gradient
    g1 = backward(F, v, cache, dy, [])
    g2 = backward(F, v, cache2, dy, [])
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)
        assert a is None or np.all(np.isfinite(a))
    for b, n in enumerate(lengths):
        assert np.all(g1.dx[n:, b] == 0.0)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_cache_copies_states_and_weights_and_backward_repeats(v, rng):
    args = make_args(v, 5, 2, 3, 4, np.float64, rng)
    (y, *_), cache = forward(F, v, args)
    dy = rng.standard_normal(y.shape)
    first = backward(F, v, cache, dy, [])
    for a in args[1:]:
        a[...] = 7.0  # the caller reuses its state and weight buffers
    again = backward(F, v, cache, dy, [])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert cache.shape == (5, 2, 3, 4)
    assert cache.nbytes > 0


@pytest.mark.parametrize("v", VARIANTS, ids=str)
@pytest.mark.parametrize("which", ["x", "y"])
def test_backward_refuses_x_or_y_modified_after_forward(v, which, rng):
    # The cache reads x and y in place (no copies, as PyTorch saves
    # tensors); changing either in place afterwards would make the gradients
    # silently wrong, so backward says so -- for any element, even one bit.
    args = make_args(v, 5, 2, 3, 4, np.float32, rng)
    (y, *_), cache = forward(F, v, args)
    dy = np.ones_like(y)
    a = args[0] if which == "x" else y
    flat = a.reshape(-1).view(np.uint32)
    k = int(rng.integers(flat.size))
    flat[k] ^= 1
    word = {"x": "x, the input", "y": "y, the output"}[which]
    with pytest.raises(ValueError, match=word):
        backward(F, v, cache, dy, [])
    flat[k] ^= 1  # put back: backward runs again
    backward(F, v, cache, dy, [])


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_cache_keeps_x_and_y_alive_without_copying_them(v, rng):
    T, B, I, H = 20, 3, 256, 16  # x much wider than anything the cache owns
    args = make_args(v, T, B, I, H, np.float32, rng)
    (y, *_), cache = forward(F, v, args)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    first = backward(F, v, cache, dy, [])
    # Owned: the gates and one more [T,B,H] per-step state at most, the
    # weights, the initial states -- not x [T,B,I] nor y.
    owned = T * B * (v.gates * H + H) + v.gates * H * (I + H) + 2 * B * H
    assert cache.nbytes <= 4 * owned
    del args, y
    gc.collect()
    again = backward(F, v, cache, dy, [])
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("v", VARIANTS, ids=str)
def test_missing_output_gradients_are_zeros(v, rng):
    args = make_args(v, 3, 2, 3, 4, np.float64, rng)
    (y, *states), cache = forward(F, v, args)
    zeros = backward(F, v, cache, np.zeros_like(y), [np.zeros_like(s) for s in states])
    nones = backward(F, v, cache, None, [])
    for a, b in zip(zeros, nones):
        np.testing.assert_array_equal(a, b)


def test_lengths_accept_lists_and_any_integer_dtype(rng):
    v = VARIANTS[0]
    args = make_args(v, 4, 3, 2, 3, np.float32, rng)
    want, _ = forward(F, v, args, lengths=np.array([4, 1, 2]))
    for lengths in ([4, 1, 2], np.array([4, 1, 2], np.int32), np.array([4, 1, 2], np.uint8)):
        got, _ = forward(F, v, args, lengths=lengths)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_cpu_info_reports_the_kernels():
    import rnncore

    info = rnncore.cpu_info()
    assert isinstance(info["isa"], str) and info["isa"]
    assert isinstance(info["features"], list)
    assert info["num_threads"] >= 1
    assert info["version"] == rnncore.__version__


@pytest.mark.parametrize("v", ALL_VARIANTS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("B", [4, 16, 40])
def test_one_step_call_gives_the_bits_of_a_first_step(v, dtype, B, rng):
    # A one-step call (a cell step, a decoder step) with a batch of 4-64
    # multiplies by weights whose rows the GEMM reads in place (2 KiB at
    # most, here 256 values) without packing them (gemm's swapped path,
    # narrow tiles up to 16 rows); a longer call (T = 24: input projection
    # in several chunks) packs them once.  The first step must come out the
    # same bit for bit, at 1 and 2 threads, and forward and backward must
    # match the reference.
    T, I, H = 24, 256, 256
    args = make_args(v, T, B, I, H, dtype, rng)
    w_ih = args[arg_names(v).index("weight_ih")]
    assert _core._testing_reads_b_in_place(B, w_ih)
    one_step = replace_args(v, args, x=args[0][:1])
    before = rnncore.get_num_threads()
    try:
        for threads in (1, 2):
            rnncore.set_num_threads(threads)
            for keep_cache in (False, True):
                long_outs, _ = forward(F, v, args, keep_cache=keep_cache)
                outs, _ = forward(F, v, one_step, keep_cache=keep_cache)
                np.testing.assert_array_equal(outs[0][0], long_outs[0][0])
    finally:
        rnncore.set_num_threads(before)
    assert_matches_reference(v, 1, B, I, H, dtype, False, rng)
