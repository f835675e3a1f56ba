"""The adding problem: can a recurrent net add two numbers it saw up to T steps ago?

Task (Arjovsky, Shah & Bengio 2016, "Unitary Evolution Recurrent Neural
Networks", in the form of Le, Jaitly & Hinton 2015, after Hochreiter &
Schmidhuber 1997): each sequence has T steps of two inputs, a value drawn
from U[0, 1) and a marker that is 1 at exactly two steps -- one in the first
half, one in the second half -- and 0 elsewhere.  The target is the sum of
the two marked values, read from the output at the last step (many to one),
with the mean squared error as loss.  Every training step draws a fresh
batch (infinite data, as in the papers).

Reported, per cell and T: the MSE on 1000 fixed test sequences when training
ends, against the baseline of always predicting 1 (the expected sum), whose
MSE is the variance of a sum of two U[0, 1) values, 2/12 = 1/6 = 0.167.
Training stops after ``--steps`` steps, or earlier once the test MSE,
measured every 100 steps, is below ``--stop``.  The PNG shows the test MSE
every 100 steps (one "epoch" on its x axis is 100 steps).

Model: one recurrent layer of ``--hidden`` units and a linear head on its
last output; Adam, joint gradient norm clipped to 1.  The gate that keeps
the state (the LSTM's forget gate, the GRU's update gate) starts with bias
3 (``--keep-bias``; 0 keeps PyTorch's initialisation), as in copying.py and
temporal_order.py, where it matters more.  Here it mostly saves time: with
PyTorch's initialisation the gradient reaching the first marker at T = 200
is so small that it turns into subnormal floats, which made the LSTM's
backward pass about ten times slower in our runs.  The tanh RNN, expected
to fail, gets fewer steps (``--rnn-steps``) so that the default grid runs
in under 3 minutes; given the budget of the others (``--rnn-steps 4000``)
it stayed at the baseline too in our runs (test MSE 0.180 at T = 100, 0.174
at T = 200).  One thread by default (``--threads``): at these sizes a
second thread saves little on an idle machine (5%) and made training four
times slower when another process kept one core busy (2 cores).

Command::

    python examples/adding.py                      # LSTM, GRU, RNN at T = 100, 200
    python examples/adding.py --cells lstm --T 400 --steps 6000
"""

import _common

import math

import numpy as np

import rnncore
from rnncore import losses, nn, optim

CELLS = {"lstm": rnncore.LSTM, "gru": rnncore.GRU, "rnn": rnncore.RNN}
BASELINE = 1 / 6  # MSE of always predicting 1: Var(u1 + u2) for u ~ U[0, 1)
EVAL_EVERY = 100  # steps between measurements of the test MSE
PUBLISHED = ("Arjovsky et al. 2016 and Le et al. 2015: LSTM solves the adding problem at these T "
             "(Arjovsky: up to T = 750); the tanh RNN stays at the baseline at long T")


