"""Fixtures of the dataset tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


# replaced on merge: the shared ``tf_python`` fixture of tests/conftest.py takes its place.
@pytest.fixture(scope="session")
def tf_python() -> Path:
    """A Python with TensorFlow (``TFR_TF_PYTHON``, else the peers' venv), or skip."""
    candidate = Path(os.environ.get("TFR_TF_PYTHON", "/work/.venvs/tf/bin/python"))
    if not candidate.exists():
        pytest.skip(f"no Python with TensorFlow at {candidate} (set TFR_TF_PYTHON); compared where there is one")
    probe = subprocess.run(
        [str(candidate), "-c", "import tensorflow"],
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    if probe.returncode != 0:
        pytest.skip(f"{candidate} cannot import tensorflow: {probe.stderr.decode(errors='replace')[-300:]}")
    return candidate
