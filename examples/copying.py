"""The copying memory task: recall 10 symbols after T blank steps.

Task (Arjovsky, Shah & Bengio 2016, "Unitary Evolution Recurrent Neural
Networks", after Hochreiter & Schmidhuber 1997): an alphabet of 10 symbols,
0 the blank and 9 the delimiter.  A sequence of length T + 20 starts with
10 symbols drawn from 1..8, then T - 1 blanks, the delimiter, and 10 more
blanks; the target is blank at the first T + 10 steps and the 10 starting
symbols, in order, at the last 10.  The net reads one-hot symbols and
outputs a softmax at every step (many to many, aligned); the loss is the
cross-entropy averaged over all T + 20 outputs.  Every training step draws
a fresh batch (infinite data).

Reported, per cell: the cross-entropy on 1000 fixed test sequences when
training ends, against the memoryless baseline -- blanks until the
delimiter, then a uniform guess among the 8 symbols -- whose cross-entropy
is 10 ln 8 / (T + 20); and, as an extra field, the accuracy on the 10
recalled symbols (chance: 1/8).  The PNG shows the test cross-entropy every
100 steps (one "epoch" on its x axis is 100 steps).

Model: one recurrent layer of ``--hidden`` units and a linear head at every
step; Adam, joint gradient norm clipped to 1.  The gate that keeps the
state (the LSTM's forget gate, the GRU's update gate) starts with bias 3
(``--keep-bias``; 0 keeps PyTorch's initialisation); in our runs it took
the GRU's cross-entropy from 0.23 to 0.10 (seed 0).  T = 50 by default so
that three cells train in under 3 minutes; the task gets harder with T
(``--T 100`` is Arjovsky's shortest).  One thread by default
(``--threads``): at these sizes a second thread saves little on an idle
machine (5%) and made training four times slower when another process kept
one core busy (2 cores).

Command::

    python examples/copying.py                       # LSTM, GRU, RNN at T = 50
    python examples/copying.py --cells lstm --T 100 --steps 20000
"""

import _common

import math

import numpy as np

import rnncore
from rnncore import losses, nn

from adding import CELLS, EVAL_EVERY, keep_bias, train, training_options

SYMBOLS = 10  # 0 blank, 1..8 the symbols to copy, 9 the delimiter
RECALL = 10  # symbols to copy
PUBLISHED = ("Arjovsky et al. 2016 (T = 100 and longer): the LSTM stays at the memoryless baseline "
             "for a long time before it learns to copy")


def batch(rng, T, B):
    """``B`` copying sequences: one-hot inputs ``[T+20, B, 10]`` and target symbols ``[T+20, B]``."""
    seq = np.zeros((T + 2 * RECALL, B), np.int64)
    seq[:RECALL] = rng.integers(1, SYMBOLS - 1, (RECALL, B))
    seq[T + RECALL - 1] = SYMBOLS - 1
    target = np.zeros_like(seq)
    target[-RECALL:] = seq[:RECALL]
    return np.eye(SYMBOLS, dtype=np.float32)[seq], target


class EveryStep(nn.Module):
    """A recurrent layer with a linear head at every step: ``x [T, B, I] -> [T, B, O]``."""

    def __init__(self, cell, input_size, hidden_size, output_size, *, seed):
        super().__init__()
        self.rnn = CELLS[cell](input_size, hidden_size, seed=seed)
        self.head = nn.Linear(hidden_size, output_size, seed=seed)

    def forward(self, x):
        return self.head(self.rnn(x)[0])

    def backward(self, dlogits):
        self.rnn.backward(self.head.backward(dlogits))


def evaluate(model, x, target):
    """Cross-entropy over all steps and accuracy on the recalled symbols, in inference mode."""
    model.eval()
    with rnncore.no_grad():
        logits = model(x)
    model.train()
    accuracy = (logits[-RECALL:].argmax(axis=-1) == target[-RECALL:]).mean()
    return losses.cross_entropy(logits, target)[0], float(accuracy)


def main():
    p = _common.parser(__doc__.splitlines()[0])
    training_options(p, hidden=64, batch=50)
    p.add_argument("--T", type=int, default=50, help="the lag: T - 1 blanks between the 10 symbols and the delimiter")
    p.add_argument("--steps", type=int, default=2000, help="training steps per cell")
    args = p.parse_args()
    if args.quick:
        args.T, args.steps = 10, 100
    rnncore.set_num_threads(args.threads)
    baseline = RECALL * math.log(SYMBOLS - 2) / (args.T + 2 * RECALL)

    train_seed, test_seed = np.random.SeedSequence([args.seed, args.T]).spawn(2)
    test = batch(np.random.default_rng(test_seed), args.T, 1000)
    curves = {}
    for cell in args.cells.split(","):
        timer = _common.Timer()
        model = EveryStep(cell, SYMBOLS, args.hidden, SYMBOLS, seed=args.seed)
        keep_bias(model.rnn, args.keep_bias)
        rng = np.random.default_rng(train_seed)
        curves[cell.upper()], _ = train(model, lambda: batch(rng, args.T, args.batch), losses.cross_entropy, args.lr,
                                        args.steps, lambda m: evaluate(m, *test)[0])
        cross_entropy, accuracy = evaluate(model, *test)
        _common.report(
            args, f"copying_{cell}", task=f"copying memory, T={args.T}", paradigm="many-to-many (aligned)",
            cell=cell.upper(), metric="test cross-entropy", result=cross_entropy, baseline=baseline,
            baseline_name="memoryless: 10 ln 8 / (T+20)", seconds=timer(), published=PUBLISHED,
            higher_is_better=False,
            extra={"T": args.T, "recall_accuracy": accuracy, "recall_chance": 1 / (SYMBOLS - 2), "steps": args.steps,
                   "batch": args.batch, "hidden": args.hidden, "lr": args.lr},
        )
    curves["memoryless baseline"] = [baseline] * max(len(c) for c in curves.values())
    _common.plot(curves, args.out / "copying.png", title=f"copying memory, T={args.T} (1 epoch = {EVAL_EVERY} steps)",
                 ylabel="test cross-entropy")


if __name__ == "__main__":
    main()
