"""HierarchicalClassifier: a lower RNN per unit, an upper RNN over the units."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import HierarchicalClassifier


def _nested_sums(seed, n):
    """Each example: 1-5 units of 1-5 numbers.  Label: do more units have a
    positive sum than a negative one?  Needs both levels."""
    rng = np.random.default_rng(seed)
    X = [[rng.standard_normal((rng.integers(1, 6), 1)) for _ in range(rng.integers(1, 6))] for _ in range(n)]
    y = np.array([int(sum(np.sign(u.sum()) for u in units) > 0) for units in X])
    return X, y


def test_learns_nested_sums():
    X, y = _nested_sums(0, 600)
    model = HierarchicalClassifier(cell="gru", input_size=1, hidden_size=12, unit_hidden_size=12, seed=0)
    model.fit(X[:500], y[:500], epochs=10, lr=0.02, progress=False)
    assert model.score(X[500:], y[500:]) >= 0.85


def test_words_of_characters():
    """Examples are words of characters; the label is whether some word is 'ab'."""
    rng = np.random.default_rng(1)
    X = [[rng.integers(0, 3, rng.integers(1, 4)) for _ in range(rng.integers(1, 5))] for _ in range(500)]
    y = np.array([int(any(w.tolist() == [0, 1] for w in words)) for words in X])
    model = HierarchicalClassifier(vocab_size=3, hidden_size=12, unit_hidden_size=12, bidirectional=True,
                                   pooling="max", seed=0)
    model.fit(X[:400], y[:400], epochs=10, lr=0.02, progress=False)
    assert model.score(X[400:], y[400:]) >= 0.9


def test_images_as_arrays_of_rows_and_save_load(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.standard_normal((12, 4, 5, 1))  # 12 images of 4 rows of 5 pixels
    model = HierarchicalClassifier(input_size=1, hidden_size=6, unit_pooling="mean", num_layers=2, seed=0)
    model.fit(images, rng.integers(0, 3, 12), epochs=1, progress=False)
    assert model.predict_proba(images).shape == (12, 3)
    model.save(tmp_path / "h.npz")
    loaded = HierarchicalClassifier.load(tmp_path / "h.npz")
    np.testing.assert_array_equal(model.predict_proba(images), loaded.predict_proba(images))


def test_bad_inputs_name_the_unit():
    model = HierarchicalClassifier(vocab_size=3, hidden_size=4, num_classes=2, seed=0)
    with pytest.raises(ValueError, match=r"X\[1\]\[0\] must have shape"):
        model.predict([[np.array([1])], [np.array([], int)]])
    with pytest.raises(ValueError, match="non-empty list"):
        model.predict([])
    with pytest.raises(ValueError, match="unit_pooling"):
        HierarchicalClassifier(vocab_size=3, unit_pooling="sum")
