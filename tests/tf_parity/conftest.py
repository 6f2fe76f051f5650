"""Fixtures of the TensorFlow parity tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


# replaced by tests/conftest.py's fixture on merge
@pytest.fixture(scope="session")
def tf_python() -> Path:
    """A python executable with tensorflow importable ($TFR_TEST_TF_PYTHON, else /work/.venvs/tf)."""
    path = Path(os.environ.get("TFR_TEST_TF_PYTHON", "/work/.venvs/tf/bin/python"))
    if not path.exists():
        pytest.skip(f"no python with TensorFlow at {path} (set TFR_TEST_TF_PYTHON to one)")
    return path
