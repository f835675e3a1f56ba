"""The demo: a Seq2Seq model learns to add numbers written as text."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import rnncore.__main__ as cli
from rnncore import demo


def test_sums_are_distinct_and_held_out_ones_unseen():
    rng = np.random.default_rng(0)
    train = demo.make_sums(500, 3, rng)
    test = demo.make_sums(200, 3, rng, exclude=set(train))
    assert len(set(train)) == 500 and not set(train) & set(test)
    assert all(0 <= a < 1000 and 0 <= b < 1000 for a, b in train + test)
    assert {len(str(a)) for a, _ in train} == {1, 2, 3}
    X, y = demo.encode([(535, 61)])
    assert demo.VOCAB.decode(X[0]) == "535+61" and demo.VOCAB.decode(y[0]) == "596"
    with pytest.raises(ValueError, match="distinct pairs"):
        demo.make_sums(101, 1, rng)


def test_reduced_demo_learns_to_add():
    """A few seconds of training: far above chance (guessing a sum exactly: ~0.1%)."""
    out = io.StringIO()
    result = demo.run(train_size=6000, test_size=200, epochs=5, hidden_size=40, batch_size=32, lr=0.015,
                      progress=False, examples=4, out=out)
    assert result["accuracy"] >= 0.1
    history = result["history"].history
    assert history["train_accuracy"][-1] > 0.6  # of each next digit, under teacher forcing
    report = out.getvalue()
    assert "held-out exact match:" in report
    assert report.count(" = ") in (4, 5) and "wrong: " in report  # 4 examples, and a mistake if none is


def test_cli_passes_its_options_to_the_demo(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "run_demo", lambda **kwargs: calls.append(kwargs))
    assert cli.main(["demo", "--cell", "gru", "--epochs", "3", "--seed", "7"]) == 0
    assert cli.main(["demo"]) == 0
    assert calls == [{"cell": "gru", "epochs": 3, "seed": 7},
                     {"cell": demo.DEFAULTS["cell"], "epochs": demo.DEFAULTS["epochs"], "seed": 0}]
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])


def test_cli_help_lists_the_demo():
    out = subprocess.run([sys.executable, "-m", "rnncore", "demo", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--cell" in out.stdout and "--epochs" in out.stdout and "--seed" in out.stdout
