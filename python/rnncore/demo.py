"""``python -m rnncore demo``: a sequence-to-sequence model learns to add.

The model reads a sum written as text, such as ``"535+61"``, one
character at a time, and writes the result, ``"596"``, one digit at a
time: a translation from one language of digits to another, learnt from
generated examples only (no arithmetic is built in).  It is a
:class:`rnncore.models.Seq2Seq` with a bidirectional encoder and Luong
attention, trained with teacher forcing and decoded greedily; accuracy is
the fraction of held-out sums (pairs never seen in training) answered
exactly.

Examples
--------
>>> from rnncore.demo import run
>>> result = run(train_size=200, test_size=20, epochs=1, progress=False, out=None)
>>> sorted(result)
['accuracy', 'history', 'model', 'seconds']
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

import numpy as np

from .models import Seq2Seq
from .text import Vocab

__all__ = ["DEFAULTS", "VOCAB", "make_sums", "encode", "run"]

VOCAB = Vocab("0123456789+")

DEFAULTS = {"cell": "lstm", "epochs": 10, "seed": 0, "train_size": 40000, "test_size": 1000, "digits": 3,
            "hidden_size": 128, "batch_size": 128, "lr": 0.01, "schedule": "cosine", "dropout": 0.0}


def make_sums(n: int, digits: int, rng: np.random.Generator, exclude: Optional[set] = None) -> list:
    """``n`` distinct pairs ``(a, b)`` of numbers of 1 to ``digits`` digits
    (the number of digits of each uniformly, then the number), none in ``exclude``."""
    exclude = set() if exclude is None else exclude
    pairs: dict = {}
    capacity = (10**digits) ** 2 - len(exclude)
    if n > capacity:
        raise ValueError(f"n={n} exceeds the {capacity} distinct pairs available")
    while len(pairs) < n:
        k = rng.integers(1, digits + 1, size=(2 * n, 2))
        low = np.where(k == 1, 0, 10 ** (k - 1))
        values = rng.integers(low, 10**k)
        for a, b in values.tolist():
            if (a, b) not in exclude and len(pairs) < n:
                pairs[(a, b)] = None
    return list(pairs)


def encode(pairs: list) -> tuple:
    """The sources (``"535+61"``) and targets (``"596"``) of ``pairs``, as token-id arrays."""
    return ([VOCAB.encode(f"{a}+{b}") for a, b in pairs], [VOCAB.encode(str(a + b)) for a, b in pairs])


def run(*, cell: str = DEFAULTS["cell"], epochs: int = DEFAULTS["epochs"], seed: int = DEFAULTS["seed"],
        train_size: int = DEFAULTS["train_size"], test_size: int = DEFAULTS["test_size"],
        digits: int = DEFAULTS["digits"], hidden_size: int = DEFAULTS["hidden_size"],
        batch_size: int = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
        schedule: Optional[str] = DEFAULTS["schedule"], dropout: float = DEFAULTS["dropout"], progress: bool = True,
        examples: int = 8, out: Optional[TextIO] = sys.stdout) -> dict:
    """Generate sums, train the model, report held-out accuracy and worked examples.

    Parameters
    ----------
    cell : {"lstm", "gru", "rnn"}
    epochs, seed, train_size, test_size, digits, hidden_size, batch_size, lr, schedule, dropout
        The experiment; the defaults reach at least 95% exact matches.
    progress : bool
        Progress bars on stderr.
    examples : int
        Worked examples printed at the end.
    out : text file or None
        Where the report goes (None: nowhere).

    Returns
    -------
    dict
        ``accuracy`` (exact-match fraction on the held-out sums),
        ``history`` (:class:`rnncore.History`), ``model``, ``seconds``.
    """
    def say(text: str = "") -> None:
        if out is not None:
            print(text, file=out, flush=True)

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    train_pairs = make_sums(train_size, digits, rng)
    test_pairs = make_sums(test_size, digits, rng, exclude=set(train_pairs))
    X, y = encode(train_pairs)
    X_test, y_test = encode(test_pairs)
    say(f"rnncore demo: learning to add numbers of up to {digits} digits, written as text")
    say(f"  {train_size} training sums, {test_size} held-out sums (pairs never seen in training)")
    model = Seq2Seq(cell=cell, vocab_size=len(VOCAB), embedding_dim=32, hidden_size=hidden_size,
                    bidirectional=True, attention=True, dropout=dropout, seed=seed)
    say(f"  model: {cell.upper()} encoder (bidirectional) and decoder with attention, hidden size {hidden_size}, "
        f"{sum(p.size for p in model.params.values())} parameters")
    history = model.fit(X, y, epochs=epochs, batch_size=batch_size, lr=lr, lr_schedule=schedule,
                        progress=progress)
    predicted = model.predict(X_test)
    right = [np.array_equal(p, t) for p, t in zip(predicted, y_test)]
    accuracy = float(np.mean(right))
    seconds = time.perf_counter() - start
    say(f"held-out exact match: {accuracy:.1%} ({sum(right)}/{len(right)}) after {history.epochs} "
        f"epoch{'s' * (history.epochs != 1)}, {seconds:.0f} s")
    wrong = [i for i, ok in enumerate(right) if not ok]
    shown = list(range(min(examples, len(right))))
    shown += [i for i in wrong if i not in shown][: examples // 4]  # a few mistakes too, if there are any
    for i in shown:
        (a, b), answer = test_pairs[i], VOCAB.decode(predicted[i]) or "(nothing)"
        say(f"  {a:>{digits}}+{b:<{digits}} = {answer:<{digits + 1}} {'ok' if right[i] else f'wrong: {a + b}'}")
    return {"accuracy": accuracy, "history": history, "model": model, "seconds": seconds}
