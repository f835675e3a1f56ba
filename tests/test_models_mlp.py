"""MLPClassifier and MLPRegressor: the one-to-one baselines."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import MLPClassifier, MLPRegressor


def test_classifier_learns_xor_of_signs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # not linearly separable; chance 50%
    model = MLPClassifier(input_size=2, hidden_size=32, seed=0)
    model.fit(X[:500], y[:500], epochs=40, lr=0.01, progress=False)
    assert model.score(X[500:], y[500:]) >= 0.9
    linear = MLPClassifier(input_size=2, num_layers=0, seed=0)
    linear.fit(X[:500], y[:500], epochs=40, lr=0.01, progress=False)
    assert linear.score(X[500:], y[500:]) < 0.75  # the hidden layer is what learns XOR


def test_classifier_on_token_ids():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 10, 400)
    model = MLPClassifier(vocab_size=10, embedding_dim=4, hidden_size=8, seed=0)
    model.fit(X, X % 3, epochs=30, lr=0.02, progress=False)
    assert model.score(X, X % 3) == 1.0


def test_regressor_learns_a_sine():
    rng = np.random.default_rng(2)
    X = rng.uniform(-3, 3, (500, 1))
    model = MLPRegressor(input_size=1, hidden_size=32, num_layers=2, activation="tanh", seed=0)
    model.fit(X, np.sin(X[:, 0]), epochs=40, lr=0.01, progress=False)
    assert model.score(X, np.sin(X[:, 0])) >= 0.95
    assert model.predict(X).shape == (500,)


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 3))
    model = MLPRegressor(input_size=3, hidden_size=8, dropout=0.2, seed=0)
    model.fit(X, X[:, :2], epochs=2, progress=False)
    model.save(tmp_path / "mlp.npz")
    np.testing.assert_array_equal(model.predict(X), MLPRegressor.load(tmp_path / "mlp.npz").predict(X))


def test_bad_inputs_name_the_argument():
    model = MLPClassifier(input_size=3, hidden_size=4, num_classes=2, seed=0)
    with pytest.raises(ValueError, match=r"X must be real numbers of shape \[N, 3\]"):
        model.fit(np.zeros((4, 2)), np.zeros(4, int), progress=False)
    with pytest.raises(ValueError, match="lengths"):
        model.fit(np.zeros((4, 3)), np.zeros(4, int), lengths=[1] * 4, progress=False)
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(input_size=3, activation="swish")
    with pytest.raises(ValueError, match="X must be token ids"):
        MLPClassifier(vocab_size=3, num_classes=2).predict(np.zeros((2, 2), int))
