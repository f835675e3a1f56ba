#!/usr/bin/env python3
"""Benchmark rnncore against PyTorch (CPU) and ONNX Runtime, in one process.

Same weights in every library, outputs (and gradients) checked to agree
before anything is timed, warm-up runs, then interleaved repeats
(rnncore, rnncore prepacked, torch, ORT, rnncore, ...) timed with
``time.perf_counter``; the median of the repeats is reported.  The machine's
practical limit (NumPy's float32 2048x2048 matmul, on the same number of
threads) is measured in the same run.

    python bench/compare.py --quick                 # < 2 minutes
    python bench/compare.py                         # the full grid (DESIGN.md 6)
    python bench/compare.py --cells lstm --shapes 50x64x256 --threads 1,2 \
        --passes fwd --json out.json
    python bench/compare.py --memory                # peak memory of a training forward

A Markdown report goes to stdout, progress to stderr.  See bench/README.md.
The script is standalone: pytest never runs it.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import inspect
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# The grid (DESIGN.md section 6)
# --------------------------------------------------------------------------

GRID_SHAPES = [  # (T, B, I, H)
    (100, 1, 64, 64),
    (100, 1, 256, 256),
    (100, 16, 128, 128),
    (50, 64, 256, 256),
    (50, 64, 512, 512),
    (20, 256, 1024, 1024),
    (1000, 1, 32, 32),
]
BILSTM_SHAPE = (50, 64, 256, 256)  # 2-layer bidirectional LSTM case
ALL_CELLS = ["lstm", "gru", "rnn", "bilstm2"]
ALL_PASSES = ["fwd", "fwdbwd"]
GATES = {"lstm": 4, "gru": 3, "rnn": 1, "bilstm2": 4}
PASS_LABEL = {"fwd": "forward", "fwdbwd": "fwd+bwd"}
CELL_LABEL = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN(tanh)", "bilstm2": "LSTM 2L bidir"}
LIBS = ["rnncore", "prepacked", "torch", "ort"]  # prepacked: rnncore.functional.Prepacked* (forward)

NOISY_CPUS = 0.1  # flag a case during which other processes kept this many CPUs busy
RTOL = 1e-4  # max |a - b| / max |reference|, float32
MATMUL_N = 2048
MEMORY_SHAPE = (1000, 64, 512, 512)
ENV_VARS_OF_INTEREST = [
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
    "RNNCORE_NUM_THREADS", "RNNCORE_FORCE_ISA",
]


def log(msg: str = "") -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------

def _csv(s: str) -> list[str]:
    return [p.strip() for p in s.split(",") if p.strip()]


def parse_shape(tok: str) -> tuple[int, int, int, int]:
    parts = [int(p) for p in tok.lower().split("x")]
    if len(parts) == 3:
        t, b, h = parts
        return (t, b, h, h)
    if len(parts) == 4:
        return tuple(parts)  # type: ignore[return-value]
    raise argparse.ArgumentTypeError(f"shape {tok!r}: expected TxBxH or TxBxIxH")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="rnncore vs PyTorch vs ONNX Runtime (see bench/README.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="first three shapes, 1 thread, LSTM/GRU/RNN, both passes (< 2 min)")
    p.add_argument("--cells", type=_csv, default=None,
                   help=f"comma list from {','.join(ALL_CELLS)} (default: all)")
    p.add_argument("--shapes", type=_csv, default=None,
                   help="comma list of TxBxH (I=H) or TxBxIxH, e.g. 100x1x64,50x64x256 "
                        "(default: the DESIGN.md grid); does not affect bilstm2")
    p.add_argument("--threads", type=_csv, default=None, help="comma list (default 1,2)")
    p.add_argument("--passes", type=_csv, default=None, help="fwd,fwdbwd (default both)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--target-seconds", type=float, default=2.0,
                   help="aim for about this much timing per case (default 2)")
    p.add_argument("--max-seconds-per-case", type=float, default=30.0,
                   help="rnncore is not timed in a case whose predicted cost (a 1-step probe "
                        "times T, for the check run plus one timed run) exceeds this; "
                        "repeats are also capped by it (default 30)")
    p.add_argument("--min-repeats", type=int, default=5,
                   help="timed repeats per library unless the case budget forbids (default 5)")
    p.add_argument("--max-repeats", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wait-idle", type=float, default=None, metavar="SECONDS",
                   help="before each case wait up to this long for other processes to leave "
                        "the CPUs alone (0: don't wait; default 10, 2 with --quick)")
    p.add_argument("--no-numpy-limit", action="store_true",
                   help="skip the NumPy matmul practical-limit measurement")
    p.add_argument("--memory", action="store_true",
                   help="only measure peak memory of a training forward (LSTM) per library")
    p.add_argument("--memory-shape", type=parse_shape, default=MEMORY_SHAPE,
                   help="TxBxH for --memory (default 1000x64x512)")
    p.add_argument("--memory-modes", type=_csv, default=["train"],
                   help="train (forward keeping the backward cache) and/or infer (default train)")
    p.add_argument("--_memory-child", nargs=2, metavar=("LIB", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.quick:
        args.cells = args.cells or ["lstm", "gru", "rnn"]
        args.shapes = args.shapes or [f"{t}x{b}x{i}x{h}" for t, b, i, h in GRID_SHAPES[:3]]
        args.threads = args.threads or ["1"]
    if args.wait_idle is None:
        args.wait_idle = 2.0 if args.quick else 10.0
    args.cells = args.cells or list(ALL_CELLS)
    args.passes = args.passes or list(ALL_PASSES)
    args.threads = [int(t) for t in (args.threads or ["1", "2"])]
    args.shapes = [parse_shape(s) for s in args.shapes] if args.shapes else list(GRID_SHAPES)
    for c in args.cells:
        if c not in ALL_CELLS:
            p.error(f"--cells: unknown cell {c!r}; choose from {ALL_CELLS}")
    for ps in args.passes:
        if ps not in ALL_PASSES:
            p.error(f"--passes: unknown pass {ps!r}; choose from {ALL_PASSES}")
    for m in args.memory_modes:
        if m not in ("train", "infer"):
            p.error(f"--memory-modes: unknown mode {m!r}")
    if any(t < 1 for t in args.threads):
        p.error("--threads must be >= 1")
    return args


# --------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(rnncore, torch, ort, np) -> dict:
    info = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rnncore": getattr(rnncore, "__version__", "?"),
        "rnncore_cpu_info": dict(rnncore.cpu_info()),
        "rnncore_has_set_num_threads": hasattr(rnncore, "set_num_threads"),
        "rnncore_has_LSTM": hasattr(rnncore, "LSTM"),
        "torch": torch.__version__ if torch else None,
        "torch_mkldnn": bool(torch.backends.mkldnn.is_available()) if torch else None,
        "onnxruntime": ort.__version__ if ort else None,
        "env": {k: os.environ[k] for k in ENV_VARS_OF_INTEREST if k in os.environ},
    }
    try:
        with open("/proc/loadavg") as f:
            info["loadavg"] = " ".join(f.read().split()[:3])
    except OSError:
        info["loadavg"] = None
    try:
        import onnx
        info["onnx"] = onnx.__version__
    except ImportError:
        info["onnx"] = None
    return info


# --------------------------------------------------------------------------
# NumPy practical limit: a fresh interpreter per thread count, the thread
# count set in the environment before NumPy is imported.
# --------------------------------------------------------------------------

_NUMPY_CHILD = r"""
import json, sys, time
n, size, budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
import numpy as np
out = {}
try:
    import threadpoolctl
    out["pools"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "architecture",
                                            "version")} for p in threadpoolctl.threadpool_info()]
    ctx = threadpoolctl.threadpool_limits(n)   # belt and braces; env already says n
