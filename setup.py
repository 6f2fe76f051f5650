"""Builds the optional C kernel of the frame parser; all metadata lives in pyproject.toml.

The extension is optional: when it does not compile (no compiler, no Python headers), the
install still succeeds and tfrecord_s3 uses its pure-Python frame loop.
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup

# gcc/clang flags; MSVC gets its defaults.
_FLAGS = [] if sys.platform == "win32" else ["-O3", "-Wall", "-Wextra"]

setup(
    ext_modules=[
        Extension(
            "tfrecord_s3.records._native",
            sources=["tfrecord_s3/records/_native.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        )
    ]
)
