"""rnncore.torch.LSTM / GRU / RNN: drop-in torch.nn modules on rnncore's kernels.

Compared with the torch.nn module of the same state_dict: outputs, final
states and every gradient for each way of passing sequences (padded, padded
with lengths, packed sorted and unsorted, batch_first, unbatched);
torch.autograd.gradcheck in float64; swapping the module into a model and
loading the model's state_dict; a training loop whose losses agree step by
step; no copies of contiguous parameters; errors."""

from __future__ import annotations

import numpy as np
import pytest

from cellcases import TOL

T, B, I, H = 5, 3, 4, 6
LENGTHS = [3, 5, 1]
CELLS = {
    "lstm": ("LSTM", {}),
    "lstm_proj": ("LSTM", {"proj_size": 2}),
    "gru": ("GRU", {}),
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
}
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")


@pytest.fixture(scope="module")
def rt(torch):
    import rnncore.torch

    return rnncore.torch


def build_pair(torch, rt, cell, dtype, **config):
    torch_name, options = CELLS[cell]
    ref = getattr(torch.nn, torch_name)(I, H, **options, **config, dtype=dtype)
    ours = getattr(rt, torch_name)(I, H, **options, **config, dtype=dtype)
    assert isinstance(ours, type(ref))
    assert ours.load_state_dict(ref.state_dict()) is not None
    return ref, ours


def close(torch, a, b, dtype):
    scale = max(b.abs().max().item(), 1e-30)
    return (a - b).abs().max().item() / scale <= TOL[np.float32 if dtype == torch.float32 else np.float64]


def inputs(torch, mode, batch_first, dtype, state_shapes):
    """(input for both modules, lengths keyword for ours, leaf tensors to differentiate)."""
    from torch.nn.utils.rnn import pack_padded_sequence

    x = torch.randn((T, I) if mode == "unbatched" else (B, T, I) if batch_first else (T, B, I),
                    dtype=dtype, requires_grad=True)
    states = [torch.randn(s if mode != "unbatched" else (s[0], s[2]), dtype=dtype, requires_grad=True)
              for s in state_shapes]
    if mode.startswith("packed"):
        inp = pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=batch_first,
                                   enforce_sorted=False)
        if mode == "packed_sorted":
            order = torch.argsort(torch.tensor(LENGTHS), descending=True)
            x_sorted = x.index_select(0 if batch_first else 1, order)
            inp = pack_padded_sequence(x_sorted, torch.tensor(LENGTHS)[order], batch_first=batch_first)
            states = [s.detach()[:, order].requires_grad_() for s in states]
        return inp, None, x, states
    return x, (LENGTHS if mode == "lengths" else None), x, states


def unpacked(torch, y, batch_first):
    from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

    return pad_packed_sequence(y, batch_first=batch_first, total_length=T)[0] \
        if isinstance(y, PackedSequence) else y


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode,batch_first", [
    ("padded", False), ("lengths", True), ("packed_unsorted", False), ("packed_sorted", True),
    ("unbatched", True),
])
def test_matches_torch_nn(torch, rt, cell, mode, batch_first):
    torch.manual_seed(0)
    dtype = torch.float64
    ref, ours = build_pair(torch, rt, cell, dtype, num_layers=2, bidirectional=True,
                           batch_first=batch_first)
    H_out = ref.proj_size or H
    shapes = [(4, B, H_out)] + ([(4, B, H)] if ref.mode == "LSTM" else [])
    inp, lengths, x, states = inputs(torch, mode, batch_first, dtype, shapes)
    hx = tuple(states) if len(states) == 2 else states[0]
    if lengths is None:
        y_ref, f_ref = ref(inp, hx)
        y, f = ours(inp, hx)
    else:  # torch.nn takes lengths only as a packed sequence
        from torch.nn.utils.rnn import pack_padded_sequence

        y_ref, f_ref = ref(pack_padded_sequence(inp, torch.tensor(lengths), batch_first=batch_first,
                                                enforce_sorted=False), hx)
        y, f = ours(inp, hx, lengths=torch.tensor(lengths))
    if mode.startswith("packed"):
        assert torch.equal(y.batch_sizes, y_ref.batch_sizes)
        assert torch.equal(y.sorted_indices, y_ref.sorted_indices) if mode == "packed_unsorted" \
            else y.sorted_indices is None
    y, y_ref = unpacked(torch, y, batch_first), unpacked(torch, y_ref, batch_first)
    f, f_ref = (f, f_ref) if isinstance(f, tuple) else ((f,), (f_ref,))
    outputs = [(y, y_ref), *zip(f, f_ref)]
    for a, b in outputs:
        assert a.shape == b.shape and a.dtype == b.dtype and close(torch, a, b, dtype)
    leaves = [x, *states, *ours.parameters()]
    ref_leaves = [x, *states, *ref.parameters()]
    weights = [torch.randn_like(b) for _, b in outputs]
    loss = sum((w * a).sum() for w, (a, _) in zip(weights, outputs))
    loss_ref = sum((w * b).sum() for w, (_, b) in zip(weights, outputs))
    grads = torch.autograd.grad(loss, leaves, retain_graph=True)  # the packing is shared
    grads_ref = torch.autograd.grad(loss_ref, ref_leaves)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert close(torch, g, g_ref, dtype)


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_float64(torch, rt, cell):
    torch.manual_seed(1)
    torch_name, options = CELLS[cell]
    T, B, I, H = 3, 2, 2, 3
    ours = getattr(rt, torch_name)(I, H, **options, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    H_out = ours.proj_size or H
    states = [torch.randn(4, B, H_out, dtype=torch.float64, requires_grad=True)]
    if ours.mode == "LSTM":
        states.append(torch.randn(4, B, H, dtype=torch.float64, requires_grad=True))
    names = [name for name, _ in ours.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in ours.parameters()]

    def run(x, *rest):
        states, params = rest[:len(rest) - len(names)], rest[len(rest) - len(names):]
        hx = tuple(states) if len(states) == 2 else states[0]
        y, f = torch.func.functional_call(ours, dict(zip(names, params)), (x, hx),
                                          {"lengths": torch.tensor([3, 1])})
        return (y, *f) if isinstance(f, tuple) else (y, f)

    assert torch.autograd.gradcheck(run, (x, *states, *params))


def make_model(torch, rnn_cls):
    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn_cls(I, H, num_layers=2, bidirectional=True, batch_first=True)
            self.head = torch.nn.Linear(2 * H, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    return Tagger()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_loop_gives_torch_nn_losses(torch, rt, dtype):
    torch_dtype = getattr(torch, dtype)
    torch.manual_seed(2)
    ref = make_model(torch, torch.nn.LSTM).to(torch_dtype)
    ours = make_model(torch, rt.LSTM).to(torch_dtype)
    ours.load_state_dict(ref.state_dict())  # the swap: same model, other module
    x, target = torch.randn(B, T, I, dtype=torch_dtype), torch.randint(0, 2, (B, T))
    losses = []
    for model in (ref, ours):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.5)
        losses.append([])
        for _ in range(6):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 2), target.reshape(-1))
            loss.backward()
            optimizer.step()
            losses[-1].append(loss.item())
    rel = np.abs(np.subtract(*losses)) / np.abs(losses[0])
    assert rel.max() <= TOL[np.dtype(dtype).type]
    assert losses[1][-1] < losses[1][0]