except ImportError:
    out["pools"] = None
rng = np.random.default_rng(0)
a = rng.standard_normal((size, size), dtype=np.float32)
b = rng.standard_normal((size, size), dtype=np.float32)
c = np.empty_like(a)
t0 = time.perf_counter(); np.matmul(a, b, out=c); first = time.perf_counter() - t0
np.matmul(a, b, out=c)
reps = max(5, min(200, int(budget / max(first, 1e-4))))
times = []
for _ in range(reps):
    t0 = time.perf_counter(); np.matmul(a, b, out=c); times.append(time.perf_counter() - t0)
times.sort()
med = times[len(times) // 2]
out.update(threads=n, reps=reps, median_s=med, min_s=times[0],
           gflops=2.0 * size ** 3 / med / 1e9, gflops_best=2.0 * size ** 3 / times[0] / 1e9)
print(json.dumps(out))
"""


def numpy_limit(threads: int, clean: bool, budget: float = 1.5) -> dict:
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[k] = str(threads)
    removed = []
    if clean:
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if env.pop(k, None) is not None:
                removed.append(k)
    r = subprocess.run(
        [sys.executable, "-c", _NUMPY_CHILD, str(threads), str(MATMUL_N), str(budget)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    if r.returncode != 0:
        return {"threads": threads, "error": r.stderr.strip()[-2000:]}
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["clean_env"] = clean
    res["unset"] = removed
    res["kept"] = {k: env[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in env}
    return res


# --------------------------------------------------------------------------
# Cases, data, FLOPs
# --------------------------------------------------------------------------

@dataclass
class Case:
    cell: str        # lstm | gru | rnn | bilstm2
    pass_: str       # fwd | fwdbwd
    T: int
    B: int
    I: int
    H: int
    threads: int

    @property
    def key(self):  # everything but the thread count
        return (self.cell, self.pass_, self.T, self.B, self.I, self.H)

    def flops(self) -> float:
        g = GATES[self.cell]
        if self.cell == "bilstm2":
            # layer 0: two directions over I inputs; layer 1: two directions over 2H inputs
            f = 2 * (2.0 * self.T * self.B * g * self.H * (self.I + self.H))
            f += 2 * (2.0 * self.T * self.B * g * self.H * (2 * self.H + self.H))
        else:
            f = 2.0 * self.T * self.B * g * self.H * (self.I + self.H)
        return f * (3 if self.pass_ == "fwdbwd" else 1)

    def label(self) -> str:
        return (f"{CELL_LABEL[self.cell]} {PASS_LABEL[self.pass_]} T={self.T} B={self.B} "
                f"I={self.I} H={self.H} threads={self.threads}")


def make_data(np, cell: str, T: int, B: int, I: int, H: int, seed: int) -> dict:
    """Single-layer weights in PyTorch's layout, U(-1/sqrt(H), 1/sqrt(H)), plus x, h0, c0, dy."""
    rng = np.random.default_rng([seed, T, B, I, H, GATES[cell]])
    k = 1.0 / math.sqrt(H)
    G = GATES[cell]

    def u(*shape, s=k):
        return rng.uniform(-s, s, size=shape).astype(np.float32)

    d = {
        "x": rng.standard_normal((T, B, I), dtype=np.float32),
        "h0": u(B, H, s=0.5),
        "w_ih": u(G * H, I), "w_hh": u(G * H, H), "b_ih": u(G * H), "b_hh": u(G * H),
        "dy": rng.uniform(-1, 1, size=(T, B, H)).astype(np.float32),
    }
    if cell == "lstm":
        d["c0"] = u(B, H, s=0.5)
    return d


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def rel_diff(np, a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if b.size else 0.0
    return diff / scale if scale > 0 else diff


def compare(np, outs: dict, ref_name: str, stored: dict | None):
    """outs: lib -> {name: array}.  Compare every library (and a stored
    reference from another thread count) with ref_name on the names they share.
    Returns (ok, report lines, worst relative difference per pair, libraries
    that disagreed)."""
    ok = True
    culprits = set()
    lines = []
    worst = {}
    ref = outs[ref_name]
    others = [(n, o) for n, o in outs.items() if n != ref_name]
    if stored is not None:
        others.append((f"{stored['lib']}@{stored['threads']}thr", stored["outs"]))
    for name, o in others:
        common = [k for k in ref if k in o]
        if not common:
            continue
        diffs = {k: rel_diff(np, o[k], ref[k]) for k in common}
        w = max(diffs.values())
        worst[f"{name}_vs_{ref_name}"] = w
        bad = {k: v for k, v in diffs.items() if not v <= RTOL}
        if bad:
            ok = False
            culprits.update({name.split("@")[0], ref_name})
            for k, v in bad.items():
                a = np.asarray(o[k], np.float64)
                b = np.asarray(ref[k], np.float64)
                if a.shape != b.shape:
                    lines.append(f"{name} vs {ref_name}: {k}: shape {a.shape} vs {b.shape}")
                    continue
                lines.append(
                    f"{name} vs {ref_name}: {k}: max|diff|={np.max(np.abs(a - b)):.4g}, "
                    f"max|{ref_name}|={np.max(np.abs(b)):.4g}, relative={v:.3g} > {RTOL:g}")
    return ok, lines, worst, culprits


# --------------------------------------------------------------------------
# ONNX models
# --------------------------------------------------------------------------

ONNX_ORDER = {"lstm": [0, 3, 1, 2],  # PyTorch i,f,g,o -> ONNX i,o,f,c
              "gru": [1, 0, 2],      # PyTorch r,z,n   -> ONNX z,r,h
              "rnn": [0]}


def to_onnx_gates(np, w, cell: str):
    """[G*H, ...] in PyTorch's gate order -> ONNX's gate order."""
    order = ONNX_ORDER["lstm" if cell == "bilstm2" else cell]
    G = len(order)
    parts = np.split(w, G, axis=0)
    return np.ascontiguousarray(np.concatenate([parts[g] for g in order], axis=0))


def onnx_direction_arrays(np, cell, dirs):
    """dirs: list of (w_ih, w_hh, b_ih, b_hh) per direction (forward first)."""
    W = np.stack([to_onnx_gates(np, d[0], cell) for d in dirs])
    R = np.stack([to_onnx_gates(np, d[1], cell) for d in dirs])
    Bc = np.stack([np.concatenate([to_onnx_gates(np, d[2], cell), to_onnx_gates(np, d[3], cell)])
                   for d in dirs])
    return W.astype(np.float32), R.astype(np.float32), Bc.astype(np.float32)


def _finish_model(onnx, graph):
    from onnx import helper
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="rnncore-bench")
    model.ir_version = 8  # accepted by every onnxruntime of the last years
    onnx.checker.check_model(model)
    return model.SerializeToString()


def build_onnx_single(np, cell: str, d: dict, T: int, B: int, I: int, H: int) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    W, R, Bc = onnx_direction_arrays(np, cell, [(d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"])])
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cell]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I]),
              helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, [1, B, H])]
    node_in = ["X", "W", "R", "B", "", "initial_h"]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, 1, B, H]),
               helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, B, H])]
    node_out = ["Y", "Y_h"]
    attrs = {"hidden_size": H}
    if cell == "lstm":
        inputs.append(helper.make_tensor_value_info("initial_c", TensorProto.FLOAT, [1, B, H]))
        node_in.append("initial_c")
        outputs.append(helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [1, B, H]))
        node_out.append("Y_c")
    if cell == "gru":
        attrs["linear_before_reset"] = 1  # PyTorch's reset-after GRU
    if cell == "rnn":
        attrs["activations"] = ["Tanh"]
    node = helper.make_node(op, node_in, node_out, **attrs)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"),
             numpy_helper.from_array(Bc, "B")]
    graph = helper.make_graph([node], f"{cell}_T{T}_B{B}_I{I}_H{H}", inputs, outputs, inits)
    return _finish_model(onnx, graph)


