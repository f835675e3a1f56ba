"""SequenceTagger (many to many, same length)."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import SequenceTagger


def _signs(seed, n):
    """Tag each step: 1 where the running sum so far is positive.  (Chance: ~50%.)"""
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((rng.integers(2, 10), 1)) for _ in range(n)]
    return X, [(np.cumsum(x[:, 0]) > 0).astype(int) for x in X]


def test_tagger_learns_the_sign_of_the_running_sum():
    X, tags = _signs(0, 500)
    model = SequenceTagger(input_size=1, hidden_size=16, seed=0)
    history = model.fit(X[:400], tags[:400], epochs=6, lr=0.02, progress=False)
    assert history.history["train_accuracy"][-1] > 0.9
    assert model.config["num_classes"] == 2
    assert model.score(X[400:], tags[400:]) >= 0.9
    predicted = model.predict(X[400:])
    assert [len(p) for p in predicted] == [len(x) for x in X[400:]]


def test_bidirectional_tagger_uses_the_future():
    """Tag each token with the token that follows it (the last with 0): needs the
    reverse direction."""
    rng = np.random.default_rng(1)
    X = [rng.integers(0, 4, rng.integers(2, 8)) for _ in range(500)]
    tags = [np.append(x[1:], 0) for x in X]
    model = SequenceTagger(cell="gru", vocab_size=4, embedding_dim=8, hidden_size=12, bidirectional=True, seed=0)
    model.fit(X[:400], tags[:400], epochs=6, lr=0.02, progress=False)
    assert model.score(X[400:], tags[400:]) >= 0.9


def test_padded_steps_count_in_neither_loss_nor_metrics():
    X, tags = _signs(2, 20)
    T = max(len(x) for x in X)
    lengths = np.array([len(x) for x in X])
    padded_x = np.zeros((20, T, 1))
    padded_y = np.full((20, T), 7)  # an invalid tag: must never be looked at
    for i, (x, t) in enumerate(zip(X, tags)):
        padded_x[i, : len(x)], padded_y[i, : len(t)] = x, t
    a = SequenceTagger(input_size=1, hidden_size=6, num_classes=2, seed=0)
    b = SequenceTagger(input_size=1, hidden_size=6, num_classes=2, seed=0)
    ha = a.fit(X, tags, epochs=2, progress=False)
    hb = b.fit(padded_x, padded_y, lengths=lengths, epochs=2, progress=False)
    assert ha.history["train_loss"] == hb.history["train_loss"]
    assert a.score(X, tags) == b.score(padded_x, padded_y, lengths=lengths)
    proba = a.predict_proba(X[:3])
    assert [p.shape for p in proba] == [(len(x), 2) for x in X[:3]]


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    X, tags = _signs(3, 10)
    model = SequenceTagger(cell="rnn", input_size=1, hidden_size=6, num_layers=2, reverse=True, seed=0)
    model.fit(X, tags, epochs=1, progress=False)
    model.save(tmp_path / "tagger.npz")
    loaded = SequenceTagger.load(tmp_path / "tagger.npz")
    for a, b in zip(model.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_array_equal(a, b)


def test_tags_must_match_the_sequences():
    X, tags = _signs(4, 3)
    model = SequenceTagger(input_size=1, hidden_size=4, num_classes=2, seed=0)
    with pytest.raises(ValueError, match="y must hold one tag sequence per sequence of X"):
        model.fit(X, [t[:-1] for t in tags], progress=False)
    with pytest.raises(ValueError, match=r"y must hold token ids in \[0, 2\)"):
        model.fit(X, [t + 2 for t in tags], progress=False)
