"""Training parity with PyTorch: one LSTM trained by rnncore and by torch from the same start.

Task: the adding problem of ``adding.py`` at T = 30 (a many-to-one LSTM of
64 units and a linear head on its last output).  rnncore's initial
parameters are copied into ``torch.nn.LSTM`` + ``torch.nn.Linear`` (the
state_dict names are the same), and both train in float32 on the same 40
pre-generated batches, in the same order every epoch, with the same loss
(MSE), the same gradient clipping (joint norm 1) and Adam with the same
lr, betas and eps (``rnncore.optim.Adam`` against ``torch.optim.Adam``).
Both use ``rnncore.get_num_threads()`` threads.

Reported: the largest relative difference between the two training losses
over the first epoch (result), next to the dtype's machine epsilon; as
extra fields the same per epoch, how many epochs stay within 100 epsilon,
the largest difference between the final parameters, and the seconds each
library spent training (and their ratio).  The PNG shows both loss curves
per step and their absolute difference on a log axis.

What to expect: the losses agree to float32 rounding (relative differences
of 1e-7 to 1e-6) while the net sits on the adding problem's plateau, about
six epochs; when it leaves the plateau, training amplifies those rounding
differences until the two runs follow visibly different (equally good)
paths.  ``--dtype float64`` shows that this is rounding: the losses then
agree to 1e-15 on the plateau, and the later gap is far smaller.

Needs torch (``pip install 'rnncore[torch]'``); exits with code 3 without it.

Command::

    python examples/torch_parity.py
    python examples/torch_parity.py --dtype float64 --threads 2
"""

import _common

import sys

import numpy as np

import rnncore
from rnncore import losses, optim

from adding import LastStep, batch

torch = _common.require("torch", "pip install 'rnncore[torch]'")

BETAS, EPS = (0.9, 0.999), 1e-8


class TorchLastStep(torch.nn.Module):
    """The torch twin of ``adding.LastStep`` for the LSTM (same parameter names)."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = torch.nn.LSTM(input_size, hidden_size)
        self.head = torch.nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.head(self.rnn(x)[0][-1])


def train_rnncore(model, batches, epochs, lr):
    """Per-step training losses of ``model`` (rnncore) and the seconds spent."""
    grads = model.grads
    opt = optim.Adam(model.params, lr=lr, betas=BETAS, eps=EPS)
    timer, curve = _common.Timer(), []
    for _ in range(epochs):
        for x, target in batches:
            model.zero_grad()
            loss, dout = losses.mse_loss(model(x), target)
            model.backward(dout)
            rnncore.clip_grad_norm(grads, 1.0)
            opt.step(grads)
            curve.append(loss)
    return np.array(curve), timer()


def train_torch(model, batches, epochs, lr):
    """Per-step training losses of ``model`` (torch) and the seconds spent."""
    batches = [(torch.from_numpy(x), torch.from_numpy(target)) for x, target in batches]
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=BETAS, eps=EPS)
    timer, curve = _common.Timer(), []
    for _ in range(epochs):
        for x, target in batches:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            curve.append(loss.item())
    return np.array(curve), timer()


def plot(ours, theirs, title, path):
    """Write a PNG: both loss curves per step above, their absolute difference (log axis) below."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        print(f"matplotlib is not installed, no plot written ({_common.EXAMPLES_EXTRA})", file=sys.stderr)
        return
    steps = np.arange(1, len(ours) + 1)
    diff = np.abs(ours - theirs)
    fig = Figure(figsize=(7, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(steps, theirs, lw=3, alpha=0.4, label="torch")
    top.plot(steps, ours, lw=1, label="rnncore")
    top.set_ylabel("training loss (MSE)")
    top.set_yscale("log")
    top.set_title(title)
    bottom.plot(steps, np.where(diff > 0, diff, np.nan), lw=1, color="C3")
    bottom.set_ylabel("|rnncore - torch|")
    bottom.set_yscale("log")
    bottom.set_xlabel("step")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"training curves: {path}")


def main():
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--T", type=int, default=30)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--batches", type=int, default=40, help="pre-generated batches: the steps of one epoch")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.quick:
        args.T, args.batches, args.epochs = 20, 10, 3
    rnncore.set_num_threads(args.threads)
    torch.set_num_threads(rnncore.get_num_threads())

    rng = np.random.default_rng(args.seed)
    batches = [tuple(a.astype(args.dtype) for a in batch(rng, args.T, args.batch)) for _ in range(args.batches)]
    ours = LastStep("lstm", 2, args.hidden, 1, seed=args.seed, dtype=args.dtype)
    theirs = TorchLastStep(2, args.hidden, 1).to(getattr(torch, args.dtype))
    theirs.load_state_dict({name: torch.from_numpy(p) for name, p in ours.state_dict().items()})

    ours_curve, ours_seconds = train_rnncore(ours, batches, args.epochs, args.lr)
    theirs_curve, theirs_seconds = train_torch(theirs, batches, args.epochs, args.lr)
    relative = np.abs(ours_curve - theirs_curve) / np.abs(theirs_curve)
    per_epoch = relative.reshape(args.epochs, args.batches).max(axis=1)
    eps = float(np.finfo(args.dtype).eps)
    agreeing = next((k for k, d in enumerate(per_epoch) if d >= 100 * eps), args.epochs)
    final = {name: p.detach().numpy() for name, p in theirs.state_dict().items()}
    param_diff = max(float(np.abs(p - final[name]).max()) for name, p in ours.state_dict().items())
    print(f"training: rnncore {ours_seconds:.1f} s, torch {theirs_seconds:.1f} s "
          f"(rnncore/torch = {ours_seconds / theirs_seconds:.2f}) on {rnncore.get_num_threads()} thread(s)")
    plot(ours_curve, theirs_curve, f"rnncore vs torch from the same start, {args.dtype} "
         f"({args.batches} steps per epoch)", args.out / "torch_parity.png")
    _common.report(
        args, "torch_parity", task=f"training parity with torch (adding problem, T={args.T})",
        paradigm="many-to-one regression", cell="LSTM", metric="max relative loss difference, epoch 1",
        result=per_epoch[0], baseline=eps, baseline_name=f"{args.dtype} epsilon",
        seconds=ours_seconds + theirs_seconds, published="", higher_is_better=False,
        extra={"max_relative_difference_per_epoch": per_epoch.tolist(), "epochs_within_100_eps": agreeing,
               "max_abs_parameter_difference": param_diff,
               "final_loss": {"rnncore": float(ours_curve[-1]), "torch": float(theirs_curve[-1])},
               "train_seconds": {"rnncore": round(ours_seconds, 2), "torch": round(theirs_seconds, 2)},
               "rnncore_over_torch_time": ours_seconds / theirs_seconds,
               "torch": torch.__version__, "dtype": args.dtype, "steps": len(ours_curve), "lr": args.lr},
    )


if __name__ == "__main__":
    main()