def build_onnx_bilstm2(np, params: dict, T: int, B: int, I: int, H: int) -> bytes:
    """Two bidirectional LSTM nodes; between them Y [T,2,B,H] -> [T,B,2H]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits = [], [numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape_TB_")]
    layer_in = "X"
    yh, yc = [], []
    for layer in range(2):
        dirs = []
        for sfx in ("", "_reverse"):
            dirs.append(tuple(params[f"{n}_l{layer}{sfx}"]
                              for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        W, R, Bc = onnx_direction_arrays(np, "lstm", dirs)
        inits += [numpy_helper.from_array(W, f"W{layer}"), numpy_helper.from_array(R, f"R{layer}"),
                  numpy_helper.from_array(Bc, f"B{layer}")]
        nodes.append(helper.make_node(
            "LSTM", [layer_in, f"W{layer}", f"R{layer}", f"B{layer}"],
            [f"Y{layer}", f"Y_h{layer}", f"Y_c{layer}"], hidden_size=H, direction="bidirectional"))
        nodes.append(helper.make_node("Transpose", [f"Y{layer}"], [f"Yt{layer}"], perm=[0, 2, 1, 3]))
        out = "Y" if layer == 1 else f"Yr{layer}"
        nodes.append(helper.make_node("Reshape", [f"Yt{layer}", "shape_TB_"], [out]))
        layer_in = out
        yh.append(f"Y_h{layer}")
        yc.append(f"Y_c{layer}")
    nodes.append(helper.make_node("Concat", yh, ["Y_h"], axis=0))
    nodes.append(helper.make_node("Concat", yc, ["Y_c"], axis=0))
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [T, B, I])]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, B, 2 * H]),
               helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [4, B, H]),
               helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [4, B, H])]
    graph = helper.make_graph(nodes, f"bilstm2_T{T}_B{B}_I{I}_H{H}", inputs, outputs, inits)
    return _finish_model(onnx, graph)


def ort_session(ort, model: bytes, threads: int):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------
# Runners: each library prepares a callable doing the whole pass; extract()
# turns its result into {name: ndarray} for the check (outside the timing).
# --------------------------------------------------------------------------

@dataclass
class Runner:
    run: object                  # () -> raw result
    extract: object              # raw result -> {name: ndarray}
    note: str = ""


def rnncore_single(np, F, cell: str, pass_: str, d: dict) -> Runner:
    x, h0 = d["x"], d["h0"]
    w = (d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"])
    dy = d["dy"]
    if cell == "lstm":
        c0 = d["c0"]
        if pass_ == "fwd":
            def run():
                return F.lstm_forward(x, h0, c0, *w, keep_cache=False)

            def extract(r):
                return {"y": r[0], "h_n": r[1], "c_n": r[2]}
        else:
            def run():
                y, h, c, cache = F.lstm_forward(x, h0, c0, *w, keep_cache=True)
                return y, h, c, F.lstm_backward(cache, dy)

            def extract(r):
                g = r[3]
                return {"y": r[0], "h_n": r[1], "c_n": r[2], "dx": g.dx, "dh0": g.dh0,
                        "dc0": g.dc0, "dw_ih": g.dweight_ih, "dw_hh": g.dweight_hh,
                        "db_ih": g.dbias_ih, "db_hh": g.dbias_hh}
        return Runner(run, extract)
    fwd = F.gru_forward if cell == "gru" else F.rnn_forward
    bwd = F.gru_backward if cell == "gru" else F.rnn_backward
    kw = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    if pass_ == "fwd":
        def run():
            return fwd(x, h0, *w, keep_cache=False, **kw)

        def extract(r):
            return {"y": r[0], "h_n": r[1]}
    else:
        def run():
            y, h, cache = fwd(x, h0, *w, keep_cache=True, **kw)
            return y, h, bwd(cache, dy)

        def extract(r):
            g = r[2]
            return {"y": r[0], "h_n": r[1], "dx": g.dx, "dh0": g.dh0,
                    "dw_ih": g.dweight_ih, "dw_hh": g.dweight_hh,
                    "db_ih": g.dbias_ih, "db_hh": g.dbias_hh}
    return Runner(run, extract)


def rnncore_prepacked(np, F, cell: str, d: dict) -> Runner:
    """The forward through PrepackedLSTM/GRU/RNN: weights copied and packed once,
    before timing, as an ONNX Runtime session is made once."""
    x, h0 = d["x"], d["h0"]
    w = (d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"])
    if cell == "lstm":
        layer, c0 = F.PrepackedLSTM(*w), d["c0"]

        def run():
            return layer(x, h0, c0)

        def extract(r):
            return {"y": r[0], "h_n": r[1], "c_n": r[2]}
        return Runner(run, extract)
    layer = F.PrepackedGRU(*w) if cell == "gru" else F.PrepackedRNN(*w)
    kw = {"nonlinearity": "tanh"} if cell == "rnn" else {}

    def run():
        return layer(x, h0, **kw)

    def extract(r):
        return {"y": r[0], "h_n": r[1]}
    return Runner(run, extract)


def torch_single(np, torch, cell: str, pass_: str, d: dict, T: int, B: int, I: int, H: int) -> Runner:
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    kw = {"nonlinearity": "tanh"} if cell == "rnn" else {}
    mod = cls(I, H, num_layers=1, **kw)
    with torch.no_grad():
        for n, k in (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"),
                     ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")):
            getattr(mod, n).copy_(torch.from_numpy(d[k]))
    x = torch.from_numpy(d["x"])
    h0 = torch.from_numpy(d["h0"]).unsqueeze(0)
    c0 = torch.from_numpy(d["c0"]).unsqueeze(0) if cell == "lstm" else None
    dy = torch.from_numpy(d["dy"])
    params = [mod.weight_ih_l0, mod.weight_hh_l0, mod.bias_ih_l0, mod.bias_hh_l0]

    def states(req):
        if cell == "lstm":
            return (h0.clone().requires_grad_(req), c0.clone().requires_grad_(req))
        return h0.clone().requires_grad_(req)

    if pass_ == "fwd":
        hx = states(False)

        def run():
            with torch.no_grad():
                return mod(x, hx)

        def extract(r):
            y, hn = r
            o = {"y": y.numpy()}
            if cell == "lstm":
                o["h_n"], o["c_n"] = hn[0][0].numpy(), hn[1][0].numpy()
            else:
                o["h_n"] = hn[0].numpy()
            return o
        return Runner(run, extract)

    xg = x.clone().requires_grad_(True)
    hxg = states(True)
    leaves = [xg] + (list(hxg) if cell == "lstm" else [hxg]) + params

    def run():
        for t in leaves:
            t.grad = None
        y, hn = mod(xg, hxg)
        y.backward(dy)
        return y, hn

    def extract(r):
        y, hn = r
        o = {"y": y.detach().numpy()}
        if cell == "lstm":
            o["h_n"], o["c_n"] = hn[0][0].detach().numpy(), hn[1][0].detach().numpy()
            o["dh0"], o["dc0"] = hxg[0].grad[0].numpy(), hxg[1].grad[0].numpy()
        else:
            o["h_n"] = hn[0].detach().numpy()
            o["dh0"] = hxg.grad[0].numpy()
        o["dx"] = xg.grad.numpy()
        for n, t in zip(("dw_ih", "dw_hh", "db_ih", "db_hh"), params):
            o[n] = t.grad.numpy()
        return o
    return Runner(run, extract)


def ort_single(ort, np, cell: str, d: dict, T, B, I, H, threads: int) -> Runner:
    sess = ort_session(ort, build_onnx_single(np, cell, d, T, B, I, H), threads)
    feeds = {"X": d["x"], "initial_h": d["h0"][None]}
    if cell == "lstm":
        feeds["initial_c"] = d["c0"][None]

    def run():
        return sess.run(None, feeds)

    def extract(r):
        o = {"y": r[0].reshape(T, B, H), "h_n": r[1][0]}
        if cell == "lstm":
            o["c_n"] = r[2][0]
        return o
    return Runner(run, extract)


# -- the 2-layer bidirectional LSTM (needs rnncore.LSTM) ---------------------

def rnncore_bilstm2(rnncore, np, pass_: str, layer, x, dy) -> Runner:
    """layer = rnncore.LSTM(I, H, num_layers=2, bidirectional=True)."""
    note = ""
    try:
        sig = inspect.signature(layer.forward if hasattr(layer, "forward") else layer)
        has_kc = "keep_cache" in sig.parameters
    except (TypeError, ValueError):
        has_kc = False

    def call(train: bool):
        if has_kc:
            return layer(x, keep_cache=train)
        if not train and hasattr(rnncore, "no_grad"):
            with rnncore.no_grad():
                return layer(x)
        return layer(x)

    if pass_ == "fwd":
        if not has_kc and not hasattr(rnncore, "no_grad"):
            note = "rnncore forward keeps its cache (no inference switch found)"

        def run():
            return call(False)

        def extract(r):
            y, (h, c) = r
            return {"y": y, "h_n": h, "c_n": c}
        return Runner(run, extract, note)

    def run():
        if hasattr(layer, "zero_grad"):
            layer.zero_grad()
        y, (h, c) = call(True)
        dxh = layer.backward(dy)
        return y, h, c, dxh

    def extract(r):
        y, h, c, dxh = r
        dx = dxh[0] if isinstance(dxh, tuple) else dxh
        o = {"y": y, "h_n": h, "c_n": c, "dx": dx}
        for k, v in layer.grads.items():  # copies: the live arrays change with the next run
            o["d" + k] = np.array(v, copy=True)
        return o
    return Runner(run, extract, note)


def torch_bilstm2(torch, pass_: str, params: dict, x_np, dy_np, I, H) -> Runner:
    mod = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    sd = {k: torch.from_numpy(np_array_copy(v)) for k, v in params.items()}
    mod.load_state_dict(sd, strict=True)
    x = torch.from_numpy(x_np)
    dy = torch.from_numpy(dy_np)
    named = dict(mod.named_parameters())
    if pass_ == "fwd":
        def run():
            with torch.no_grad():
                return mod(x)

        def extract(r):
            y, (h, c) = r
            return {"y": y.numpy(), "h_n": h.numpy(), "c_n": c.numpy()}
        return Runner(run, extract)
    xg = x.clone().requires_grad_(True)
    leaves = [xg] + list(named.values())

    def run():
        for t in leaves:
            t.grad = None
        y, hc = mod(xg)
        y.backward(dy)
        return y, hc

    def extract(r):
        y, (h, c) = r
        o = {"y": y.detach().numpy(), "h_n": h.detach().numpy(), "c_n": c.detach().numpy(),
             "dx": xg.grad.numpy()}
        for k, t in named.items():
            o["d" + k] = t.grad.numpy()
        return o
    return Runner(run, extract)


def np_array_copy(v):
    import numpy as np
    return np.array(v, dtype=np.float32, copy=True)


def ort_bilstm2(ort, np, params, x, T, B, I, H, threads) -> Runner:
    sess = ort_session(ort, build_onnx_bilstm2(np, params, T, B, I, H), threads)
    feeds = {"X": x}

    def run():
        return sess.run(None, feeds)

    def extract(r):
        return {"y": r[0], "h_n": r[1], "c_n": r[2]}
    return Runner(run, extract)


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def time_once(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def own_cpu_seconds() -> float:
    """CPU time of this process, all its threads, as getrusage counts it:
    like /proc/stat (LoadMeter subtracts one from the other), a thread
    running without a break on another CPU is counted at scheduler ticks."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def threads_cpu_seconds() -> float:
    """CPU time of this process's threads but the calling one, each thread's
    up to date when read.

    Each thread's CPU-time clock (Linux: clock id (~tid << 3) | 6, what
    pthread_getcpuclockid returns), which the kernel brings up to date on
    reading even while the thread runs on another CPU.  getrusage and
    /proc/self/task/*/schedstat do not: there such a thread is counted at
    scheduler ticks only (4 ms apart at HZ = 250), so ONNX Runtime's pool,
    spinning without a break for 35-55 ms after a call, looked idle in
    settle()'s 2 ms windows and took a CPU from the next library timed on
    2 threads.  The calling thread is left out: it only sleeps in settle(),
    and its reading of the clocks would count."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return own_cpu_seconds()
    total, me = 0.0, threading.get_native_id()
    for tid in map(int, tids):
        if tid == me:
            continue
        try:
            total += time.clock_gettime((~tid << 3) | 6)
        except OSError:  # a thread that has just ended
            pass
    return total


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_seconds() -> float | None:
    """CPU-seconds the whole machine was busy since boot (user..steal), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / _CLK_TCK  # minus idle and iowait


