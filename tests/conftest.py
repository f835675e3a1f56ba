"""Shared fixtures.

``torch`` gives the torch module, or skips the test when PyTorch is not
installed -- unless ``RNNCORE_REQUIRE_TORCH=1`` (CI), where a missing torch
fails the test instead of skipping it.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest


@pytest.fixture(scope="session")
def torch():
    try:
        return importlib.import_module("torch")
    except ImportError:
        if os.environ.get("RNNCORE_REQUIRE_TORCH") == "1":
            pytest.fail("RNNCORE_REQUIRE_TORCH=1 but torch cannot be imported")
        pytest.skip("torch is not installed")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
