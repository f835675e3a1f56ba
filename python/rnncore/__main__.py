"""Command line: ``python -m rnncore info`` and ``python -m rnncore demo``."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import cpu_info, functional, reference
from .demo import DEFAULTS as DEMO_DEFAULTS
from .demo import run as run_demo


def self_check(seed: int = 0) -> list[tuple[str, str, float]]:
    """Run every cell forward and backward through the kernels and through
    the NumPy reference on the same random arguments (both directions, with
    lengths); return (cell, dtype, worst relative error) per case."""
    rng = np.random.default_rng(seed)
    T, B, I, H = 6, 3, 5, 7
    lengths = np.array([6, 2, 4])
    cases = [("lstm", 4, {}), ("gru", 3, {}), ("gru", 3, {"reset_after": False}),
             ("rnn", 1, {"nonlinearity": "tanh"}), ("rnn", 1, {"nonlinearity": "relu"})]
    rows = []
    for cell, G, opts in cases:
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal((T, B, I)).astype(dtype)
            states = [rng.standard_normal((B, H)).astype(dtype)
                      for _ in range(2 if cell == "lstm" else 1)]
            weights = [rng.uniform(-0.4, 0.4, s).astype(dtype)
                       for s in ((G * H, I), (G * H, H), (G * H,), (G * H,))]
            worst = 0.0
            for reverse in (False, True):
                results = []
                for mod in (functional, reference):
                    out = getattr(mod, f"{cell}_forward")(
                        x, *states, *weights, lengths=lengths, reverse=reverse, **opts)
                    dy = np.ones_like(out[0])
                    grads = getattr(mod, f"{cell}_backward")(out[-1], dy)
                    results.append([*out[:-1], *grads])
                for fast, ref in zip(*results):
                    if ref is None:  # a gradient this cell does not have
                        continue
                    scale = max(float(np.abs(ref).max()), 1e-30)
                    worst = max(worst, float(np.abs(fast - ref).max()) / scale)
            label = cell + ("" if opts.get("reset_after", True) else " (reset before)")
            if "nonlinearity" in opts:
                label += f" ({opts['nonlinearity']})"
            rows.append((label, np.dtype(dtype).name, worst))
    return rows


def info() -> int:
    data = cpu_info()
    print(f"rnncore {data['version']}")
    print(f"kernels: {data['isa']}   threads: {data['num_threads']}")
    print(f"cpu features: {' '.join(data['features']) or '(none detected)'}")
    print("self-check against the NumPy reference (forward + BPTT, both directions, lengths):")
    tol = {"float32": 1e-5, "float64": 1e-10}
    ok = True
    for label, dtype, err in self_check():
        good = err <= tol[dtype]
        ok &= good
        print(f"  {label:<22} {dtype:<8} max rel. error {err:.1e}  {'ok' if good else 'FAILED'}")
    print("all cells agree with the reference" if ok else "SELF-CHECK FAILED")
    return 0 if ok else 1


def _int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnncore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, CPU, kernels, and a self-check")
    demo = sub.add_parser("demo", help="train a sequence-to-sequence model to add numbers written as text")
    demo.add_argument("--cell", choices=("lstm", "gru", "rnn"), default=DEMO_DEFAULTS["cell"],
                      help="recurrent cell (default: %(default)s)")
    demo.add_argument("--epochs", type=_int_at_least(1), default=DEMO_DEFAULTS["epochs"],
                      help="passes over the training sums (default: %(default)s)")
    demo.add_argument("--seed", type=_int_at_least(0), default=DEMO_DEFAULTS["seed"],
                      help="seed of the data, the initialisation and the shuffling (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "info":
        return info()
    if args.command == "demo":
        run_demo(cell=args.cell, epochs=args.epochs, seed=args.seed)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