class LoadMeter:
    """Average number of CPUs kept busy by anything but this process (other
    processes, hypervisor steal) between start() and stop()."""

    def start(self):
        self.b0, self.o0, self.w0 = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
        return self

    def stop(self) -> float | None:
        b1, o1, w1 = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
        if self.b0 is None or b1 is None or w1 <= self.w0:
            return None
        return max(0.0, ((b1 - self.b0) - (o1 - self.o0)) / (w1 - self.w0))


def wait_for_idle(max_wait: float, threshold: float = 0.25, sample: float = 0.2) -> float | None:
    """Sample the other processes' load; while above threshold CPUs, wait (at
    most max_wait seconds).  Returns the last sample."""
    t_end = time.perf_counter() + max_wait
    while True:
        m = LoadMeter().start()
        time.sleep(sample)
        load = m.stop()
        if load is None or load <= threshold or time.perf_counter() >= t_end:
            return load


def settle(max_s: float = 0.25, step: float = 0.002, quiet: float = 0.05) -> None:
    """Wait until this process's worker threads stop burning CPU.

    Thread pools spin for a while after a call (ONNX Runtime's for 40-60 ms,
    OpenMP's briefly) and on a 2-core machine that spinning steals a core
    from whichever library runs next.  The main thread sleeps in small
    steps until its process's other threads use less than ``quiet`` of a
    CPU (threads_cpu_seconds)."""
    t_end = time.perf_counter() + max_s
    while True:
        c0, w0 = threads_cpu_seconds(), time.perf_counter()
        time.sleep(step)
        c1, w1 = threads_cpu_seconds(), time.perf_counter()
        if (c1 - c0) / (w1 - w0) < quiet or w1 >= t_end:
            return


