"""Builds the optional C kernels (frame parser, Example decoding); all metadata lives in
pyproject.toml.

Both extensions are optional: when one does not compile (no compiler, no Python headers), the
install still succeeds and tfrecord_s3 uses its pure-Python loop instead.
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
        ),
        Extension(
            "tfrecord_s3.decode._native",
            sources=["tfrecord_s3/decode/_native.c"],
            extra_compile_args=_FLAGS,
            optional=True,
        ),
    ]
)
