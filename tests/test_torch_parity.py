"""Parity of rnncore's cells with torch.nn.LSTM / GRU / RNN on the same weights.

Each implementation module (``rnncore.reference`` and ``rnncore.functional``,
same API) runs one layer in one direction; PyTorch runs the same weights.
Compared: outputs, final states and every gradient, for float32 and
float64, with and without lengths (PyTorch: a packed sequence), tanh and
relu for the dense cell, the LSTM with and without projection
(``proj_size``), both directions. A reverse direction is compared with the
reverse half of a bidirectional PyTorch module. Layers without biases are
compared once per variant and dtype (lengths, reverse): test_reference.py
shows that no bias computes exactly what zero biases do.

The paper GRU (``reset_after=False``) has no PyTorch counterpart; it is
checked in test_reference.py.

Error measure: cellcases.rel_err (max |ours - torch| / max |torch|) per
array, at most cellcases.TOL (1e-5 for float32, 1e-10 for float64).
"""

import importlib

import numpy as np
import pytest

from cellcases import (
    ALL_VARIANTS,
    TOL,
    arg_names,
    backward,
    forward,
    make_args,
    output_grads,
    output_size,
    padded,
    rel_err,
    state_names,
)

T, B, I, H = 5, 3, 4, 6
LENGTHS = np.array([3, 5, 1], dtype=np.int64)  # unsorted, includes 1 and T
TORCH_VARIANTS = [v for v in ALL_VARIANTS if v.options.get("reset_after", True)]
LAYOUTS = [  # lengths, reverse, bias
    pytest.param(None, False, True, id="full-forward"),
    pytest.param(None, True, True, id="full-reverse"),
    pytest.param(LENGTHS, False, True, id="lengths-forward"),
    pytest.param(LENGTHS, True, True, id="lengths-reverse"),
    pytest.param(LENGTHS, True, False, id="lengths-reverse-nobias"),
]


@pytest.fixture(params=["reference", "functional"])
def impl(request):
    return importlib.import_module("rnncore." + request.param)


def torch_layer(torch, v, bias, bidirectional, dtype):
    """The torch.nn module computing v (random weights, to be overwritten)."""
    options = {"nonlinearity": v.options["nonlinearity"]} if "nonlinearity" in v.options else {}
    if v.projected:
        options["proj_size"] = output_size(v, H)
    module_class = getattr(torch.nn, v.cell.upper())
    return module_class(I, H, bias=bias, bidirectional=bidirectional, dtype=dtype, **options)


def run_torch(torch, v, args, dy, dfinals, lengths, reverse):
    """Our forward ``args`` and loss weights in PyTorch; returns numpy (outputs, grads as a dict).

    For ``reverse`` the module is bidirectional: our weights go into its
    ``_reverse`` parameters, the loss only sees the reverse half of its
    outputs, so the forward half (random weights) contributes nothing.
    loss = Σ dy * y + Σ_k dfinals[k] * final_state[k].
    """
    named = dict(zip(arg_names(v), args))
    weights = {name: a for name, a in named.items() if name.startswith(("weight", "bias")) and a is not None}
    dtype = torch.float64 if named["x"].dtype == np.float64 else torch.float32
    D = 2 if reverse else 1
    torch.manual_seed(0)
    module = torch_layer(torch, v, "bias_ih" in weights, reverse, dtype)
    suffix = "_l0_reverse" if reverse else "_l0"
    with torch.no_grad():
        for name, value in weights.items():
            getattr(module, name + suffix).copy_(torch.from_numpy(value))

    x = torch.tensor(named["x"], requires_grad=True)
    # initial states [D,B,*]: ours in the last direction, zeros in the other
    states = {}
    for name in state_names(v):
        full = torch.zeros((D, *named[name].shape), dtype=dtype)
        full[D - 1] = torch.from_numpy(named[name])
        states[name] = full.requires_grad_(True)
    hx = tuple(states.values()) if v.cell == "lstm" else states["h0"]

    if lengths is None:
        y, finals = module(x, hx)
    else:
        rnn_utils = torch.nn.utils.rnn
        packed = rnn_utils.pack_padded_sequence(x, torch.from_numpy(lengths), enforce_sorted=False)
        y_packed, finals = module(packed, hx)
        y, _ = rnn_utils.pad_packed_sequence(y_packed, total_length=T)
    y = y.reshape(T, B, D, -1)[:, :, D - 1]
    finals = [f[D - 1] for f in (finals if v.cell == "lstm" else (finals,))]

    loss = (y * torch.from_numpy(dy)).sum()
    for f, d in zip(finals, dfinals):
        loss = loss + (f * torch.from_numpy(d)).sum()
    loss.backward()

    grads = {"dx": x.grad}
    grads.update({"d" + name: s.grad[D - 1] for name, s in states.items()})
    grads.update({"d" + name: getattr(module, name + suffix).grad for name in weights})
    outs = [y, *finals]
    return [o.detach().numpy() for o in outs], {name: g.numpy() for name, g in grads.items()}


def assert_matches_torch(name, ours, theirs, dtype):
    assert ours.dtype == dtype, f"{name}: dtype {ours.dtype}, expected {dtype}"
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape}, torch {theirs.shape}"
    err = rel_err(ours, theirs)
    assert err <= TOL[dtype], f"{name}: max |ours - torch| / max |torch| = {err:.2e} > {TOL[dtype]:.0e}"


# torch's own float32 LSTM with projection falls back from oneDNN, and says so
@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")
@pytest.mark.parametrize("lengths,reverse,bias", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("v", TORCH_VARIANTS, ids=str)
def test_matches_torch(impl, torch, v, dtype, lengths, reverse, bias):
    args = make_args(v, T, B, I, H, dtype, np.random.default_rng(0), bias=bias)
    outs, cache = forward(impl, v, args, lengths=lengths, reverse=reverse)
    dy, dfinals = output_grads(outs, np.random.default_rng(1))
    grads = backward(impl, v, cache, dy, dfinals)._asdict()
    outs_t, grads_t = run_torch(torch, v, args, dy, dfinals, lengths, reverse)

    assert len(outs) == len(outs_t) and set(grads_t) <= set(grads)
    for name, out, out_t in zip(("y", "h_n", "c_n"), outs, outs_t):
        assert_matches_torch(name, out, out_t, dtype)
    for name, g in grads.items():
        if name in grads_t:
            assert_matches_torch(name, g, grads_t[name], dtype)
        else:
            assert g is None, f"{name} must be None without that argument, got {type(g).__name__}"
    if lengths is not None:  # PyTorch pads with exact zeros; so must we
        pad = padded(lengths, T)
        assert np.all(outs[0][pad] == 0) and np.all(grads["dx"][pad] == 0)
