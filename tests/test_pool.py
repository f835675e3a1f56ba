"""The block pool (src/cpp/rnncore/cache.h): per-call buffers and the
arrays a call returns reuse freed blocks instead of fresh pages."""

import os
import resource

import numpy as np
import pytest

import rnncore
from rnncore import _core
from rnncore import functional as F

MIN_BYTES, CAP_BYTES = _core._testing_pool_limits()


def pooled():
    return rnncore.memory_info()["pooled_bytes"]


def cap(info):
    """What the pool and the blocks in use may hold together."""
    return max(CAP_BYTES, info["peak_bytes"] + info["peak_bytes"] // 8)


@pytest.fixture
def empty_pool():
    _core._testing_pool_release()
    assert _core._testing_pool_cached_bytes() == 0
    yield
    _core._testing_pool_release()


def test_a_freed_block_serves_the_next_request_of_its_size_class(empty_pool):
    first = _core._testing_pool_blocks(1 << 20, 3)
    assert len(set(first)) == 3 and all(p % 64 == 0 for p in first)
    cached = _core._testing_pool_cached_bytes()
    assert 3 << 20 <= cached <= 3 * (1 << 20) * 17 // 16
    # A little smaller: the same class, the same blocks, newest first.
    again = _core._testing_pool_blocks((1 << 20) - 1000, 3)
    assert set(again) == set(first)
    assert _core._testing_pool_cached_bytes() == cached
    # Small requests bypass the pool.
    _core._testing_pool_blocks(MIN_BYTES - 1, 2)
    assert _core._testing_pool_cached_bytes() == cached
    _core._testing_pool_release()
    assert _core._testing_pool_cached_bytes() == 0


def test_the_pool_keeps_what_was_in_use_at_once_and_no_more(empty_pool):
    info = rnncore.memory_info()
    assert info["pooled_bytes"] == 0 and info["peak_bytes"] == info["in_use_bytes"]
    block = 8 << 20
    many = CAP_BYTES // block + 4  # more than the base cap, all in use at once
    addresses = _core._testing_pool_blocks(block, many)
    assert len(set(addresses)) == many
    info = rnncore.memory_info()
    assert info["peak_bytes"] >= many * block
    assert pooled() == many * block  # all kept: the process held them at once
    # Blocks of other classes, more than the room left, take the place of
    # the oldest: pooled and in use together stay within the cap.
    before = cap(info)
    _core._testing_pool_blocks(5 << 20, 8)
    info = rnncore.memory_info()
    assert cap(info) == before  # 40 MiB at once: below the peak
    assert info["pooled_bytes"] + info["in_use_bytes"] <= before
    assert info["pooled_bytes"] < many * block + 8 * (5 << 20)
    # A block larger than any kept before is kept after its call too, and
    # serves the next request of its size.
    huge = [_core._testing_pool_blocks(3 * CAP_BYTES, 1)[0] for _ in range(2)]
    assert huge[0] == huge[1]
    info = rnncore.memory_info()
    assert info["pooled_bytes"] + info["in_use_bytes"] <= cap(info)
    rnncore.release_memory()
    info = rnncore.memory_info()
    assert info["pooled_bytes"] == 0 and info["peak_bytes"] == info["in_use_bytes"]


def test_below_the_peak_the_base_cap_still_bounds_the_pool(empty_pool):
    # Blocks taken and given back one at a time never raise the peak past
    # one block: the pool keeps at most the base cap.
    block = 8 << 20
    for _ in range(CAP_BYTES // block + 4):
        _core._testing_pool_blocks(block, 1)
        _core._testing_pool_blocks(block + (1 << 20), 1)
    assert pooled() <= CAP_BYTES


def test_large_outputs_live_in_pool_blocks_given_back_when_they_die(empty_pool, rng):
    T, B, H = 50, 16, 64
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    w = [rng.uniform(-0.1, 0.1, s).astype(np.float32) for s in ((4 * H, H), (4 * H, H))]
    y, h, c, _ = F.lstm_forward(x, None, None, *w, keep_cache=False)
    assert y.nbytes >= MIN_BYTES and h.nbytes < MIN_BYTES
    assert y.flags.c_contiguous and y.flags.writeable and y.base is not None
    y[...] = 1.0  # writable memory of its own
    before = _core._testing_pool_cached_bytes()
    del y
    assert _core._testing_pool_cached_bytes() >= before + T * B * H * 4
    y2, _, _, _ = F.lstm_forward(x, None, None, *w, keep_cache=False)  # its block again
    assert _core._testing_pool_cached_bytes() == before
    np.testing.assert_allclose(y2, rnncore.reference.lstm_forward(x, None, None, *w)[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer's allocator and shadow memory fault pages")
@pytest.mark.parametrize("cell, T, B, I, H", [
    ("lstm", 100, 16, 128, 128), ("gru", 100, 16, 128, 128), ("rnn", 100, 16, 128, 128),
    # A 40 MiB cache (gates [T, B, 4H]): blocks above 32 MiB were once never kept.
    ("lstm", 40, 256, 8, 256),
])
def test_a_training_loop_faults_in_no_fresh_pages(cell, T, B, I, H, rng):
    # One shape, forward + backward over and over (a training loop): the C
    # library alone gave every call's buffers back to the system and took
    # fresh pages for the next (about 1,200 page faults a call for this GRU);
    # from the pool they come back with their pages.
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    w = [rng.uniform(-0.1, 0.1, s).astype(np.float32)
         for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
    dy = np.ones((T, B, H), np.float32)

    def step():
        if cell == "lstm":
            out = F.lstm_forward(x, None, None, *w, keep_cache=True)
            grads = F.lstm_backward(out[3], dy)
        else:
            out = getattr(F, cell + "_forward")(x, None, *w, keep_cache=True)
            grads = getattr(F, cell + "_backward")(out[2], dy)
        return out, grads

    for _ in range(3):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    calls = 10
    for _ in range(calls):
        step()
    per_call = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls
    # The cache alone is T*B*G*H*4 bytes: 200-800 pages at 4 KiB.
    assert per_call < 50, f"{per_call:.0f} page faults a call"
