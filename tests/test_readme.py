"""The README's Python examples run as written."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code, request):
    if "import torch" in code or "torch." in code:
        request.getfixturevalue("torch")  # skips (or fails in CI) without torch
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
