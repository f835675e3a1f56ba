"""A repeated forward/backward loop over everything the extension does, for
memory checkers (tools/sanitize.sh runs it under ASan with full stacks and
under valgrind memcheck).

Every iteration: each cell variant (LSTM with and without projection, both
GRUs, both dense cells), both dtypes, with and without lengths, both
directions, inference and training passes with backward; the thread pool
with two threads on shapes big enough to use it; stacked bidirectional
layers, cells, save and load; and calls that fail in the bindings' checks
(an exception thrown after arrays were made must not leak them).  A leak
per call multiplies with the iterations.

Usage: python tools/sanitize/loop.py [ITERATIONS]
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

import rnncore
from rnncore import functional as F

G = {"lstm": 4, "gru": 3, "rnn": 1}
VARIANTS = [("lstm", {}), ("lstm", {"proj": True}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False}),
            ("rnn", {"nonlinearity": "tanh"}), ("rnn", {"nonlinearity": "relu"})]


def arrays(cell, opts, T, B, I, H, dtype, rng):
    P = H // 2 if opts.get("proj") else H
    r = lambda *s: (rng.standard_normal(s) * 0.3).astype(dtype)  # noqa: E731
    states = [r(B, P), r(B, H)] if cell == "lstm" else [r(B, H)]
    kw = {k: v for k, v in opts.items() if k != "proj"}
    if opts.get("proj"):
        kw["weight_hr"] = r(P, H)
    return [r(T, B, I), *states, r(G[cell] * H, I), r(G[cell] * H, P), r(G[cell] * H), r(G[cell] * H)], kw


def kernels(rng, T, B, I, H):
    for cell, opts in VARIANTS:
        fwd, bwd = getattr(F, f"{cell}_forward"), getattr(F, f"{cell}_backward")
        for dtype in (np.float32, np.float64):
            args, kw = arrays(cell, opts, T, B, I, H, dtype, rng)
            for lengths in (None, rng.integers(1, T + 1, size=B)):
                for reverse in (False, True):
                    fwd(*args, **kw, lengths=lengths, reverse=reverse, keep_cache=False)
                    y, *states, cache = fwd(*args, **kw, lengths=lengths, reverse=reverse)
                    bwd(cache, np.ones_like(y), *[np.ones_like(s) for s in states])
                    bwd(cache, None)


def failing_calls(rng):
    """Calls refused by the checks after some arrays exist: each must raise and free."""
    args, kw = arrays("lstm", {}, 3, 2, 4, 5, np.float32, rng)
    y, h, c, cache = F.lstm_forward(*args)
    bad = [
        lambda: F.lstm_forward(*args[:-1], args[-1][:-1]),               # bias_hh shape
        lambda: F.lstm_forward(*args, lengths=[1, 9]),                   # lengths range
        lambda: F.lstm_forward(*args, lengths=[[1], [1, 2]]),            # lengths conversion
        lambda: F.lstm_forward(args[0].astype(np.float64), *args[1:]),   # mixed dtypes
        lambda: F.gru_backward(cache, y),                                # another cell's cache
        lambda: F.lstm_backward(cache, y[:-1].copy()),                   # dy shape
        lambda: F.lstm_forward(np.zeros((100_000, 1000, 1), np.float32), None, None,
                               np.zeros((16384, 1), np.float32), np.zeros((16384, 4096), np.float32)),
        lambda: rnncore.set_num_threads(0),
    ]
    for call in bad:
        try:
            call()
        except (ValueError, TypeError, MemoryError):
            pass
        else:
            raise AssertionError("a bad call was accepted")


def layers_and_files(rng, directory):
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    for cls in (rnncore.LSTM, rnncore.GRU, rnncore.RNN):
        layer = cls(4, 6, num_layers=2, bidirectional=True, dropout=0.2, seed=0)
        y, _ = layer(x, lengths=[6, 2, 4])
        layer.backward(np.ones_like(y))
        path = os.path.join(directory, "layer.npz")
        layer.save(path)
        rnncore.load(path)(x)
    cell = rnncore.LSTMCell(4, 6, proj_size=3, seed=0)
    cell(x[0], cell(x[0]))


def main(iterations):
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(iterations):
            rnncore.set_num_threads(1)
            kernels(rng, T=4, B=3, I=5, H=7)
            rnncore.set_num_threads(2)
            kernels(rng, T=3, B=16, I=8, H=40)  # B*G*H*P >= 32768: the pool's threads run
            failing_calls(rng)
            layers_and_files(rng, directory)
    print(f"loop: {iterations} iterations done")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
