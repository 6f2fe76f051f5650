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

from ..errors import ConfigError, DecodeError
from ._columns import MISSING, WRONG_KIND, Column, FlatValues
from .ragged import RaggedValues
from .specs import (
    BYTES,
    NUMPY_DTYPE,
    TF_NAME_OF_DTYPE,
    FeatureSpec,
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RowLengths,
    VarLenFeature,
)

__all__ = ["Location", "assemble", "column_keys"]

# (key, dtype) -> the decoded column of that key for the whole batch.
ColumnSource = Callable[[str, str], Column]


class Location:
    """Names records in error messages: ``Name: <path> at byte <offset>`` (TensorFlow's
    ``Name: <unknown>`` when unknown) and fills ``DecodeError.path`` / ``.offset``."""

    def __init__(self, path: str | None = None, offsets: Sequence[int] | None = None) -> None:
        self.path = path
        self.offsets = offsets

    def offset(self, index: int) -> int | None:
        return None if self.offsets is None else int(self.offsets[index])

    def name(self, index: int) -> str:
        if self.path is None:
            return "<unknown>" if self.offsets is None else f"<unknown> at byte {self.offset(index)}"
        return self.path if self.offsets is None else f"{self.path} at byte {self.offset(index)}"

    def error(self, index: int, feature: str | None, message: str) -> DecodeError:
        return DecodeError(
            f"Name: {self.name(index)}, {message}", path=self.path, offset=self.offset(index), feature=feature
        )


def column_keys(features: Mapping[str, FeatureSpec]) -> list[tuple[str, str]]:
    """Every (key, dtype) column the specs read, each once, in spec order."""
    wanted: dict[tuple[str, str], None] = {}
    for key, spec in features.items():
        if isinstance(spec, RaggedFeature):
            wanted[(spec.value_key or key, spec.dtype)] = None
            for partition in spec.partitions:
                wanted[(partition.key, "int64")] = None
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
            _check_kinds(key, spec.dtype, column, where)
            out[key] = RaggedValues(column.values, np.maximum(column.counts, 0))
        elif isinstance(spec, FixedLenSequenceFeature):
            out[key] = _fixed_sequence(key, spec, columns(key, spec.dtype), batch_size, where)
        else:
            out[key] = _ragged(key, spec, columns, where)
    return out


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(dim) for dim in shape) + "]"


def _check_kinds(key: str, dtype: str, column: Column, where: Location) -> None:
    wrong = np.flatnonzero(column.counts == WRONG_KIND)
    if len(wrong):
        index = int(wrong[0])
        raise where.error(
            index,
            key,
            f"Key: {key}, Index: {index}.  Data types don't match. "
            f"Expected type: {TF_NAME_OF_DTYPE[dtype]}, Actual type: {column.found_type(index)}",
        )


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


def _fixed_sequence(
    key: str, spec: FixedLenSequenceFeature, column: Column, batch_size: int, where: Location
) -> np.ndarray:
    if not spec.allow_missing:
        raise ConfigError(
            f"feature {key!r}: FixedLenSequenceFeature in an Example requires allow_missing=True (as in TensorFlow)"
        )
    _check_kinds(key, spec.dtype, column, where)
    counts = np.maximum(column.counts, 0)
    uneven = np.flatnonzero(counts % spec.size)
    if len(uneven):
        index = int(uneven[0])
        raise where.error(
            index,
            key,
            f"Key: {key}, Index: {index}.  Number of {TF_NAME_OF_DTYPE[spec.dtype]} values is not a multiple "
            f"of the row size.  Values size: {int(counts[index])} but row shape: {_shape_text(spec.shape)}",
        )
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


def _ragged(key: str, spec: RaggedFeature, columns: ColumnSource, where: Location) -> RaggedValues:
    value_key = spec.value_key or key
    column = columns(value_key, spec.dtype)
    _check_kinds(key, spec.dtype, column, where)
    level: FlatValues | RaggedValues = column.values
    per_record = np.maximum(column.counts, 0)  # how many items of `level` each record holds
    for partition in reversed(spec.partitions):  # innermost first
        part = columns(partition.key, "int64")
        _check_kinds(partition.key, "int64", part, where)
        numbers = part.values
        counts = np.maximum(part.counts, 0)
        assert isinstance(numbers, np.ndarray)
        if isinstance(partition, RowLengths):
            lengths, rows = numbers, counts
        else:
            lengths, rows = _splits_to_lengths(key, partition.key, numbers, counts, per_record, where)
        if (lengths < 0).any():
            index = int(np.repeat(np.arange(len(counts)), counts)[np.flatnonzero(lengths < 0)[0]])
            raise where.error(index, key, f"Key: {key}, Index: {index}.  Negative row length in {partition.key!r}")
        sums = _sums_per_record(lengths, rows)
        mismatch = np.flatnonzero(sums != per_record)
        if len(mismatch):
            index = int(mismatch[0])
            raise where.error(
                index,
                key,
                f"Key: {key}, Index: {index}.  Row partition {partition.key!r} covers {int(sums[index])} values "
                f"but {value_key!r} has {int(per_record[index])}",
            )
        level = RaggedValues(level, lengths.astype(np.int64, copy=False))
        per_record = rows
    return RaggedValues(level, per_record)


def _sums_per_record(lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    cumulative = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=cumulative[1:])
    bounds = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(rows, out=bounds[1:])
    sums: np.ndarray = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    return sums


def _splits_to_lengths(
    key: str, splits_key: str, splits: np.ndarray, counts: np.ndarray, per_record: np.ndarray, where: Location
) -> tuple[np.ndarray, np.ndarray]:
    """Per record ``[0, ..., n]`` row splits -> concatenated row lengths and rows per record."""
    lengths: list[np.ndarray] = []
    rows = np.zeros(len(counts), dtype=np.int64)
    position = 0
    for index, count in enumerate(counts.tolist()):
        own = splits[position : position + count]
        position += count
        if count == 0 and per_record[index] == 0:
            continue  # no splits and no values: zero rows
        if count == 0 or own[0] != 0 or (np.diff(own) < 0).any():
            raise where.error(
                index, key, f"Key: {key}, Index: {index}.  Row splits {splits_key!r} must start at 0 and not decrease"
            )
        lengths.append(np.diff(own))
        rows[index] = count - 1
    flat = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    return flat, rows