def run_rounds(runners: dict, rounds: int, settle_between: bool,
               times: dict | None = None) -> float:
    """Interleaved rounds (each library once per round, in order); appends to
    times[lib] when given.  Returns the wall time per round, settling included."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    w0 = time.perf_counter()
    try:
        for _ in range(rounds):
            for lib, fn in runners.items():
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if times is not None:
                    times[lib].append(dt)
                if settle_between:
                    settle()
    finally:
        if was:
            gc.enable()
    return (time.perf_counter() - w0) / max(rounds, 1)


def plan_repeats(per_round: float, spent: float, args) -> int:
    """Timed repeats: about target_seconds of rounds, at least min_repeats,
    and all within max_seconds_per_case (at least 1)."""
    reps = int(round(args.target_seconds / max(per_round, 1e-6)))
    reps = max(args.min_repeats, min(args.max_repeats, reps))
    room = args.max_seconds_per_case - spent
    if reps * per_round > room:
        reps = max(1, int(room / per_round))
    return reps


# --------------------------------------------------------------------------
# The benchmark proper
# --------------------------------------------------------------------------

@dataclass
class Row:
    case: Case
    ms: dict = field(default_factory=dict)        # lib -> median ms or None
    status: dict = field(default_factory=dict)    # lib -> "ok" | reason
    reps: int = 0
    warmups: int = 0
    raw_s: dict = field(default_factory=dict)     # lib -> list of seconds
    check: dict = field(default_factory=dict)
    mismatch: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    other_cpus: float | None = None                # CPUs used by other processes meanwhile
    spread: dict = field(default_factory=dict)     # lib -> IQR / median

    def gflops(self, lib):
        ms = self.ms.get(lib)
        return self.case.flops() / (ms * 1e-3) / 1e9 if ms else None

    def ratio(self, peer, lib="rnncore"):
        a, b = self.ms.get(lib), self.ms.get(peer)
        return a / b if a and b else None

    def to_json(self):
        c = self.case
        return {
            "cell": c.cell, "pass": c.pass_, "T": c.T, "B": c.B, "I": c.I, "H": c.H,
            "threads": c.threads, "flops": c.flops(),
            "ms": self.ms, "status": self.status,
            "gflops": {lib: self.gflops(lib) for lib in LIBS},
            "ratio_rnncore_over_torch": self.ratio("torch"),
            "ratio_rnncore_over_ort": self.ratio("ort"),
            "ratio_prepacked_over_torch": self.ratio("torch", "prepacked"),
            "ratio_prepacked_over_ort": self.ratio("ort", "prepacked"),
            "warmups": self.warmups, "repeats": self.reps,
            "times_s": self.raw_s, "check_rel_diff": self.check,
            "iqr_over_median": self.spread, "other_cpus": self.other_cpus,
            "mismatch": self.mismatch, "notes": self.notes, "case_seconds": self.seconds,
        }


class Bench:
    def __init__(self, args, np, rnncore, F, torch, ort):
        self.args, self.np, self.rnncore, self.F, self.torch, self.ort = args, np, rnncore, F, torch, ort
        self.has_threads = hasattr(rnncore, "set_num_threads")
        self.stored = {}     # case.key -> {"lib", "threads", "outs"} for cross-thread checks
        self.bilstm_params = None
        self.busy_waits = 0  # consecutive waits for an idle machine that timed out

    # -- thread control
    def set_threads(self, n: int) -> bool:
        """True when rnncore can run on n threads."""
        if self.torch is not None:
            self.torch.set_num_threads(n)
        if self.has_threads:
            self.rnncore.set_num_threads(n)
            got = self.rnncore.cpu_info().get("num_threads")
            if got != n:
                log(f"WARNING: rnncore.set_num_threads({n}) but cpu_info says num_threads={got}")
            return True
        return int(self.rnncore.cpu_info().get("num_threads", 1)) == n

    # -- building the runners of a case
    def runners(self, case: Case, want_rnncore: bool, status: dict, notes: list):
        np, T, B, I, H = self.np, case.T, case.B, case.I, case.H
        out = {}
        if case.cell == "bilstm2":
            if self.bilstm_params is None or self.bilstm_params[0] != (I, H):
                try:
                    layer = self.rnncore.LSTM(I, H, num_layers=2, bidirectional=True,
                                              seed=self.args.seed)
                except TypeError:
                    layer = self.rnncore.LSTM(I, H, num_layers=2, bidirectional=True)
                self.bilstm_params = ((I, H), layer, {k: np.array(v, np.float32)
                                                       for k, v in layer.params.items()})
            _, layer, params = self.bilstm_params
            rng = np.random.default_rng([self.args.seed, T, B, I, H, 99])
            x = rng.standard_normal((T, B, I), dtype=np.float32)
            dy = rng.uniform(-1, 1, size=(T, B, 2 * H)).astype(np.float32)
            if want_rnncore:
                r = rnncore_bilstm2(self.rnncore, np, case.pass_, layer, x, dy)
                if r.note:
                    notes.append(r.note)
                out["rnncore"] = r
                if case.pass_ == "fwd" and hasattr(layer, "prepacked"):
                    frozen = layer.prepacked()

                    def extract(r):
                        y, (h, c) = r
                        return {"y": y, "h_n": h, "c_n": c}
                    out["prepacked"] = Runner(lambda: frozen(x), extract)
            if self.torch is not None:
                out["torch"] = torch_bilstm2(self.torch, case.pass_, params, x, dy, I, H)
            if self.ort is not None and case.pass_ == "fwd":
                out["ort"] = ort_bilstm2(self.ort, np, params, x, T, B, I, H, case.threads)
            return out
        d = make_data(np, case.cell, T, B, I, H, self.args.seed)
        if want_rnncore:
            out["rnncore"] = rnncore_single(np, self.F, case.cell, case.pass_, d)
            if case.pass_ == "fwd" and hasattr(self.F, "PrepackedLSTM"):
                out["prepacked"] = rnncore_prepacked(np, self.F, case.cell, d)
        if self.torch is not None:
            out["torch"] = torch_single(np, self.torch, case.cell, case.pass_, d, T, B, I, H)
        if self.ort is not None and case.pass_ == "fwd":
            out["ort"] = ort_single(self.ort, np, case.cell, d, T, B, I, H, case.threads)
        return out

    def probe_rnncore(self, case: Case) -> float:
        """Predicted seconds of one rnncore run: a 1-step run of the same B, I, H, times T."""
        np = self.np
        if case.cell == "bilstm2":
            # no cheap probe through the layer API: use two single-direction LSTM probes per layer
            probe = Case("lstm", case.pass_, 1, case.B, case.I, case.H, case.threads)
            p1 = self.probe_rnncore(probe)
            probe2 = Case("lstm", case.pass_, 1, case.B, 2 * case.H, case.H, case.threads)
            p2 = self.probe_rnncore(probe2)
            return 2 * (p1 + p2) * case.T
        d = make_data(np, case.cell, 1, case.B, case.I, case.H, self.args.seed)
        r = rnncore_single(np, self.F, case.cell, case.pass_, d)
        t, _ = time_once(r.run)
        if t < 0.2:  # cheap: time a second, warm call
            t, _ = time_once(r.run)
        return t * case.T

    def run_case(self, case: Case) -> Row:
        args = self.args
        row = Row(case)
        if args.wait_idle > 0 and self.busy_waits < 3:
            load = wait_for_idle(args.wait_idle)
            if load is not None and load > 0.25:
                self.busy_waits += 1
                if self.busy_waits == 3:
                    log(f"the machine stayed busy through 3 waits of {args.wait_idle:g} s: "
                        "no more waiting; expect NOISY rows")
            else:
                self.busy_waits = 0
        t_case = time.perf_counter()
        meter = LoadMeter().start()
        try:
            self._run_case(case, row, t_case)
        finally:
            row.other_cpus = meter.stop()
            row.seconds = time.perf_counter() - t_case
        if row.other_cpus is not None and row.other_cpus > NOISY_CPUS:
            row.notes.append("NOISY (other CPU)")
        return row

    def _run_case(self, case: Case, row: Row, t_case: float) -> None:
        args, np = self.args, self.np
        rn_ok = self.set_threads(case.threads)
        want_rn = True
        if not rn_ok:
            want_rn = False
            row.status["rnncore"] = "n/a (no thread pool)"
        else:
            pred = self.probe_rnncore(case)
            if 2 * pred > args.max_seconds_per_case:
                want_rn = False
                row.status["rnncore"] = f"skip (~{pred:.0f} s/run)"
                row.notes.append(
                    f"rnncore not timed: predicted {pred:.1f} s per run (1-step probe x T); "
                    f"check run + 1 timed run > --max-seconds-per-case={args.max_seconds_per_case:g}")
        if self.torch is None:
            row.status["torch"] = "n/a (torch not installed)"
        if self.ort is None:
            row.status["ort"] = "n/a (onnxruntime not installed)"
        elif case.pass_ == "fwdbwd":
            row.status["ort"] = "-"  # inference only
        if case.pass_ == "fwdbwd":
            row.status["prepacked"] = "-"  # inference only

        try:
            runners = self.runners(case, want_rn, row.status, row.notes)
        except Exception as e:  # a library refusing the case is a result, not a crash
            msg = f"setup failed: {type(e).__name__}: {e}"
            row.notes.append(msg)
            row.mismatch.append(msg)
            log(f"!! {case.label()}: {msg}")
            return
        if not runners:
            return
        runs = {lib: r.run for lib, r in runners.items()}
        settle_between = case.threads > 1

        # Check round = warm-up 1: every library once, outputs compared.
        durations, outs = {}, {}
        for lib, r in runners.items():
            dt, res = time_once(r.run)
            durations[lib] = dt
            outs[lib] = r.extract(res)
            del res
            if settle_between:
                settle()
        ref = "torch" if "torch" in outs else next(iter(outs))
        stored = self.stored.get(case.key)
        ok, lines, worst, culprits = compare(np, outs, ref, stored)
        row.check = worst
        if stored is None and len(args.threads) > 1:
            lib0 = "rnncore" if "rnncore" in outs else ref
            self.stored[case.key] = {"lib": lib0, "threads": case.threads, "outs": outs[lib0]}
        if len(outs) == 1 and stored is None:
            row.notes.append("no cross-check possible (one library only)")
        del outs
        if not ok:
            row.mismatch = lines
            log("!" * 78)
            log(f"!! MISMATCH, case aborted: {case.label()}")
            for ln in lines:
                log(f"!!   {ln}")
            log("!" * 78)
            for lib in runners:
                row.status[lib] = "MISMATCH" if lib in culprits else "aborted"
            return

        # More warm-up while it is cheap; the last warm-up round sizes the repeats.
        # The check round is a poor estimate (first calls pay one-time costs), so
        # a second warm-up round runs whenever the budget allows it and sizes the
        # repeats; a third one when it is cheap.
        per_round = sum(durations.values())
        warm = 1
        spent = time.perf_counter() - t_case
        if spent + per_round * (1 + args.min_repeats) <= args.max_seconds_per_case:
            per_round = run_rounds(runs, 1, settle_between)
            warm += 1
            if per_round <= args.target_seconds / 10:
                per_round = run_rounds(runs, 1, settle_between)
                warm += 1
        reps = plan_repeats(per_round, time.perf_counter() - t_case, args)
        times = {lib: [] for lib in runs}
        run_rounds(runs, reps, settle_between, times)
        row.warmups, row.reps = warm, reps
        for lib, ts in times.items():
            row.raw_s[lib] = ts
            row.ms[lib] = statistics.median(ts) * 1e3
            row.status[lib] = "ok"
            if len(ts) >= 4:
                q = statistics.quantiles(ts, n=4)
                row.spread[lib] = (q[2] - q[0]) / statistics.median(ts)
        if reps < 3:
            row.notes.append(f"only {reps} timed repeat(s) (case budget)")
        noisy = [f"{lib} {v:.0%}" for lib, v in row.spread.items() if v > 0.10]
        if noisy:
            row.notes.append("IQR/median " + ", ".join(noisy))


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def fmt_ms(v) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_ratio(v) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_gflops(v) -> str:
    if not v:
        return "-"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def cell_ms(row: Row, lib: str) -> str:
    if row.ms.get(lib) is not None:
        return fmt_ms(row.ms[lib])
    return row.status.get(lib, "-")


def markdown(info: dict, limits: list, rows: list, skipped: list, args) -> str:
    L = []
    L.append("# rnncore vs PyTorch vs ONNX Runtime")
    L.append("")
    ci = info["rnncore_cpu_info"]
    L.append(f"- CPU: {info['cpu']} ({info['logical_cpus']} logical CPUs); {info['platform']}")
    L.append(f"- rnncore {info['rnncore']} (kernels: {ci.get('isa')}, "
             f"num_threads={ci.get('num_threads')}, set_num_threads: "
             f"{'yes' if info['rnncore_has_set_num_threads'] else 'no'}, LSTM layer: "
             f"{'yes' if info['rnncore_has_LSTM'] else 'no'}); torch {info['torch']} "
             f"(oneDNN: {info['torch_mkldnn']}); onnxruntime {info['onnxruntime']} "
             f"(onnx {info['onnx']}); numpy {info['numpy']}; Python {info['python']}")
    L.append(f"- threads: {', '.join(map(str, args.threads))} (torch.set_num_threads, ORT "
             "intra_op=n inter_op=1 sequential, rnncore.set_num_threads)")
    env = info["env"]
    L.append(f"- environment: {', '.join(f'{k}={v}' for k, v in env.items()) if env else 'none of the thread/BLAS variables set'}")
    L.append(f"- timing: check run (= warm-up 1), up to 2 more warm-up rounds, interleaved repeats "
             f"(rnncore, prepacked, torch, ORT, rnncore, ...), median; ~{args.target_seconds:g} s per case, "
             f">= {args.min_repeats} repeats unless a case would exceed "
             f"{args.max_seconds_per_case:g} s; at > 1 thread the harness waits after each run "
             "until the process's worker threads stop spinning (untimed)")
    L.append(f"- agreement before timing: max |diff| / max |torch| <= {RTOL:g} for every output "
             "(and every gradient for fwd+bwd), else the case is aborted")
    la = info.get("loadavg")
    L.append(f"- other CPU = CPUs kept busy by other processes during the case (/proc/stat minus "
             f"this process); rows above {NOISY_CPUS:g} are flagged noisy"
             + (f"; load average at start: {la}" if la else ""))
    L.append("- prepacked = the same forward through rnncore.functional.PrepackedLSTM/GRU/RNN "
             "(LSTM.prepacked() for the 2-layer bidirectional LSTM): weights copied and packed once, "
             "before timing, as ORT's session is made once")
    L.append("- ratio = rnncore time / peer time (< 1: rnncore faster). "
             "GFLOP/s: forward 2*T*B*G*H*(I+H), G = 4 LSTM, 3 GRU, 1 RNN; fwd+bwd counts 3x forward")
    L.append("")
    if limits:
        L.append("## Practical limit: NumPy float32 matmul 2048x2048")
        L.append("")
        L.append("| threads | environment | GFLOP/s (median) | GFLOP/s (best) | BLAS |")
        L.append("|---:|---|---:|---:|---|")
        for r in limits:
            envd = "as given" if not r.get("clean_env") else (
                "unset " + ", ".join(r["unset"]) if r.get("unset") else "clean")
            if "error" in r:
                L.append(f"| {r['threads']} | {envd} | error | | {r['error'][:80]} |")
                continue
            pools = r.get("pools") or []
            blas = "; ".join(f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} "
                             f"({p.get('num_threads')} thr)" for p in pools) or "?"
            if r.get("kept"):
                envd += " (" + ", ".join(f"{k}={v}" for k, v in r["kept"].items()) + ")"
            L.append(f"| {r['threads']} | {envd} | {r['gflops']:.1f} | {r['gflops_best']:.1f} | {blas} |")
        L.append("")
    L.append("## Results (milliseconds, median)")
    L.append("")
    L.append("| cell | pass | T | B | I | H | thr | rnncore ms | prepacked ms | torch ms | ORT ms | "
             "rnncore GFLOP/s | rnncore/torch | rnncore/ORT | prepacked/torch | prepacked/ORT | "
             "reps | other CPU | notes |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
             "---:|---:|---|")
    for row in rows:
        c = row.case
        g = row.gflops("rnncore")
        notes = "; ".join(row.notes + (["MISMATCH: " + " | ".join(row.mismatch)] if row.mismatch else []))
        L.append(f"| {CELL_LABEL[c.cell]} | {PASS_LABEL[c.pass_]} | {c.T} | {c.B} | {c.I} | {c.H} | "
                 f"{c.threads} | {cell_ms(row, 'rnncore')} | {cell_ms(row, 'prepacked')} | "
                 f"{cell_ms(row, 'torch')} | {cell_ms(row, 'ort')} | {fmt_gflops(g)} | "
                 f"{fmt_ratio(row.ratio('torch'))} | {fmt_ratio(row.ratio('ort'))} | "
                 f"{fmt_ratio(row.ratio('torch', 'prepacked'))} | "
                 f"{fmt_ratio(row.ratio('ort', 'prepacked'))} | "
                 f"{row.reps or '-'} | "
                 f"{'-' if row.other_cpus is None else f'{row.other_cpus:.2f}'} | {notes} |")
    L.append("")
    for s in skipped:
        L.append(f"- {s}")
    if skipped:
        L.append("")
    return "\n".join(L)


# --------------------------------------------------------------------------
# Memory mode
# --------------------------------------------------------------------------

def _status_kib() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def memory_child(lib: str, mode: str, shape) -> None:
    """Runs in a fresh interpreter: one LSTM forward, peak RSS growth."""
    import numpy as np
    T, B, I, H = shape
    train = mode == "train"
    if lib == "torch":
        import torch
        torch.set_num_threads(1)
    else:
        import rnncore
        from rnncore import functional as F
        if hasattr(rnncore, "set_num_threads"):
            rnncore.set_num_threads(1)
    d = make_data(np, "lstm", T, B, I, H, 0)
    if lib == "torch":
        mod = torch.nn.LSTM(I, H)
        with torch.no_grad():
            for n, k in (("weight_ih_l0", "w_ih"), ("weight_hh_l0", "w_hh"),
                         ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")):
                getattr(mod, n).copy_(torch.from_numpy(d[k]))
        x = torch.from_numpy(d["x"]).requires_grad_(train)
        hx = (torch.from_numpy(d["h0"])[None].clone(), torch.from_numpy(d["c0"])[None].clone())
        # warm the library up on a tiny input so one-time allocations are not counted
        with torch.no_grad():
            mod(x[:1].detach(), hx)
    else:
        x = d["x"]
        F.lstm_forward(x[:1], d["h0"], d["c0"], d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"],
                       keep_cache=False)
    gc.collect()
    before = _status_kib()
    reset = False
    try:  # reset the high-water mark (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = _status_kib()["VmHWM"] <= before["VmRSS"] + 1024
    except OSError:
        pass
    base = before["VmRSS"] if reset else max(before["VmRSS"], before["VmHWM"])
    t0 = time.perf_counter()
    if lib == "torch":
        if train:
            result = mod(x, hx)
        else:
            with torch.no_grad():
                result = mod(x, hx)
    else:
        result = F.lstm_forward(x, d["h0"], d["c0"], d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"],
                                keep_cache=train)
    secs = time.perf_counter() - t0
    after = _status_kib()
    y_bytes = T * B * H * 4
    print(json.dumps({
        "lib": lib, "mode": mode, "shape": [T, B, I, H], "seconds": secs,
        "hwm_reset": reset, "base_rss_mib": base / 1024,
        "peak_growth_mib": (after["VmHWM"] - base) / 1024,
        "retained_mib": (after["VmRSS"] - before["VmRSS"]) / 1024,
        "output_y_mib": y_bytes / 2 ** 20,
    }))
    del result


def memory_mode(args) -> int:
    T, B, I, H = args.memory_shape
    results = []
    libs = ["rnncore"]
    if importlib.util.find_spec("torch") is not None:
        libs.append("torch")
    else:
        log("torch not installed: memory of rnncore only")
    for mode in args.memory_modes:
        for lib in libs:
            log(f"memory: {lib} {mode} forward T={T} B={B} I={I} H={H} (fresh process) ...")
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--_memory-child", lib, mode,
                                "--memory-shape", f"{T}x{B}x{I}x{H}"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                log(r.stderr)
                results.append({"lib": lib, "mode": mode, "error": r.stderr.strip()[-500:]})
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            log(f"  {res['peak_growth_mib']:.1f} MiB peak growth, {res['seconds']:.1f} s")
            results.append(res)
    L = ["# rnncore vs PyTorch: peak memory of one LSTM forward", "",
         f"- CPU: {cpu_model()}; shape T={T} B={B} I={I} H={H}, float32, 1 thread, "
         "a fresh process per library and mode",
         "- peak growth: VmHWM after the forward minus VmRSS before it (the high-water mark is "
         "reset through /proc/self/clear_refs), so it counts C++ allocations too; "
         "retained: RSS still held after the forward (outputs + cache)",
         "- train: rnncore keep_cache=True, torch autograd on (x and weights require grad); "
         "infer: rnncore keep_cache=False, torch.no_grad()", "",
         "| library | mode | peak growth MiB | retained MiB | output y MiB | seconds | HWM reset |",
         "|---|---|---:|---:|---:|---:|---|"]
    for r in results:
        if "error" in r:
            L.append(f"| {r['lib']} | {r['mode']} | error | | | | {r['error'][:60]} |")
        else:
            L.append(f"| {r['lib']} | {r['mode']} | {r['peak_growth_mib']:.1f} | {r['retained_mib']:.1f} | "
                     f"{r['output_y_mib']:.1f} | {r['seconds']:.1f} | {'yes' if r['hwm_reset'] else 'no (lower bound)'} |")
    print("\n".join(L))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"memory": results, "cpu": cpu_model()}, f, indent=2)
    return 1 if any("error" in r for r in results) else 0


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    if args._memory_child:
        memory_child(args._memory_child[0], args._memory_child[1], args.memory_shape)
        return 0
    if args.memory:
        return memory_mode(args)

    t_start = time.perf_counter()
    # Limits of the machine first, in fresh processes, before this one starts threads.
    limits = []
    if not args.no_numpy_limit:
        dirty = [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
        for n in args.threads:
            log(f"numpy matmul {MATMUL_N}x{MATMUL_N} float32, {n} thread(s) ...")
            limits.append(numpy_limit(n, clean=True))
            if dirty:  # also show what the environment as given costs
                limits.append(numpy_limit(n, clean=False))

    import numpy as np
    import rnncore
    from rnncore import functional as F
    try:
        import torch
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
    except ImportError:
        torch = None
        log("WARNING: torch is not installed: pip install 'torch==2.13.0' (or .[bench])")
    try:
        import onnxruntime as ort
        if importlib.util.find_spec("onnx") is None:
            raise ImportError("onnx")
    except ImportError:
        ort = None
        log("WARNING: onnx/onnxruntime not installed: pip install onnx onnxruntime")

    info = machine_info(rnncore, torch, ort, np)
    bench = Bench(args, np, rnncore, F, torch, ort)
    skipped = []
    if not bench.has_threads:
        msg = ("rnncore has no set_num_threads (no thread pool yet): rnncore runs on "
               f"{info['rnncore_cpu_info'].get('num_threads')} thread(s) only; "
               "its rows at other thread counts are n/a")
        skipped.append(msg)
        log(msg)

    cases = []
    for (T, B, I, H) in args.shapes:
        for cell in args.cells:
            if cell == "bilstm2":
                continue
            for ps in args.passes:
                for n in args.threads:
                    cases.append(Case(cell, ps, T, B, I, H, n))
    if "bilstm2" in args.cells:
        if hasattr(rnncore, "LSTM"):
            T, B, I, H = BILSTM_SHAPE
            for ps in args.passes:
                for n in args.threads:
                    cases.append(Case("bilstm2", ps, T, B, I, H, n))
        else:
            msg = ("2-layer bidirectional LSTM (T=50 B=64 I=H=256) skipped: rnncore.LSTM "
                   "does not exist yet")
            skipped.append(msg)
            log(msg)

    rows = []
    for i, case in enumerate(cases, 1):
        log(f"[{i}/{len(cases)}] {case.label()} ...")
        row = bench.run_case(case)
        rows.append(row)
        bits = [f"{lib} {fmt_ms(row.ms.get(lib))} ms" if row.ms.get(lib) else f"{lib} {row.status.get(lib, '-')}"
                for lib in LIBS]
        log(f"      {', '.join(bits)}; {row.reps} reps, {row.seconds:.1f} s")
        bench.stored = {k: v for k, v in bench.stored.items() if k == case.key}

    md = markdown(info, limits, rows, skipped, args)
    total = time.perf_counter() - t_start
    print(md)
    print(f"Total time {total:.0f} s.")
    mismatches = [r for r in rows if r.mismatch]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "settings": {
                "threads": args.threads, "target_seconds": args.target_seconds,
                "max_seconds_per_case": args.max_seconds_per_case,
                "min_repeats": args.min_repeats, "rtol": RTOL, "seed": args.seed,
                "quick": args.quick},
                "numpy_matmul_limit": limits, "rows": [r.to_json() for r in rows],
                "skipped": skipped, "total_seconds": total}, f, indent=2)
        log(f"JSON written to {args.json}")
    if mismatches:
        log(f"{len(mismatches)} case(s) MISMATCHED: see the notes column")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
