"""The one switch between the optional compiled kernels and their pure-Python oracles.

Each kernel module (``records/_native.c``, ``decode/_native.c``) is used when it built and
``TFRECORD_S3_PURE_PYTHON`` is unset, empty or ``0``; the variable is read on every call, so
tests and users can flip it at any time.
"""

from __future__ import annotations

import os

__all__ = ["PURE_PYTHON_VARIABLE", "kernels_enabled"]

PURE_PYTHON_VARIABLE = "TFRECORD_S3_PURE_PYTHON"


def kernels_enabled() -> bool:
    """False when the environment asks for the pure-Python paths."""
    return os.environ.get(PURE_PYTHON_VARIABLE, "") in ("", "0")
