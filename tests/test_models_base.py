"""The machinery every model shares: fit loop, History, progress, bucketing, saving, errors."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

import rnncore
from rnncore import models, optim
from rnncore.models import _base


def _sign_data(rng, n=200):
    X = [rng.standard_normal((rng.integers(2, 8), 1)).astype(np.float32) for _ in range(n)]
    return X, np.array([int(x.sum() > 0) for x in X])


def _classifier(**options):
    return models.SequenceClassifier(input_size=1, hidden_size=8, seed=0, **options)


def test_fit_returns_history_with_losses_metrics_and_gradient_statistics(rng):
    X, y = _sign_data(rng)
    history = _classifier().fit(X[:150], y[:150], epochs=3, lr=0.01, validation_data=(X[150:], y[150:]),
                                progress=False)
    h = history.history
    assert history.epochs == 3
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "grad_norm", "grad_norm_max",
                "time", "grad_norm/encoder.rnn.weight_hh_l0/mean", "grad_norm/head.bias/max"):
        assert len(h[key]) == 3 and np.isfinite(h[key]).all(), key
    assert h["train_loss"][-1] < h["train_loss"][0]


def test_history_of_a_fit_plots_losses_and_gradient_norms(rng, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = _sign_data(rng, 40)
    history = _classifier().fit(X, y, epochs=2, validation_data=(X, y), progress=False)
    history.plot(tmp_path / "history.png")
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_is_deterministic_for_a_seed(rng):
    X, y = _sign_data(rng, 60)
    a, b = _classifier(dropout=0.3, num_layers=2), _classifier(dropout=0.3, num_layers=2)
    a.fit(X, y, epochs=2, batch_size=8, progress=False)
    b.fit(X, y, epochs=2, batch_size=8, progress=False)
    for name, p in a.params.items():
        np.testing.assert_array_equal(p, b.params[name])


def test_progress_line_on_stderr_and_silence_without_it(rng, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the built-in line, also where tqdm exists
    X, y = _sign_data(rng, 40)
    model = _classifier()
    model.fit(X, y, epochs=2, batch_size=8, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "SequenceClassifier epoch 1/2" in captured.err and "epoch 2/2" in captured.err
    assert "loss=" in captured.err and "accuracy=" in captured.err and "\r" in captured.err
    model.fit(X, y, epochs=1, progress=False)
    assert capsys.readouterr() == ("", "")


def test_progress_uses_tqdm_when_installed(rng, monkeypatch):
    bars = []

    class FakeTqdm:
        def __init__(self, total, desc, **kwargs):
            self.total, self.desc, self.n, self.postfix, self.closed = total, desc, 0, "", False
            bars.append(self)

        def set_postfix_str(self, text, refresh=True):
            self.postfix = text

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    fake = types.ModuleType("tqdm")
    fake.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", fake)
    X, y = _sign_data(rng, 40)
    _classifier().fit(X, y, epochs=2, batch_size=8, validation_data=(X, y), progress=True)
    assert [(b.desc, b.n, b.total, b.closed) for b in bars] == \
        [(f"SequenceClassifier epoch {e}/2", 5, 5, True) for e in (1, 2)]
    assert "val_accuracy=" in bars[-1].postfix


def test_early_stopping_stops_and_restores_the_best_parameters(rng):
    X, y = _sign_data(rng, 40)
    model = _classifier()
    stopper = rnncore.EarlyStopping(patience=1, min_delta=10.0)  # nothing improves by 10: stop at epoch 2
    history = model.fit(X, y, epochs=10, lr=0.05, early_stopping=stopper, progress=False)
    assert history.epochs == 2 and stopper.best_epoch == 1
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, stopper.best_params[name])


def test_optimizer_instance_and_learning_rate_schedules(rng):
    X, y = _sign_data(rng, 40)
    model = _classifier()
    history = model.fit(X, y, epochs=4, lr=0.02, lr_schedule="cosine", progress=False)
    assert history.history["lr"] == pytest.approx([0.02, 0.02 * (1 + np.cos(np.pi / 4)) / 2, 0.01,
                                                   0.02 * (1 + np.cos(3 * np.pi / 4)) / 2])
    opt = optim.SGD(model.params, lr=0.1)
    plateau = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=10.0)
    history = model.fit(X, y, epochs=3, optimizer=opt, lr_schedule=plateau, progress=False)
    assert history.history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    with pytest.raises(ValueError, match="optimizer"):
        model.fit(X, y, optimizer=optim.SGD({"w": np.zeros(1)}, lr=0.1), progress=False)
    with pytest.raises(ValueError, match="lr_schedule"):
        model.fit(X, y, lr_schedule="linear", progress=False)


def test_buckets_cover_every_example_once_and_group_similar_sizes(rng):
    sizes = rng.integers(1, 50, 1000)
    batches = _base.buckets(sizes, 16, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([np.ptp(sizes[b]) for b in batches])
    assert spread < 5  # random batches would spread over ~45
    ordered = _base.buckets(sizes, 16, None)
    assert np.all(np.diff(sizes[np.concatenate(ordered)]) >= 0)


def test_padded_array_with_lengths_equals_list_of_sequences(rng):
    X, y = _sign_data(rng, 30)
    padded = np.zeros((30, 7, 1), np.float32)
    lengths = np.array([len(x) for x in X])
    for i, x in enumerate(X):
        padded[i, : len(x)] = x
        padded[i, len(x):] = 99.0  # padding never counts
    model = _classifier()
    model.fit(X, y, epochs=1, progress=False)
    np.testing.assert_array_equal(model.predict_proba(X), model.predict_proba(padded, lengths=lengths))


def test_save_load_errors(tmp_path, rng):
    unbuilt = _classifier()  # num_classes is inferred by the first fit
    with pytest.raises(RuntimeError, match="fit"):
        unbuilt.save(tmp_path / "m.npz")
    with pytest.raises(RuntimeError, match="fit"):
        unbuilt.predict([np.zeros((2, 1))])
    X, y = _sign_data(rng, 20)
    unbuilt.fit(X, y, epochs=1, progress=False)
    unbuilt.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="holds a 'SequenceClassifier', not a Seq2Seq"):
        models.Seq2Seq.load(tmp_path / "m.npz")
    assert isinstance(models.Model.load(tmp_path / "m.npz"), models.SequenceClassifier)
    rnncore.GRU(2, 3).save(tmp_path / "layer.npz")
    with pytest.raises(ValueError, match="holds a 'GRU', not a Model"):
        models.Model.load(tmp_path / "layer.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        models.Model.load(tmp_path / "junk.npz")


def test_saved_file_is_npz_with_json_config_and_no_pickle(tmp_path, rng):
    X, y = _sign_data(rng, 20)
    model = _classifier(num_classes=2)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        meta = json.loads(archive["__rnncore__"][()])
        assert meta["class"] == "SequenceClassifier" and meta["config"] == model.config
        assert set(archive.files) - {"__rnncore__"} == set(model.params)


@pytest.mark.parametrize("kwargs, match", [
    ({"cell": "cnn"}, "cell"),
    ({"hidden_size": 0}, "hidden_size"),
    ({"num_layers": 1.5}, "num_layers"),
    ({"dropout": 1.0}, "dropout"),
    ({"dtype": "float16"}, "dtype"),
    ({"seed": -1}, "seed"),
    ({"pooling": "sum"}, "pooling"),
    ({"bidirectional": 1}, "bidirectional"),
    ({"num_classes": 1}, "num_classes"),
])
def test_bad_constructor_arguments_name_the_argument(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        _classifier(**kwargs)


def test_input_kind_must_be_given_once():
    with pytest.raises(ValueError, match="input_size.*vocab_size"):
        models.SequenceClassifier(hidden_size=4)
    with pytest.raises(ValueError, match="not both"):
        models.SequenceClassifier(input_size=3, vocab_size=4)
    with pytest.raises(ValueError, match="embedding_dim"):
        models.SequenceClassifier(input_size=3, embedding_dim=4)


@pytest.mark.parametrize("call, match", [
    (lambda m, X, y: m.fit(X, y, epochs=0), "epochs"),
    (lambda m, X, y: m.fit(X, y, batch_size=-1), "batch_size"),
    (lambda m, X, y: m.fit(X, y, optimizer="adagrad"), "optimizer"),
    (lambda m, X, y: m.fit(X, y, clip_norm=-1.0), "clip_norm"),
    (lambda m, X, y: m.fit(X, y, early_stopping=3), "early_stopping"),
    (lambda m, X, y: m.fit(X, y, validation_data=X), "validation_data"),
    (lambda m, X, y: m.fit(X, y[:-1]), "y"),
    (lambda m, X, y: m.fit(X), "y is required"),
    (lambda m, X, y: m.fit(X, y.astype(float)), "y"),
    (lambda m, X, y: m.fit([x[:, 0] for x in X], y), r"X\[0\]"),
    (lambda m, X, y: m.fit([np.zeros((0, 1))] + X[1:], y), r"X\[0\]"),
    (lambda m, X, y: m.fit([np.full((2, 1), np.nan)] + X[1:], y), "NaN"),
    (lambda m, X, y: m.fit("text", y), "X"),
    (lambda m, X, y: m.fit([], y), "X"),
    (lambda m, X, y: m.fit(np.zeros((len(y), 3, 1)), y, lengths=np.full(len(y), 4)), "lengths"),
    (lambda m, X, y: m.fit(X, y, lengths=[2] * len(y)), "lengths"),
])
def test_bad_fit_arguments_name_the_argument(rng, call, match):
    X, y = _sign_data(rng, 10)
    with pytest.raises((TypeError, ValueError), match=match):
        call(_classifier(), X, y)


def test_token_ids_out_of_range_name_x():
    model = models.SequenceClassifier(vocab_size=5, hidden_size=4, num_classes=2, seed=0)
    with pytest.raises(ValueError, match=r"X must hold token ids in \[0, 5\)"):
        model.predict([np.array([1, 5])])
    with pytest.raises(TypeError, match=r"X\[0\] must hold integer token ids"):
        model.predict([np.array([1.0, 2.0])])


def test_fit_stops_on_a_nonfinite_loss_naming_epoch_and_batch(rng):
    X, y = _sign_data(rng, 64)
    model = _classifier()
    model.fit(X, y, epochs=1, progress=False)
    model.params["head.weight"][0, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"non-finite loss at epoch 1, batch 1 .*skip_nonfinite=True"):
        model.fit(X, y, epochs=1, progress=False)
    with pytest.raises(FloatingPointError, match="every batch of epoch 1"):
        model.fit(X, y, epochs=1, progress=False, skip_nonfinite=True)


def test_fit_skips_nonfinite_updates_when_told(rng, monkeypatch):
    X, y = _sign_data(rng, 64)
    model = _classifier()
    model.fit(X, y, epochs=1, batch_size=16, progress=False)
    real_loss, calls = model._loss, []

    def loss_with_a_bad_gradient(batch, train):
        out = real_loss(batch, train)
        calls.append(None)
        if len(calls) % 2 == 0:  # every second batch: an inf gradient
            model.grads["head.bias"][0] = np.inf
        return out

    monkeypatch.setattr(model, "_loss", loss_with_a_bad_gradient)
    with pytest.raises(FloatingPointError, match=r"non-finite gradient of head.bias at epoch 1, batch 2"):
        model.fit(X, y, epochs=1, batch_size=16, progress=False)
    calls.clear()
    history = model.fit(X, y, epochs=2, batch_size=16, progress=False, skip_nonfinite=True)
    assert history.history["skipped"] == [2, 2]
    assert all(np.isfinite(p).all() for p in model.params.values())
