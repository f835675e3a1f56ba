#!/usr/bin/env python3
"""rnncore alone: forward time at 1 and 2 threads (thread scaling).

compare.py interleaves rnncore, PyTorch and ONNX Runtime in one process
and, at 2 threads, starts every call with the pools gone quiet (so with
their workers asleep); this script runs rnncore alone, calls back to back,
all 1-thread calls of a shape and then all 2-thread calls.

    python bench/scaling.py [--cells lstm,gru,rnn] [--repeats 30]

Prints a Markdown table: median ms per thread count and the speed-up.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import rnncore
from rnncore import functional as F

SHAPES = [(100, 1, 256), (100, 16, 128), (50, 64, 256), (50, 64, 512), (20, 256, 1024)]  # (T, B, H), I = H
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def forward_call(cell: str, T: int, B: int, H: int):
    rng = np.random.default_rng(0)
    G = GATES[cell]
    x = rng.standard_normal((T, B, H), dtype=np.float32)
    W_ih = (rng.standard_normal((G * H, H)) / np.sqrt(H)).astype(np.float32)
    W_hh = (rng.standard_normal((G * H, H)) / np.sqrt(H)).astype(np.float32)
    if cell == "lstm":
        return lambda: F.lstm_forward(x, None, None, W_ih, W_hh, keep_cache=False)
    return lambda: getattr(F, f"{cell}_forward")(x, None, W_ih, W_hh, keep_cache=False)


def median_ms(call, repeats: int) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru,rnn")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    print("| cell | T | B | H | 1 thread ms | 2 threads ms | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for cell in args.cells.split(","):
        for T, B, H in SHAPES:
            call = forward_call(cell, T, B, H)
            ms = []
            for n in (1, 2):
                rnncore.set_num_threads(n)
                ms.append(median_ms(call, args.repeats))
            print(f"| {cell.upper()} | {T} | {B} | {H} | {ms[0]:.3g} | {ms[1]:.3g} | {ms[0] / ms[1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
