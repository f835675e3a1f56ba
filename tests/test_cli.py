"""`python -m rnncore info`: the self-check the README's first command runs."""

from __future__ import annotations

import subprocess
import sys

from rnncore.__main__ import self_check


def test_self_check_covers_every_cell_and_passes():
    rows = self_check()
    labels = {label for label, _, _ in rows}
    assert labels == {"lstm", "gru", "gru (reset before)", "rnn (tanh)", "rnn (relu)"}
    for label, dtype, err in rows:
        assert err <= (1e-5 if dtype == "float32" else 1e-10), (label, dtype, err)


def test_info_command_runs():
    out = subprocess.run([sys.executable, "-m", "rnncore", "info"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "all cells agree with the reference" in out.stdout
    assert "kernels:" in out.stdout