def batch(rng, T, B):
    """``B`` adding-problem sequences: inputs ``x [T, B, 2]`` and targets ``[B, 1]``."""
    x = np.zeros((T, B, 2), np.float32)
    x[:, :, 0] = rng.random((T, B))
    first, second = rng.integers(0, T // 2, B), rng.integers(T // 2, T, B)
    b = np.arange(B)
    x[first, b, 1] = 1.0
    x[second, b, 1] = 1.0
    return x, (x[first, b, 0] + x[second, b, 0])[:, None]


def gate_bias(layer, gate, value):
    """Start gate number ``gate`` of the first layer with bias ``value`` (``bias_ih`` = value,
    ``bias_hh`` = 0); gates in PyTorch's order, LSTM i, f, g, o and GRU r, z, n."""
    rows = slice(gate * layer.hidden_size, (gate + 1) * layer.hidden_size)
    layer.params["bias_ih_l0"][rows] = value
    layer.params["bias_hh_l0"][rows] = 0.0


def keep_bias(layer, value):
    """Start the gate that keeps the state -- the LSTM's forget gate f, the GRU's update gate z,
    gate 1 of both -- with bias ``value``.  A tanh RNN has no such gate and 0 keeps PyTorch's
    initialisation: both are left alone."""
    if value and not isinstance(layer, rnncore.RNN):
        gate_bias(layer, 1, value)


class LastStep(nn.Module):
    """A recurrent layer read at its last step by a linear head: ``x [T, B, I] -> [B, O]``.

    Its parameters are named like a torch module with attributes ``rnn``
    and ``head`` (``rnn.weight_ih_l0``, ``head.weight``, ...).
    """

    def __init__(self, cell, input_size, hidden_size, output_size, *, seed, dtype="float32"):
        super().__init__()
        self.rnn = CELLS[cell](input_size, hidden_size, dtype=dtype, seed=seed)
        self.head = nn.Linear(hidden_size, output_size, dtype=dtype, seed=seed)

    def forward(self, x):
        y, _ = self.rnn(x)
        self._cache = y.shape
        return self.head(y[-1])

    def backward(self, dout):
        dy = np.zeros(self._cached(), dout.dtype)
        dy[-1] = self.head.backward(dout)
        self.rnn.backward(dy)


def evaluate(model, x, target):
    """The model's MSE on ``(x, target)``, in inference mode."""
    model.eval()
    with rnncore.no_grad():
        mse = losses.mse_loss(model(x), target)[0]
    model.train()
    return mse


def train(model, draw, loss, lr, steps, measure, stop=-math.inf):
    """Train ``model`` with Adam on a fresh batch ``draw()`` per step, the joint gradient norm
    clipped to 1.

    ``measure(model)`` runs every EVAL_EVERY steps; training stops early once it is below
    ``stop``.  Returns the measurements and the number of steps run.
    """
    grads = model.grads  # live arrays: collected once
    opt = optim.Adam(model.params, lr=lr)
    curve = []
    for step in range(1, steps + 1):
        x, target = draw()
        model.zero_grad()
        _, dout = loss(model(x), target)
        model.backward(dout)
        rnncore.clip_grad_norm(grads, 1.0)
        opt.step(grads)
        if step % EVAL_EVERY == 0:
            curve.append(measure(model))
            if curve[-1] < stop:
                break
    return curve, step


def training_options(p, *, hidden: int, batch: int) -> None:
    """The options the long-range task scripts share (adding, copying, temporal order)."""
    p.add_argument("--cells", default="lstm,gru,rnn", help="comma-separated cells among lstm, gru, rnn")
    p.add_argument("--hidden", type=int, default=hidden)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--keep-bias", type=float, default=3.0,
                   help="initial bias of the LSTM's f and the GRU's z (0: PyTorch's initialisation)")
    p.add_argument("--threads", type=int, default=1)


def main():
    p = _common.parser(__doc__.splitlines()[0])
    training_options(p, hidden=32, batch=50)
    p.add_argument("--T", default="100,200", help="comma-separated sequence lengths")
    p.add_argument("--steps", type=int, default=4000, help="most training steps of the LSTM and the GRU")
    p.add_argument("--rnn-steps", type=int, default=1000, help="most training steps of the tanh RNN")
    p.add_argument("--stop", type=float, default=0.001, help="stop once the test MSE is below this")
    args = p.parse_args()
    cells = args.cells.split(",")
    lengths = [int(T) for T in args.T.split(",")]
    if args.quick:
        lengths, args.steps, args.rnn_steps = [20], 200, 200
    rnncore.set_num_threads(args.threads)

    curves = {}
    for T in lengths:
        train_seed, test_seed = np.random.SeedSequence([args.seed, T]).spawn(2)
        test = batch(np.random.default_rng(test_seed), T, 1000)
        for cell in cells:
            timer = _common.Timer()
            model = LastStep(cell, 2, args.hidden, 1, seed=args.seed)
            keep_bias(model.rnn, args.keep_bias)
            steps = args.rnn_steps if cell == "rnn" else args.steps
            rng = np.random.default_rng(train_seed)
            curve, steps_run = train(model, lambda: batch(rng, T, args.batch), losses.mse_loss, args.lr, steps,
                                     lambda m: evaluate(m, *test), args.stop)
            mse = evaluate(model, *test)
            curves[f"{cell.upper()} T={T}"] = curve
            _common.report(
                args, f"adding_{cell}_T{T}", task=f"adding problem, T={T}", paradigm="many-to-one regression",
                cell=cell.upper(), metric="test MSE", result=mse, baseline=BASELINE,
                baseline_name="always predict 1", seconds=timer(), published=PUBLISHED, higher_is_better=False,
                extra={"T": T, "steps": steps_run, "batch": args.batch, "hidden": args.hidden, "lr": args.lr,
                       "stopped_early": bool(curve) and curve[-1] < args.stop},
            )
    longest = max(len(c) for c in curves.values())
    curves["baseline (predict 1)"] = [BASELINE] * longest
    _common.plot(curves, args.out / "adding.png", title=f"adding problem (1 epoch = {EVAL_EVERY} steps)",
                 ylabel="test MSE", logy=True)


if __name__ == "__main__":
    main()
