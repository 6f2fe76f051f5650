"""Decode tf.train.Example / SequenceExample records into numpy, as TensorFlow's parsers do."""

from __future__ import annotations

from .example import parse_example, parse_example_batch
from .ragged import RaggedValues
from .sequence import parse_sequence_example
from .sparse import SparseValues
from .specs import (
    FeatureSpec,
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RowLengths,
    RowLimits,
    RowSplits,
    RowStarts,
    SparseFeature,
    UniformRowLength,
    ValueRowIds,
    VarLenFeature,
)

__all__ = [
    "FeatureSpec",
    "FixedLenFeature",
    "FixedLenSequenceFeature",
    "RaggedFeature",
    "RaggedValues",
    "RowLengths",
    "RowLimits",
    "RowSplits",
    "RowStarts",
    "SparseFeature",
    "SparseValues",
    "UniformRowLength",
    "ValueRowIds",
    "VarLenFeature",
    "parse_example",
    "parse_example_batch",
    "parse_sequence_example",
]
