"""Captioning digit images with their names: one to many.

Task: given an 8x8 image of a handwritten digit (scikit-learn's bundled
``load_digits``: 1,797 images, the 64 pixels scaled to [0, 1] are the
conditioning vector), write the digit's English name letter by letter
("seven") with a :class:`rnncore.models.SequenceGenerator`: the image sets
the decoder's initial state, the decoder writes letters until its end
symbol.

Split: a fixed random 25 % of the images for testing (``--seed``).
Reported: exact-match accuracy of the test captions, decoded greedily
(``captioning_greedy``) and by beam search (``captioning_beam``).  The
baseline is an upper reference, not a floor: an
:class:`rnncore.models.MLPClassifier` on the same split, whose predicted
class is then spelled (always correctly); chance is 0.1.

Run: ``python examples/captioning.py`` (about 30 s on 2 cores);
``--quick`` trains on 300 images for 3 epochs.
"""

import _common  # first: caps NumPy's BLAS threads

import numpy as np

from rnncore.models import MLPClassifier, SequenceGenerator
from rnncore.text import Vocab

from digits import load_digits  # the images, scaling and split of digits.py

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
LETTERS = Vocab(sorted(set("".join(NAMES))))
MAX_LEN = 10  # letters written at most; the longest name has 5


def exact_match(captions: list, labels: np.ndarray) -> float:
    return float(np.mean([caption == NAMES[label] for caption, label in zip(captions, labels)]))


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.005, help="Adam's initial learning rate (cosine schedule)")
    p.add_argument("--dropout", type=float, default=0.3, help="before the decoder's output layer")
    p.add_argument("--beam", type=int, default=5, help="beam size")
    args = p.parse_args()
    if args.quick:
        args.epochs = 3
    X, y, train, test = load_digits(args.quick, args.seed)
    captions = [LETTERS.encode(NAMES[label]) for label in y]
    print(f"{len(train)} training and {len(test)} test images; letters: {''.join(LETTERS.tokens)}")

    mlp = MLPClassifier(input_size=64, hidden_size=args.hidden, seed=args.seed)
    mlp_history = mlp.fit(X[train], y[train], epochs=args.epochs, lr=args.lr, lr_schedule="cosine", progress=False)
    mlp_accuracy = mlp.score(X[test], y[test])

    timer = _common.Timer()
    model = SequenceGenerator(input_size=64, vocab_size=len(LETTERS), embedding_dim=16, hidden_size=args.hidden,
                              cell=args.cell, dropout=args.dropout, seed=args.seed)
    history = model.fit(X[train], [captions[i] for i in train], epochs=args.epochs, lr=args.lr,
                        lr_schedule="cosine", progress=False)
    seconds = timer()
    written = {method: [LETTERS.decode(ids) for ids in model.generate(X[test], max_len=MAX_LEN, method=method,
                                                                        beam_size=args.beam)]
               for method in ("greedy", "beam")}

    print("true    greedy  beam")
    wrong = [i for i, label in enumerate(y[test]) if i >= 5 and written["greedy"][i] != NAMES[label]]
    for i in list(range(5)) + wrong[:5]:  # the first five test images, then the first mistakes
        print(f"{NAMES[y[test][i]]:8s}{written['greedy'][i]:8s}{written['beam'][i]}")
    non_words = sum(caption not in NAMES for caption in written["greedy"])
    print(f"{non_words} of {len(test)} greedy captions are not the name of any digit")

    _common.plot({"SequenceGenerator (letters)": history.history["train_loss"],
                  "MLP (classes)": mlp_history.history["train_loss"]},
                 args.out / "captioning.png", title="digit captions", ylabel="training loss", logy=True)
    for method, texts in written.items():
        _common.report(args, f"captioning_{method}", task=f"digit captions, {method}", paradigm="one to many",
                       cell=args.cell, metric="test exact match", result=exact_match(texts, y[test]),
                       baseline=mlp_accuracy, baseline_name="MLP class, spelled (upper reference)",
                       seconds=seconds, extra={"chance": 0.1, "train": len(train), "test": len(test),
                                               "epochs": args.epochs, "hidden_size": args.hidden,
                                               "beam_size": args.beam if method == "beam" else None})


if __name__ == "__main__":
    main()
