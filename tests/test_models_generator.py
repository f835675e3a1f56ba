"""SequenceGenerator (one to many)."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import SequenceGenerator

PATTERNS = [np.array([0, 1, 2, 3]), np.array([3, 3, 1]), np.array([2, 0, 2, 0, 2]), np.array([1])]


@pytest.fixture(scope="module")
def generator():
    """Trained to write pattern k from a noisy one-hot vector of k."""
    rng = np.random.default_rng(0)
    k = rng.integers(0, 4, 400)
    cond = np.eye(4)[k] + 0.1 * rng.standard_normal((400, 4))
    model = SequenceGenerator(cell="gru", input_size=4, vocab_size=4, hidden_size=16, embedding_dim=8, seed=0)
    history = model.fit(cond, [PATTERNS[i] for i in k], epochs=10, lr=0.02, progress=False)
    return model, history


def test_generator_writes_the_pattern_of_each_condition(generator):
    model, history = generator
    assert history.history["train_loss"][-1] < 0.1 * history.history["train_loss"][0]
    for method in ("greedy", "beam"):
        written = model.generate(np.eye(4), method=method, max_len=10)
        assert [w.tolist() for w in written] == [p.tolist() for p in PATTERNS], method
    assert model.score(np.eye(4), PATTERNS) == 1.0


def test_sampling_temperature_and_seed(generator):
    model, _ = generator
    cond = np.eye(4)[[2] * 20]
    cold = model.generate(cond, method="sample", temperature=0.05, seed=0)
    assert all(c.tolist() == PATTERNS[2].tolist() for c in cold)
    hot_a = model.generate(cond, method="sample", temperature=5.0, seed=1, max_len=8)
    hot_b = model.generate(cond, method="sample", temperature=5.0, seed=1, max_len=8)
    assert [a.tolist() for a in hot_a] == [b.tolist() for b in hot_b]
    assert len({tuple(a) for a in hot_a}) > 1  # a flat distribution writes different things
    single = model.generate(np.eye(4)[1])
    assert isinstance(single, np.ndarray) and single.tolist() == PATTERNS[1].tolist()


def test_lstm_generator_with_two_layers_learns_and_round_trips(tmp_path):
    cond = np.eye(3)
    targets = [np.array([0, 1]), np.array([1, 1, 1]), np.array([], dtype=int)]  # an empty sequence too
    model = SequenceGenerator(input_size=3, vocab_size=2, hidden_size=12, num_layers=2, seed=0)
    model.fit(cond, targets, epochs=60, batch_size=3, lr=0.02, progress=False)
    assert [g.tolist() for g in model.predict(cond)] == [t.tolist() for t in targets]
    model.save(tmp_path / "gen.npz")
    loaded = SequenceGenerator.load(tmp_path / "gen.npz")
    for method in ("greedy", "beam"):
        assert [g.tolist() for g in loaded.generate(cond, method=method)] == \
            [g.tolist() for g in model.generate(cond, method=method)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_size"):
        SequenceGenerator(vocab_size=3)
    model = SequenceGenerator(input_size=2, vocab_size=3, hidden_size=4, seed=0)
    with pytest.raises(ValueError, match=r"X must be conditioning vectors"):
        model.fit(np.zeros((2, 3)), [np.array([0])] * 2, progress=False)
    with pytest.raises(ValueError, match="method"):
        model.generate(np.zeros(2), method="top-k")
    with pytest.raises(ValueError, match="temperature"):
        model.generate(np.zeros(2), method="sample", temperature=-1.0)
