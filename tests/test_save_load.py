"""layer.save(path) / rnncore.load(path): round trips, and clear errors for
truncated, corrupted, foreign and mismatched files."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import rnncore

MODULES = {
    "lstm": lambda: rnncore.LSTM(3, 5, 2, bidirectional=True, proj_size=2, seed=1),
    "gru": lambda: rnncore.GRU(3, 5, batch_first=True, reset_after=False, dtype="float64", seed=2),
    "rnn": lambda: rnncore.RNN(3, 5, 3, "relu", bias=False, dropout=0.3, seed=3),
    "lstm_cell": lambda: rnncore.LSTMCell(3, 5, proj_size=4, dtype="float64", seed=4),
    "gru_cell": lambda: rnncore.GRUCell(3, 5, reset_after=False, seed=5),
    "rnn_cell": lambda: rnncore.RNNCell(3, 5, bias=False, nonlinearity="relu", seed=6),
}


@pytest.fixture
def saved(tmp_path):
    """A saved 2-layer LSTM: (module, path, file bytes)."""
    lstm = MODULES["lstm"]()
    path = tmp_path / "lstm.npz"
    lstm.save(path)
    return lstm, path, path.read_bytes()


@pytest.mark.parametrize("name", MODULES)
def test_round_trip(name, tmp_path, rng):
    module = MODULES[name]()
    for p in module.params.values():
        p += rng.standard_normal(p.shape).astype(p.dtype)  # not the seed's initial values
    path = tmp_path / "model"  # no suffix: written exactly here
    module.save(str(path))
    assert path.exists()
    loaded = rnncore.load(path)
    assert type(loaded) is type(module) and loaded.config == module.config
    assert list(loaded.params) == list(module.params)
    for key, p in module.params.items():
        assert loaded.params[key].dtype == p.dtype
        np.testing.assert_array_equal(loaded.params[key], p)
    if not name.endswith("cell"):
        module.eval(), loaded.eval()
    x = rng.standard_normal((4, 2, 3) if not name.endswith("cell") else (2, 3)).astype(module.dtype)
    np.testing.assert_equal(module(x), loaded(x))


def test_files_hold_no_pickle_and_readable_json(saved):
    lstm, path, _ = saved
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(archive["__rnncore__"][()])
        assert set(archive.files) == {"__rnncore__", *lstm.params}
    assert meta == {"format": "rnncore", "version": 1, "class": "LSTM", "config": lstm.config}


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_files_are_refused(saved, tmp_path, keep):
    _, _, data = saved
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="cannot read .*cut.npz"):
        rnncore.load(cut)


def test_corrupted_weights_fail_the_checksum(saved, tmp_path):
    lstm, _, data = saved
    start = data.find(lstm.params["weight_hh_l1"].tobytes())
    assert start > 0
    corrupted = bytearray(data)
    corrupted[start + 5] ^= 0x10
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="(?i)cannot read .*crc"):
        rnncore.load(bad)


def write_npz(path, meta, arrays):
    entries = dict(arrays)
    if meta is not None:
        entries["__rnncore__"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    np.savez(path, **entries)
    return path


def test_foreign_files_are_refused(saved, tmp_path):
    lstm, _, _ = saved
    text = tmp_path / "notes.txt"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match="cannot read"):
        rnncore.load(text)
    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        rnncore.load(npy)
    with pytest.raises(ValueError, match="not an rnncore file"):
        rnncore.load(write_npz(tmp_path / "plain.npz", None, lstm.params))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __rnncore__=np.array([{"class": "LSTM"}], dtype=object))
    with pytest.raises(ValueError, match="cannot read .*pickle"):
        rnncore.load(pickled)
    with pytest.raises(FileNotFoundError):
        rnncore.load(tmp_path / "missing.npz")


def good_meta(lstm):
    return {"format": "rnncore", "version": 1, "class": "LSTM", "config": lstm.config}


@pytest.mark.parametrize("change,pattern", [
    (lambda m: "{not json", "invalid __rnncore__ entry"),
    (lambda m: {**m, "format": "other"}, "format marker"),
    (lambda m: {**m, "version": 2}, "version 2"),
    (lambda m: {**m, "class": "Transformer"}, "unknown class 'Transformer'"),
    (lambda m: {**m, "config": None}, "no configuration"),
    (lambda m: {**m, "config": {**m["config"], "hidden_size": -1}}, "invalid configuration.*hidden_size"),
    (lambda m: {**m, "config": {**m["config"], "colour": "red"}}, "invalid configuration.*colour"),
    (lambda m: {**m, "config": {**m["config"], "hidden_size": 6}},
     "do not fit.*weight_ih_l0: expected shape \\(24, 3\\), got \\(20, 3\\)"),
    (lambda m: {**m, "config": {**m["config"], "num_layers": 3}}, "do not fit.*missing: weight_ih_l2"),
    (lambda m: {**m, "config": {**m["config"], "dtype": "float64"}}, "declares dtype float64"),
], ids=["json", "marker", "version", "class", "no-config", "bad-config", "unknown-argument",
        "shapes", "missing", "dtype"])
def test_mismatched_files_are_refused(saved, tmp_path, change, pattern):
    lstm, _, _ = saved
    path = write_npz(tmp_path / "x.npz", change(good_meta(lstm)), lstm.params)
    with pytest.raises(ValueError, match="(?s)" + pattern):
        rnncore.load(path)


def test_save_refuses_other_objects(tmp_path):
    from rnncore.serialization import save

    with pytest.raises(TypeError, match="module must be one of"):
        save({"weight": np.zeros(3)}, tmp_path / "x.npz")
    assert not pathlib.Path(tmp_path / "x.npz").exists()