def test_contiguous_memory_reaches_the_kernels_uncopied(torch, rt, monkeypatch):
    from rnncore import layers

    seen = {}
    forward = layers._Stack.forward

    def spy(self, params, x, states, lengths, dropout, keep_cache):
        seen.update(params=params, x=x, h0=states[0], keep_cache=keep_cache)
        return forward(self, params, x, states, lengths, dropout, keep_cache)

    monkeypatch.setattr(layers._Stack, "forward", spy)
    gru = rt.GRU(I, H, num_layers=2)
    x = torch.randn(T, B, I, requires_grad=True)
    h0 = torch.randn(2, B, H)
    y, _ = gru(x, h0)
    assert seen["x"].ctypes.data == x.data_ptr() and seen["h0"].ctypes.data == h0.data_ptr()
    for name, p in gru.named_parameters():
        assert seen["params"][name].ctypes.data == p.data_ptr()
    assert seen["keep_cache"]
    y.sum().backward()
    assert all(p.grad is not None for p in gru.parameters())
    with torch.no_grad():  # inference keeps no cache
        gru(x, h0)
    assert not seen["keep_cache"]


def test_dropout_uses_torch_generator_and_only_in_training(torch, rt):
    lstm = rt.LSTM(I, H, num_layers=3, dropout=0.5)
    x = torch.randn(T, B, I)
    torch.manual_seed(3)
    a = lstm(x)[0]
    torch.manual_seed(3)
    assert torch.equal(lstm(x)[0], a)
    assert not torch.equal(lstm(x)[0], a)
    lstm.eval()
    with torch.no_grad():
        assert torch.equal(lstm(x)[0], lstm(x)[0])


def test_errors(torch, rt):
    from torch.nn.utils.rnn import pack_sequence

    lstm = rt.LSTM(I, H, num_layers=2)
    x = torch.randn(T, B, I)
    packed = pack_sequence([torch.randn(2, I), torch.randn(4, I)], enforce_sorted=False)
    for call, error, pattern in [
        (lambda: lstm(x.double()), TypeError, "input must have dtype torch.float32"),
        (lambda: lstm(x.numpy()), TypeError, "input must be a torch.Tensor"),
        (lambda: lstm(x[None]), ValueError, "input must be 3-d"),
        (lambda: lstm(x, torch.zeros(2, B, H)), TypeError, "hx must be a tuple"),
        (lambda: lstm(x, (torch.zeros(3, B, H), torch.zeros(2, B, H))), ValueError,
         r"h0 must have shape \(2, 3, 6\)"),
        (lambda: lstm(packed, lengths=[2, 4]), ValueError, "lengths must be None"),
        (lambda: lstm(x, lengths=[6, 1, 1]), ValueError, "lengths"),
        (lambda: rt.LSTM(I, H).half()(x.half()), TypeError, "float32 and float64"),
    ]:
        with pytest.raises(error, match=pattern):
            call()
