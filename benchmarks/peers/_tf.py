"""TensorFlow helpers shared by the TF peer scripts (imports stay inside functions: this module
is type-checked in our environment, where TensorFlow is not installed)."""

from __future__ import annotations

import importlib
from typing import Any

_DTYPES = {"bytes": "string", "int64": "int64", "float32": "float32"}


def import_tf(*, with_io: bool) -> Any:
    """Imports TensorFlow (tensorflow_io first when asked: it must register s3:// before TF
    builds its filesystem registry)."""
    if with_io:
        importlib.import_module("tensorflow_io")
    import tensorflow as tf

    return tf


def feature_spec(tf: Any, spec: dict[str, list[Any]]) -> dict[str, Any]:
    """FEATURE_SPEC (name -> [dtype, shape]) as tf.io.FixedLenFeature objects."""
    return {name: tf.io.FixedLenFeature(shape, getattr(tf, _DTYPES[dtype])) for name, (dtype, shape) in spec.items()}


def versions(tf: Any) -> dict[str, str]:
    found = {"tensorflow": str(tf.__version__)}
    try:
        found["tensorflow-io"] = str(importlib.import_module("tensorflow_io").__version__)
    except ImportError:
        pass
    return found


def count_batches(dataset: Any) -> int:
    """Iterates a batched dataset of serialized records; returns the number of records."""
    records = 0
    for batch in dataset:
        records += int(batch.shape[0])
    return records


def count_parsed(dataset: Any) -> int:
    """Iterates a dataset of parsed dicts (batched); returns the number of records."""
    records = 0
    for parsed in dataset:
        first = next(iter(parsed.values()))
        records += int(first.shape[0])
    return records
