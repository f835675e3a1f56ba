"""Seq2Seq: learning to reverse and copy, greedy and beam decoding, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import Seq2Seq
from rnncore.models._decoding import beam_search, sample


def _sequences(seed, n, vocab=6, low=2, high=7):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, rng.integers(low, high)) for _ in range(n)]


@pytest.fixture(scope="module")
def reverser():
    """An LSTM encoder-decoder with attention, trained to reverse sequences."""
    X = _sequences(0, 800)
    model = Seq2Seq(vocab_size=6, hidden_size=32, embedding_dim=16, attention=True, seed=0)
    history = model.fit(X, [x[::-1] for x in X], epochs=12, batch_size=32, lr=0.01, progress=False)
    return model, history


def test_learns_to_reverse_unseen_sequences(reverser):
    model, history = reverser
    assert history.history["train_accuracy"][-1] > 0.95
    X = _sequences(1, 200)
    assert model.score(X, [x[::-1] for x in X]) >= 0.8  # exact matches; chance is ~0


def test_beam_search_does_as_well_as_greedy_and_equals_it_with_one_beam(reverser):
    model, _ = reverser
    X = _sequences(2, 100)
    targets = [x[::-1] for x in X]

    def exact(outputs):
        return np.mean([np.array_equal(o, t) for o, t in zip(outputs, targets)])

    assert exact(model.translate(X, method="beam", beam_size=4)) >= exact(model.translate(X)) - 0.05 >= 0.7
    greedy_1 = model.translate(X, method="beam", beam_size=1)
    for a, b in zip(greedy_1, model.translate(X)):
        np.testing.assert_array_equal(a, b)


def test_translate_one_or_many_and_max_len(reverser):
    model, _ = reverser
    one = model.translate(np.array([1, 2, 3, 4]))
    assert isinstance(one, np.ndarray) and one.dtype.kind == "i"
    many = model.translate([np.array([1, 2, 3, 4]), np.array([5, 0])])
    assert isinstance(many, list) and len(many) == 2
    np.testing.assert_array_equal(many[0], one)
    assert all(len(t) <= 2 for t in model.translate(_sequences(3, 20), max_len=2))
    assert all(len(t) <= 2 for t in model.translate(_sequences(3, 20), method="beam", max_len=2))


def test_copy_without_attention_gru_reverse_encoder():
    X = _sequences(4, 600, vocab=5, low=2, high=5)
    model = Seq2Seq(cell="gru", vocab_size=5, hidden_size=32, embedding_dim=8, attention=False, reverse=True,
                    seed=1)
    model.fit(X, X, epochs=15, lr=0.01, progress=False)
    X_test = _sequences(5, 100, vocab=5, low=2, high=5)
    assert model.score(X_test, X_test) >= 0.6


def test_save_load_round_trip_gives_identical_translations(reverser, tmp_path):
    model, _ = reverser
    model.save(tmp_path / "s2s.npz")
    loaded = Seq2Seq.load(tmp_path / "s2s.npz")
    assert loaded.config == model.config
    X = _sequences(6, 30)
    for method in ("greedy", "beam"):
        for a, b in zip(model.translate(X, method=method), loaded.translate(X, method=method)):
            np.testing.assert_array_equal(a, b)


def _toy_chain():
    """A step function over tokens a=0, b=1, end=2 (start=3) where greedy decoding
    goes wrong: "a" is likelier first, but every continuation of "a" is poor,
    while "b" is almost surely followed by the end."""
    table = np.log(np.array([[0.34, 0.33, 0.33],     # after a
                             [0.005, 0.005, 0.99],   # after b
                             [0.34, 0.33, 0.33],     # after end (unused)
                             [0.6, 0.4, 1e-9]]))     # after start

    def step(tokens, state):
        return table[tokens], state

    return step, lambda state, idx: state


def test_beam_search_finds_what_greedy_misses():
    step, reorder = _toy_chain()
    start = np.array([3, 3])
    greedy = sample(step, reorder, None, start, eos=2, max_len=6)
    assert [g.tolist() for g in greedy] == [[0] * 6, [0] * 6]
    beam = beam_search(step, reorder, None, start, eos=2, max_len=6, beam_size=2)
    assert [b.tolist() for b in beam] == [[1], [1]]


def test_beam_search_length_penalty_zero_prefers_short_hypotheses():
    table = np.log(np.array([[0.9, 0.1], [0.5, 0.5], [0.55, 0.45]]))  # tokens 0, end=1, start=2

    def step(tokens, state):
        return table[tokens], state

    def run(penalty):
        return beam_search(step, lambda s, i: s, None, np.array([2]), eos=1, max_len=20, beam_size=3,
                           length_penalty=penalty)[0].tolist()

    assert run(0.0) == []  # "end" at once: log 0.45 beats any longer sum
    assert len(run(1.0)) > 0  # per-token average: 0.55 then ~0.9s beat 0.45


@pytest.mark.parametrize("kwargs, match", [
    ({"vocab_size": 5, "bidirectional": True, "hidden_size": 7}, "hidden_size must be even"),
    ({"input_size": 3}, "tgt_vocab_size"),
    ({"vocab_size": 5, "attention": "yes"}, "attention"),
    ({"vocab_size": 5, "tgt_vocab_size": 0}, "tgt_vocab_size"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Seq2Seq(**kwargs)


def test_bad_data_and_decoding_arguments(reverser):
    model, _ = reverser
    X = _sequences(7, 4)
    with pytest.raises(ValueError, match="y must hold token ids"):
        model.fit(X, [np.array([6])] * 4, progress=False)
    with pytest.raises(ValueError, match="y must have one entry per example"):
        model.fit(X, X[:3], progress=False)
    with pytest.raises(ValueError, match="method"):
        model.translate(X, method="sample")
    with pytest.raises(ValueError, match="beam_size"):
        model.translate(X, method="beam", beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        model.translate(X, max_len=0)
    with pytest.raises(ValueError, match="X must hold token ids"):
        model.translate(np.array([9]))
