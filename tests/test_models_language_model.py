"""LanguageModel (truncated BPTT over a stream) and rnncore.text.Vocab."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import LanguageModel
from rnncore.text import Vocab

TEXT = "the cat sat on the mat. " * 40


@pytest.fixture(scope="module")
def trained():
    vocab = Vocab.build(TEXT)
    model = LanguageModel(vocab_size=len(vocab), embedding_dim=16, hidden_size=48, seed=0)
    history = model.fit(vocab.encode(TEXT), epochs=12, batch_size=8, bptt=24, lr=0.01, progress=False)
    return vocab, model, history


def test_learns_a_repeated_string(trained):
    vocab, model, history = trained
    assert history.history["train_loss"][-1] < 0.25 * history.history["train_loss"][0]
    ids = vocab.encode(TEXT[:200])
    assert model.perplexity(ids) < 1.5  # uniform guessing: len(vocab) = 12
    assert model.score(ids) > 0.9
    assert vocab.decode(model.generate(vocab.encode("the cat sat on"), 14, temperature=0)) == " the mat. the "
    assert model.predict(ids).shape == ids.shape


def test_state_is_carried_across_chunks(trained):
    """Reading a stream in bptt-long chunks, each starting from the state the
    previous one ended in, gives the losses of reading each row in one pass."""
    vocab, model, _ = trained
    model.eval()
    data = model._data(vocab.encode(TEXT[:300]), None, None, fitting=False)
    model._bptt = 7
    results = [model._loss(batch, train=False) for batch in model._batches(data, 4, None)]
    chunked = sum(loss * count for loss, count, _ in results) / sum(count for _, count, _ in results)
    x, y = model._rows(data, 4)
    logits, _ = model.decoder(x, np.full(4, len(x)))
    whole = -np.mean(np.take_along_axis(logits - np.log(np.exp(logits).sum(-1, keepdims=True)), y[..., None], -1))
    assert len(results) == int(np.ceil(len(x) / 7)) > 1
    assert chunked == pytest.approx(whole, rel=1e-5)


def test_sampling_is_reproducible_with_a_seed(trained):
    vocab, model, _ = trained
    prompt = vocab.encode("the")
    a = model.generate(prompt, 30, temperature=1.5, seed=3)
    b = model.generate(prompt, 30, temperature=1.5, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(a) == 30 and a.min() >= 0 and a.max() < len(vocab)


def test_validation_stream_and_save_load(trained, tmp_path):
    vocab, model, _ = trained
    ids = vocab.encode(TEXT)
    fresh = LanguageModel(cell="gru", vocab_size=len(vocab), hidden_size=8, num_layers=2, seed=1)
    history = fresh.fit(ids[:600], epochs=1, batch_size=4, bptt=10, validation_data=ids[600:], progress=False)
    assert np.isfinite(history.history["val_loss"][0])
    model.save(tmp_path / "lm.npz")
    loaded = LanguageModel.load(tmp_path / "lm.npz")
    assert loaded.perplexity(ids[:100]) == model.perplexity(ids[:100])
    np.testing.assert_array_equal(loaded.generate(ids[:5], 20, seed=0), model.generate(ids[:5], 20, seed=0))


def test_bad_arguments(trained):
    vocab, model, _ = trained
    with pytest.raises(ValueError, match="vocab_size"):
        LanguageModel(hidden_size=4)
    with pytest.raises(TypeError, match="takes no y"):
        model.fit(vocab.encode(TEXT), vocab.encode(TEXT))
    with pytest.raises(ValueError, match="bptt"):
        model.fit(vocab.encode(TEXT), bptt=0)
    with pytest.raises(ValueError, match="X must be a stream"):
        model.fit(np.array([1]))
    with pytest.raises(ValueError, match="prompt must hold token ids"):
        model.generate(np.array([99]), 3)
    with pytest.raises(ValueError, match="n must be"):
        model.generate(np.array([1]), 0)


def test_vocab_characters_and_words(tmp_path):
    chars = Vocab.build("banana")
    assert chars.tokens == ["a", "n", "b"] and len(chars) == 3 and "b" in chars and chars["n"] == 1
    assert chars.decode(chars.encode("nab")) == "nab"
    with pytest.raises(ValueError, match="'x'"):
        chars.encode("xa")
    words = Vocab.build(["a rose is a rose", "is it"], level="word", min_count=2, unknown="<unk>")
    assert words.tokens == ["a", "is", "rose", "<unk>"]
    assert words.decode(words.encode("a rose it is")) == "a rose <unk> is"
    words.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == words
    assert Vocab.build("aabbc", max_size=2).tokens == ["a", "b"]
    with pytest.raises(ValueError, match="distinct"):
        Vocab("abca")
    with pytest.raises(ValueError, match="level"):
        Vocab("ab", level="byte")
    with pytest.raises(ValueError, match="ids must be in"):
        chars.decode([3])
