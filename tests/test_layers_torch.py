"""rnncore.LSTM / GRU / RNN against torch.nn.LSTM / GRU / RNN on the same weights.

Compared: the output, every final state, and the gradients of the input,
of every initial state and of every parameter, for random output and
final-state gradients.  The weights go from torch to rnncore through
``load_state_dict`` with tensors; ``state_dict`` going back to torch is
checked separately.

Coverage: the full cross product of cell (LSTM, GRU, RNN tanh, RNN relu)
x num_layers {1, 3} x bidirectional x batch_first x lengths (torch: a
packed sequence) x bias x dtype, plus proj_size {0, 2} for the LSTM: every
axis and every pair of axes, at a few milliseconds per case.

Error measure: max |rnncore - torch| / max |torch| per array (cellcases.rel_err),
at most 1e-5 in float32 and 1e-10 in float64.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rnncore
from cellcases import TOL, rel_err

T, B, I, H = 5, 3, 4, 6
LENGTHS = np.array([3, 5, 1])  # unsorted, contains 1 and T
# torch's own float32 LSTM with projection falls back from oneDNN, and says so
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")
CELLS = {  # name: (rnncore class, torch.nn class name, constructor options)
    "lstm": (rnncore.LSTM, "LSTM", {}),
    "gru": (rnncore.GRU, "GRU", {}),
    "rnn_tanh": (rnncore.RNN, "RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": (rnncore.RNN, "RNN", {"nonlinearity": "relu"}),
}


def cases():
    for cell, L, bidir, batch_first, lengths, bias, dtype in itertools.product(
        CELLS, (1, 3), (False, True), (False, True), (False, True), (False, True),
        (np.float32, np.float64),
    ):
        for proj in (0, 2) if cell == "lstm" else (0,):
            config = dict(num_layers=L, bidirectional=bidir, batch_first=batch_first, bias=bias)
            if proj:
                config["proj_size"] = proj
            yield pytest.param(cell, config, lengths, dtype, id="-".join(
                [cell, f"L{L}", "bi" if bidir else "uni", "bf" if batch_first else "tm",
                 "len" if lengths else "full", "bias" if bias else "nobias",
                 np.dtype(dtype).name] + ([f"proj{proj}"] if proj else [])))


def build_pair(torch, cell, config, dtype, seed=0):
    """A torch.nn module and an rnncore layer with the same weights (torch's init)."""
    cls, torch_name, options = CELLS[cell]
    torch.manual_seed(seed)
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    ref = getattr(torch.nn, torch_name)(I, H, **options, **config, dtype=torch_dtype)
    layer = cls(I, H, **options, **config, dtype=np.dtype(dtype).name)
    layer.load_state_dict(ref.state_dict())
    return ref, layer


def random_arrays(layer, dtype, rng):
    """x, the initial states, and gradients for y and the final states (caller's layout)."""
    D = 2 if layer.bidirectional else 1
    H_out = getattr(layer, "proj_size", 0) or H
    state_shapes = [(layer.num_layers * D, B, H_out)]
    if isinstance(layer, rnncore.LSTM):
        state_shapes.append((layer.num_layers * D, B, H))
    seq = (B, T) if layer.batch_first else (T, B)

    def randn(*shape):
        return rng.standard_normal(shape).astype(dtype)

    return (randn(*seq, I), [randn(*s) for s in state_shapes], randn(*seq, D * H_out),
            [randn(*s) for s in state_shapes])


def torch_run(torch, ref, x, states, lengths, dy, dstates):
    """torch's forward (packed when lengths are given) and backward; returns arrays."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    inp = xt
    if lengths is not None:
        inp = pack_padded_sequence(xt, torch.tensor(lengths), batch_first=ref.batch_first,
                                   enforce_sorted=False)
    y, finals = ref(inp, tuple(st) if len(st) == 2 else st[0])
    if lengths is not None:
        y, _ = pad_packed_sequence(y, batch_first=ref.batch_first, total_length=T)
    finals = finals if isinstance(finals, tuple) else (finals,)
    torch.autograd.backward([y, *finals], [torch.tensor(dy), *map(torch.tensor, dstates)])
    out = {"y": y, "dx": xt.grad}
    out.update({f"state{i}": f for i, f in enumerate(finals)})
    out.update({f"dstate{i}": s.grad for i, s in enumerate(st)})
    out.update({name: p.grad for name, p in ref.named_parameters()})
    return {k: v.detach().numpy() for k, v in out.items()}


def rnncore_run(layer, x, states, lengths, dy, dstates):
    def pack(states):
        return tuple(states) if len(states) == 2 else states[0]

    y, finals = layer(x, pack(states), lengths=lengths)
    dx, d0 = layer.backward(dy, pack(dstates))
    finals, d0 = (finals, d0) if isinstance(finals, tuple) else ((finals,), (d0,))
    out = {"y": y, "dx": dx}
    out.update({f"state{i}": f for i, f in enumerate(finals)})
    out.update({f"dstate{i}": d for i, d in enumerate(d0)})
    out.update(layer.grads)
    return out


@pytest.mark.parametrize("cell,config,with_lengths,dtype", list(cases()))
def test_matches_torch(torch, cell, config, with_lengths, dtype, rng):
    ref, layer = build_pair(torch, cell, config, dtype)
    assert list(layer.params) == list(ref.state_dict())
    x, states, dy, dstates = random_arrays(layer, dtype, rng)
    lengths = LENGTHS if with_lengths else None
    expected = torch_run(torch, ref, x, states, lengths, dy, dstates)
    got = rnncore_run(layer, x, states, lengths, dy, dstates)
    assert got.keys() == expected.keys()
    for name, want in expected.items():
        assert got[name].dtype == dtype, name
        assert got[name].shape == want.shape, name
        assert rel_err(got[name], want) <= TOL[dtype], name


@pytest.mark.parametrize("cell", CELLS)
def test_eval_mode_has_no_dropout_like_torch(torch, cell, rng):
    ref, layer = build_pair(torch, cell, dict(num_layers=3, dropout=0.5), np.float64)
    ref.eval(), layer.eval()
    x = rng.standard_normal((T, B, I))
    y, _ = layer(x)
    assert rel_err(y, ref(torch.tensor(x))[0].detach().numpy()) <= TOL[np.float64]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("config", [dict(num_layers=2, bidirectional=True),
                                    dict(num_layers=2, bias=False, proj_size=3)], ids=["bi", "proj"])
def test_state_dict_round_trip_to_torch(torch, cell, config, rng):
    if "proj_size" in config and cell != "lstm":
        config = {k: v for k, v in config.items() if k != "proj_size"}
    cls, torch_name, options = CELLS[cell]
    layer = cls(I, H, **options, **config, dtype="float64", seed=3)
    ref = getattr(torch.nn, torch_name)(I, H, **options, **config, dtype=torch.float64)
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = rng.standard_normal((T, B, I))
    assert rel_err(layer(x)[0], ref(torch.tensor(x))[0].detach().numpy()) <= TOL[np.float64]
    back = cls(I, H, **options, **config, dtype="float64", seed=4)
    back.load_state_dict(ref.state_dict())
    for name, p in layer.params.items():
        np.testing.assert_array_equal(back.params[name], p)
