"""SequenceClassifier and SequenceRegressor (many to one)."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import SequenceClassifier, SequenceRegressor


def _sum_sign(seed, n):
    """Is the sum of a sequence of numbers positive?  (Chance: 50%.)"""
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((rng.integers(2, 10), 1)) for _ in range(n)]
    return X, np.array([int(x.sum() > 0) for x in X])


@pytest.mark.parametrize("options", [
    {"cell": "lstm"},
    {"cell": "gru", "pooling": "mean", "bidirectional": True},
    {"cell": "rnn", "pooling": "max", "reverse": True, "num_layers": 2},
])
def test_classifier_learns_the_sign_of_a_sum(options):
    X, y = _sum_sign(0, 500)
    model = SequenceClassifier(input_size=1, hidden_size=12, seed=0, **options)
    model.fit(X[:400], y[:400], epochs=8, lr=0.02, progress=False)
    assert model.config["num_classes"] == 2  # inferred from y
    assert model.score(X[400:], y[400:]) >= 0.85


def test_classifier_on_tokens_counts_a_token_and_predicts_probabilities():
    rng = np.random.default_rng(1)
    X = [rng.integers(0, 4, rng.integers(1, 9)) for _ in range(500)]
    y = np.array([min(int((x == 3).sum()), 2) for x in X])  # no 3, one 3, more: three classes
    model = SequenceClassifier(vocab_size=4, embedding_dim=8, hidden_size=12, seed=0)
    model.fit(X[:400], y[:400], epochs=8, lr=0.02, progress=False)
    assert model.score(X[400:], y[400:]) >= 0.85
    proba = model.predict_proba(X[400:])
    assert proba.shape == (100, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), model.predict(X[400:]))


def test_regressor_learns_a_sum_and_a_maximum():
    rng = np.random.default_rng(2)
    X = [rng.uniform(-1, 1, (rng.integers(2, 8), 1)) for _ in range(500)]
    y = np.array([[x.sum(), x.max()] for x in X])
    model = SequenceRegressor(input_size=1, hidden_size=16, seed=0)
    history = model.fit(X[:400], y[:400], epochs=20, lr=0.02, progress=False)
    assert "train_mae" in history.history
    assert model.predict(X[400:]).shape == (100, 2)
    assert model.score(X[400:], y[400:]) >= 0.9  # R^2


def test_regressor_one_output_predicts_a_vector():
    X = [np.ones((3, 2))] * 4
    model = SequenceRegressor(input_size=2, hidden_size=4, seed=0)
    model.fit(X, np.arange(4.0), epochs=1, progress=False)
    assert model.predict(X).shape == (4,)


@pytest.mark.parametrize("cls, y", [(SequenceClassifier, np.array([0, 1, 2, 1])),
                                    (SequenceRegressor, np.array([0.5, -1.0, 2.0, 0.0]))])
def test_save_load_round_trip_gives_identical_predictions(tmp_path, cls, y):
    rng = np.random.default_rng(3)
    X = [rng.integers(0, 5, rng.integers(1, 6)) for _ in range(4)]
    model = cls(cell="gru", vocab_size=5, hidden_size=6, bidirectional=True, pooling="mean", seed=0)
    model.fit(X, y, epochs=2, progress=False)
    model.save(tmp_path / "m.npz")
    loaded = cls.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(model.predict(X), loaded.predict(X))


def test_labels_beyond_num_classes_and_bad_targets():
    X = [np.zeros((2, 1))] * 3
    model = SequenceClassifier(input_size=1, hidden_size=4, num_classes=2, seed=0)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 2\)"):
        model.fit(X, np.array([0, 1, 2]), progress=False)
    with pytest.raises(ValueError, match="y must have one label per example"):
        model.fit(X, np.array([[0], [1], [1]]), progress=False)
    regressor = SequenceRegressor(input_size=1, hidden_size=4, num_outputs=2, seed=0)
    with pytest.raises(ValueError, match=r"y must have shape \(3,\) or \(3, 2\)"):
        regressor.fit(X, np.zeros((3, 3)), progress=False)
    with pytest.raises(TypeError, match="y must hold real numbers"):
        regressor.fit(X, np.array(["a", "b", "c"]), progress=False)
