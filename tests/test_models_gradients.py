"""Every model's backward against float64 finite differences of its loss.

Each case builds a small model (float64, no dropout), takes one padded
batch, and compares the gradient ``_loss(batch, train=True)`` accumulates
for a few entries of every parameter with central differences of the
loss.  This checks the models' own backward code -- attention, bridges,
pooling, reversal, the hierarchical scatter, initial states from a
condition, truncated BPTT -- on top of the layers' (tested elsewhere).
"""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import models

EPS = 1e-6


def _tokens(rng, n, vocab, low=1, high=6):
    return [rng.integers(0, vocab, rng.integers(low, high)) for _ in range(n)]


def _features(rng, n, size, low=1, high=6):
    return [rng.standard_normal((rng.integers(low, high), size)) for _ in range(n)]


def _case(name, rng):
    """(model, X, y) for case ``name``."""
    common = {"hidden_size": 5, "dtype": "float64", "seed": 3}
    if name.startswith("seq2seq"):
        opts = {"seq2seq-lstm-attention-bi-reverse-2layers": dict(cell="lstm", attention=True, bidirectional=True,
                                                                  reverse=True, num_layers=2, hidden_size=6),
                "seq2seq-gru-plain": dict(cell="gru", attention=False),
                "seq2seq-rnn-features-attention": dict(cell="rnn", attention=True)}[name]
        if "features" in name:
            model = models.Seq2Seq(input_size=3, tgt_vocab_size=4, **{**common, **opts})
            return model, _features(rng, 6, 3), _tokens(rng, 6, 4, low=0)
        model = models.Seq2Seq(vocab_size=4, embedding_dim=3, **{**common, **opts})
        return model, _tokens(rng, 6, 4), _tokens(rng, 6, 4, low=0)
    if name.startswith("classifier"):
        cell, pooling = name.split("-")[1:3]
        model = models.SequenceClassifier(cell=cell, pooling=pooling, bidirectional="bi" in name, num_layers=2,
                                          vocab_size=5, embedding_dim=3, num_classes=3, **common)
        return model, _tokens(rng, 6, 5), rng.integers(0, 3, 6)
    if name == "regressor-features-reverse":
        model = models.SequenceRegressor(input_size=2, reverse=True, pooling="mean", num_outputs=2, **common)
        return model, _features(rng, 6, 2), rng.standard_normal((6, 2))
    if name == "tagger-bi-reverse":
        model = models.SequenceTagger(cell="gru", bidirectional=True, reverse=True, input_size=2, num_classes=3,
                                      **common)
        X = _features(rng, 6, 2)
        return model, X, [rng.integers(0, 3, len(x)) for x in X]
    if name.startswith("generator"):
        cell = name.split("-")[1]
        model = models.SequenceGenerator(cell=cell, num_layers=2, input_size=3, vocab_size=4, embedding_dim=3,
                                         **common)
        return model, rng.standard_normal((6, 3)), _tokens(rng, 6, 4, low=0)
    if name == "language-model":
        model = models.LanguageModel(cell="lstm", num_layers=2, vocab_size=4, embedding_dim=3, **common)
        return model, rng.integers(0, 4, 40), None
    if name.startswith("hierarchical"):
        tokens = "tokens" in name
        model = models.HierarchicalClassifier(
            cell="lstm" if tokens else "gru", unit_hidden_size=4, bidirectional=tokens, pooling="mean",
            unit_pooling="max" if tokens else "last", num_classes=2,
            **({"vocab_size": 4, "embedding_dim": 3} if tokens else {"input_size": 2}), **common)
        unit = (lambda: rng.integers(0, 4, rng.integers(1, 4))) if tokens else \
            (lambda: rng.standard_normal((rng.integers(1, 4), 2)))
        X = [[unit() for _ in range(rng.integers(1, 4))] for _ in range(6)]
        return model, X, rng.integers(0, 2, 6)
    if name == "mlp-classifier-tokens":
        return models.MLPClassifier(vocab_size=5, embedding_dim=3, num_layers=2, activation="tanh",
                                    num_classes=3, **common), rng.integers(0, 5, 6), rng.integers(0, 3, 6)
    if name == "mlp-regressor":
        return models.MLPRegressor(input_size=3, num_outputs=1, activation="tanh", **common), \
            rng.standard_normal((6, 3)), rng.standard_normal(6)
    raise AssertionError(name)


CASES = ["seq2seq-lstm-attention-bi-reverse-2layers", "seq2seq-gru-plain", "seq2seq-rnn-features-attention",
         "classifier-lstm-last-bi", "classifier-gru-mean", "classifier-rnn-max-bi", "regressor-features-reverse",
         "tagger-bi-reverse", "generator-lstm", "generator-gru", "language-model", "hierarchical-tokens",
         "hierarchical-features", "mlp-classifier-tokens", "mlp-regressor"]


def _one_batch(model, X, y):
    """A padded batch of all examples, and a function giving the loss of a fresh copy of it."""
    if isinstance(model, models.LanguageModel):
        model._bptt = 7
        data = model._data(X, None, None, fitting=True)
        first, second = list(model._batches(data, 3, None))[:2]
        carried = first["carry"]["states"]
        model._loss(first, train=False)  # a carried state at the start of the checked chunk
        carried = tuple(s.copy() for s in first["carry"]["states"])
        return lambda: {**second, "carry": {"states": carried}}
    data = model._data(X, y, None, fitting=True)
    batch = model._collate(data.take(np.arange(len(data))))
    return lambda: batch


@pytest.mark.parametrize("name", CASES)
def test_backward_matches_finite_differences(name):
    rng = np.random.default_rng(CASES.index(name))
    model, X, y = _case(name, rng)
    model.train()
    batch = _one_batch(model, X, y)
    model.zero_grad()
    model._loss(batch(), train=True)
    grads = {k: g.copy() for k, g in model.grads.items()}
    checked = 0
    for pname, p in model.params.items():
        flat = p.reshape(-1)
        for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + EPS
            up = model._loss(batch(), train=False)[0]
            flat[i] = old - EPS
            down = model._loss(batch(), train=False)[0]
            flat[i] = old
            numeric = (up - down) / (2 * EPS)
            analytic = grads[pname].reshape(-1)[i]
            assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(numeric), (pname, i, numeric, analytic)
            checked += 1
    assert checked >= 3 * len(model.params) - 10
