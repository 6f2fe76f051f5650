"""Apply feature specs to decoded columns: defaults, shapes, padding, and TensorFlow's errors.

Everything here runs once per feature per batch (numpy over the whole column); the error
messages mirror ``tf.io.parse_example``'s (``Name: <unknown>, Feature: label (data type:
int64) is required but could not be found.``), with the record's path and offset as the
name when the caller knows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ._columns import MISSING, WRONG_KIND, Column, FlatValues
from ._location import Location, check_kinds
from ._partitions import ragged_feature, sparse_feature
from .ragged import RaggedValues
from .specs import (
    BYTES,
    INT64,
    NUMPY_DTYPE,
    TF_NAME_OF_DTYPE,
    FeatureSpec,
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    SparseFeature,
    UniformRowLength,
    VarLenFeature,
)

__all__ = ["Location", "assemble", "column_keys"]

# (key, dtype) -> the decoded column of that key for the whole batch.
ColumnSource = Callable[[str, str], Column]


def column_keys(features: Mapping[str, FeatureSpec]) -> list[tuple[str, str]]:
    """Every (key, dtype) column the specs read, each once, in spec order."""
    wanted: dict[tuple[str, str], None] = {}
    for key, spec in features.items():
        if isinstance(spec, RaggedFeature):
            wanted[(spec.value_key or key, spec.dtype)] = None
            for partition in spec.partitions:
                if not isinstance(partition, UniformRowLength):
                    wanted[(partition.key, INT64)] = None
        elif isinstance(spec, SparseFeature):
            for index_key in spec.index_keys:
                wanted[(index_key, INT64)] = None
            wanted[(spec.value_key, spec.dtype)] = None
        elif isinstance(spec, (FixedLenFeature, VarLenFeature, FixedLenSequenceFeature)):
            wanted[(key, spec.dtype)] = None
        else:
            raise ConfigError(f"feature {key!r}: {spec!r} is not a feature spec")
    return list(wanted)


def assemble(
    features: Mapping[str, FeatureSpec], columns: ColumnSource, batch_size: int, where: Location
) -> dict[str, Any]:
    """Turn decoded columns into the batch result of each spec (see ``parse_example_batch``)."""
    out: dict[str, Any] = {}
    for key, spec in features.items():
        if isinstance(spec, FixedLenFeature):
            out[key] = _fixed(key, spec, columns(key, spec.dtype), batch_size, where)
        elif isinstance(spec, VarLenFeature):
            column = columns(key, spec.dtype)
            check_kinds(key, spec.dtype, column, where)
            out[key] = RaggedValues(column.values, np.maximum(column.counts, 0))
        elif isinstance(spec, FixedLenSequenceFeature):
            out[key] = _fixed_sequence(key, spec, columns(key, spec.dtype), batch_size, where)
        elif isinstance(spec, SparseFeature):
            out[key] = sparse_feature(key, spec, columns, batch_size, where)
        else:
            out[key] = ragged_feature(key, spec, columns, where)
    return out


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(dim) for dim in shape) + "]"


def _object_array(values: FlatValues) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _flat_array(values: FlatValues, dtype: str) -> np.ndarray:
    return _object_array(values) if dtype == BYTES else values  # type: ignore[return-value]


def _fixed(key: str, spec: FixedLenFeature, column: Column, batch_size: int, where: Location) -> np.ndarray:
    counts = column.counts
    size = spec.size
    missing = counts == MISSING
    no_default = spec.default is None
    bad = (counts == WRONG_KIND) | ((counts >= 0) & (counts != size))
    if no_default:
        bad |= missing
    problems = np.flatnonzero(bad)
    if len(problems):  # report the first bad record, as TensorFlow does
        index = int(problems[0])
        count = int(counts[index])
        dtype_name = TF_NAME_OF_DTYPE[spec.dtype]
        if count == MISSING:
            message = f"Feature: {key} (data type: {dtype_name}) is required but could not be found."
        elif count == WRONG_KIND:
            message = (
                f"Key: {key}, Index: {index}.  Data types don't match. "
                f"Data type: {column.found_type(index)} but expected type: {dtype_name}"
            )
        else:
            message = (
                f"Key: {key}, Index: {index}.  Number of {dtype_name} values != expected.  "
                f"Values size: {count} but output shape: {_shape_text(spec.shape)}"
            )
        raise where.error(index, key, message)
    if size == 0:
        return np.empty((batch_size, *spec.shape), dtype=NUMPY_DTYPE[spec.dtype])
    values = _flat_array(column.values, spec.dtype)
    if not missing.any():
        return values.reshape((batch_size, *spec.shape))
    out = np.empty((batch_size, size), dtype=NUMPY_DTYPE[spec.dtype])
    out[~missing] = values.reshape(-1, size)
    default = np.empty(size, dtype=out.dtype)
    default[:] = spec.default
    out[missing] = default
    return out.reshape((batch_size, *spec.shape))


def check_whole_rows(key: str, spec: FixedLenSequenceFeature, counts: np.ndarray, where: Location) -> None:
    """Raise (as TensorFlow words it) for the first record whose value count is not a whole
    number of ``spec``'s rows."""
    uneven = np.flatnonzero(counts % spec.size)
    if len(uneven):
        index = int(uneven[0])
        raise where.error(
            index,
            key,
            f"Key: {key}, Index: {index}.  Number of {TF_NAME_OF_DTYPE[spec.dtype]} values is not a multiple "
            f"of the row size.  Values size: {int(counts[index])} but row shape: {_shape_text(spec.shape)}",
        )


def _fixed_sequence(
    key: str, spec: FixedLenSequenceFeature, column: Column, batch_size: int, where: Location
) -> np.ndarray:
    check_kinds(key, spec.dtype, column, where)
    counts = np.maximum(column.counts, 0)
    check_whole_rows(key, spec, counts, where)
    rows = counts // spec.size
    longest = int(rows.max()) if batch_size else 0
    out = np.full((batch_size, longest * spec.size), spec.padding, dtype=NUMPY_DTYPE[spec.dtype])
    total = int(counts.sum())
    if total:
        # Record r's values go to the start of its padded row: flat position r * width + i.
        starts = np.cumsum(counts) - counts
        destination = np.arange(total, dtype=np.int64) + np.repeat(
            np.arange(batch_size, dtype=np.int64) * longest * spec.size - starts, counts
        )
        out.reshape(-1)[destination] = _flat_array(column.values, spec.dtype)
    return out.reshape((batch_size, longest, *spec.shape))
