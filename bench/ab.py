#!/usr/bin/env python3
"""Two builds of rnncore, timed in alternating processes (A/B).

On a shared machine the speed drifts by more than most changes are worth
(this project's VM: up to 1.5x within minutes), so a change is judged by
running the old and the new build in turns, many rounds, and comparing the
medians.  Each build is a directory holding an ``rnncore`` package with its
compiled ``_core`` (for example a copy of ``python/rnncore`` plus the .so
of that build)::

    mkdir -p /tmp/old && cp -r python/rnncore /tmp/old/ && cp <old _core*.so> /tmp/old/rnncore/
    python bench/ab.py /tmp/old /tmp/new --cell lstm --shapes 100x16x128,50x64x256
    python bench/ab.py /tmp/new@RNNCORE_NUM_THREADS=2 /tmp/new --shapes 50x64x256

``DIR@NAME=VALUE`` runs that build with an environment variable set.  The
children start with ``python -S`` and the site-packages directories put
back by hand behind DIR, so an editable install of rnncore cannot shadow
the build under test.  Prints, per shape, both medians and B/A (below 1: B
is faster); ``--stat best`` compares the fastest runs instead.

``--lockstep`` keeps one process per build alive and times single calls of
the two in strict turns (``--rounds`` of them per shape), both on one CPU
at one thread: the most sensitive mode when the machine's speed drifts
within seconds.  It prints the best of each build, the median of the
per-round ratios B/A and the quartiles.  Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import site
import subprocess
import sys

import numpy as np

CHILD = r"""
import os, sys
sys.path[:0] = [sys.argv[1]] + sys.argv[2].split(os.pathsep)
import json, time
import numpy as np
import rnncore
from rnncore import functional as F

cell, shapes, mode, seconds = sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
stat = np.min if sys.argv[7] == "best" else np.median
lockstep = sys.argv[8] == "lockstep"
if sys.argv[9] != "-":  # the CPU both builds share (lockstep, 1 thread)
    os.sched_setaffinity(0, {int(sys.argv[9])})
G = {"lstm": 4, "gru": 3, "gru_rb": 3, "rnn": 1}[cell]


def make_call(shape):
    T, B, H = map(int, shape.split("x"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, H), dtype=np.float32)
    h0 = np.zeros((B, H), np.float32)
    w_ih = (rng.standard_normal((G * H, H)) * 0.1).astype(np.float32)
    w_hh = (rng.standard_normal((G * H, H)) * 0.1).astype(np.float32)
    b = np.zeros(G * H, np.float32)
    train = mode == "fwdbwd"
    dy = np.ones((T, B, H), np.float32)
    if cell == "lstm":
        fwd = lambda: F.lstm_forward(x, h0, h0, w_ih, w_hh, b, b, keep_cache=train)
        bwd = F.lstm_backward
    elif cell in ("gru", "gru_rb"):  # gru_rb: the reset-before variant
        fwd = lambda: F.gru_forward(x, h0, w_ih, w_hh, b, b, keep_cache=train,
                                    reset_after=cell == "gru")
        bwd = F.gru_backward
    else:
        fwd = lambda: F.rnn_forward(x, h0, w_ih, w_hh, b, b, keep_cache=train)
        bwd = F.rnn_backward

    def call():
        result = fwd()
        if train:
            bwd(result[-1], dy)

    call()
    return call


def timed(call):
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


calls = {shape: make_call(shape) for shape in shapes.split(",")}
if lockstep:  # one timed call per line naming a shape, until stdin closes
    for line in sys.stdin:
        print(json.dumps(timed(calls[line.strip()])), flush=True)
    sys.exit(0)
out = {}
for shape, call in calls.items():
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 3:
        times.append(timed(call))
    out[shape] = float(stat(times))
