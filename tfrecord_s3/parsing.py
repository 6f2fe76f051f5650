"""``parse_example`` as ``tf.io.parse_example`` takes it (one record, or a batch of them) and
``parse_single_example``, over the decoders of :mod:`tfrecord_s3.decode`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .decode import example as _example
from .decode.specs import FeatureSpec

__all__ = ["parse_example", "parse_single_example"]


def parse_example(serialized: Any, features: Mapping[str, FeatureSpec] | None = None) -> dict[str, Any]:
    """Decode a batch of serialized Examples (a list, tuple or 1-D array of them) into one dict
    of stacked values, as ``tf.io.parse_example`` does (see ``parse_example_batch``); a single
    record (``bytes``) as :func:`parse_single_example`."""
    if isinstance(serialized, (list, tuple)) or (isinstance(serialized, np.ndarray) and serialized.ndim == 1):
        return _example.parse_example_batch(list(serialized), features)
    return _example.parse_example(serialized, features)


def parse_single_example(serialized: Any, features: Mapping[str, FeatureSpec] | None = None) -> dict[str, Any]:
    """Decode one serialized Example, as ``tf.io.parse_single_example`` does."""
    return _example.parse_example(serialized, features)
