"""Generated protobuf classes for tf.train.Example and friends (package ``tfrecord_s3``).

Wire-compatible with TensorFlow's ``tensorflow/core/example/{feature,example}.proto``, under
our own proto package so they load in the same process as TensorFlow. Sources: ``proto/``;
regenerate with ``python scripts/regen_proto.py``.
"""

from __future__ import annotations

from .example_pb2 import Example, SequenceExample
from .feature_pb2 import BytesList, Feature, FeatureList, FeatureLists, Features, FloatList, Int64List

__all__ = [
    "BytesList",
    "Example",
    "Feature",
    "FeatureList",
    "FeatureLists",
    "Features",
    "FloatList",
    "Int64List",
    "SequenceExample",
]