print(json.dumps(out))
"""


def child_command(spec: str, args, site_dirs: str, mode: str, cpu: str = "-"):
    path, *settings = spec.split("@")
    env = dict(os.environ)
    for setting in settings:
        name, _, value = setting.partition("=")
        env[name] = value
    env.setdefault("RNNCORE_NUM_THREADS", str(args.threads))
    cmd = [sys.executable, "-S", "-c", CHILD, path, site_dirs, args.cell,
           args.shapes, args.pass_, str(args.seconds), args.stat, mode, cpu]
    return cmd, env


def run_child(spec: str, args, site_dirs: str) -> dict:
    cmd, env = child_command(spec, args, site_dirs, "timed")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"{spec}: child failed\n{done.stderr}")
    return json.loads(done.stdout)


def lockstep(args, site_dirs: str) -> None:
    """Both builds in live children, timed one call at a time, A and B in
    strict turns, so that a change of the machine's speed hits both alike
    and every call finds the caches as the other build left them; prints
    the best of each, the median of the per-round ratios B/A and each
    side's quartiles.  With one thread both run on the same CPU: the two
    vCPUs of a shared VM can differ in speed for minutes, and each child
    otherwise tends to stay on one (an A against itself came out 0.63x)."""
    cpu = str(min(os.sched_getaffinity(0))) if args.threads == 1 else "-"
    children = []
    for spec in (args.a, args.b):
        cmd, env = child_command(spec, args, site_dirs, "lockstep", cpu)
        children.append(subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env=env))

    def ask(child, shape):
        child.stdin.write(shape + "\n")
        child.stdin.flush()
        line = child.stdout.readline()
        if not line:
            sys.exit("a lockstep child failed (see its error above)")
        return json.loads(line)

    for shape in args.shapes.split(","):
        times = [[], []]
        for r in range(args.rounds + 1):  # strictly A, B, A, B: each call
            for k in (0, 1):              # follows one of the other build
                t = ask(children[k], shape)
                if r:  # the first round only warms both up
                    times[k].append(t)
        ta, tb = np.array(times[0]), np.array(times[1])
        q = lambda t: "/".join(f"{v * 1e3:.3f}" for v in np.percentile(t, [25, 50, 75]))
        print(f"{args.cell} {args.pass_} {shape} threads={args.threads}: "
              f"best A {ta.min() * 1e3:.3f} ms  B {tb.min() * 1e3:.3f} ms  "
              f"B/A {tb.min() / ta.min():.3f}; median of ratios {np.median(tb / ta):.3f}; "
              f"quartiles A {q(ta)}  B {q(tb)} ms")
    for child in children:
        child.stdin.close()
        child.wait()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="build A: DIR[@NAME=VALUE...]")
    p.add_argument("b", help="build B: DIR[@NAME=VALUE...]")
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "gru_rb", "rnn"],
                   help="gru_rb: the GRU with reset_after=False")
    p.add_argument("--shapes", default="100x1x256,100x16x128,50x64x256",
                   help="comma list of TxBxH (I = H)")
    p.add_argument("--pass", dest="pass_", default="fwd", choices=["fwd", "fwdbwd"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seconds", type=float, default=0.6, help="timing per shape per child")
    p.add_argument("--stat", default="median", choices=["median", "best"],
                   help="median of medians, or best of bests (interference only adds "
                        "time, so the best is the steadier estimate of a kernel change "
                        "when the machine is busy)")
    p.add_argument("--lockstep", action="store_true",
                   help="time single calls of A and B in turns from two live "
                        "processes (--rounds calls each per shape; --seconds and "
                        "--stat unused): the most sensitive mode on a noisy machine")
    args = p.parse_args(argv)
    site_dirs = os.pathsep.join(site.getsitepackages())
    if args.lockstep:
        lockstep(args, site_dirs)
        return 0
    results: dict[str, list[dict]] = {args.a: [], args.b: []}
    for _ in range(args.rounds):
        for spec in (args.a, args.b):
            results[spec].append(run_child(spec, args, site_dirs))
    for shape in args.shapes.split(","):
        stat = np.min if args.stat == "best" else np.median
        ta = float(stat([r[shape] for r in results[args.a]]))
        tb = float(stat([r[shape] for r in results[args.b]]))
        print(f"{args.cell} {args.pass_} {shape} threads={args.threads}: "
              f"A {ta * 1e3:.3f} ms  B {tb * 1e3:.3f} ms  B/A {tb / ta:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
