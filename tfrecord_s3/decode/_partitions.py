"""RaggedFeature partitions and SparseFeature: composite results built from several columns.

Works on "rows" of decoded columns: the records of a batch (``parse_example_batch``) or the
steps of a feature list (``parse_sequence_example``, where TensorFlow partitions each step
as it partitions each record of a batch). Partition features are checked per row: splits,
starts and limits must be non-decreasing and cover the row's values exactly, lengths must
add up to them, value row ids must be non-decreasing and one per value; a partition that
does not fit is a ``DecodeError`` naming the feature and row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._columns import MISSING, WRONG_KIND, Column, FlatValues
from ._location import Location
from .ragged import RaggedValues
from .sparse import SparseValues
from .specs import (
    INT64,
    TF_NAME_OF_DTYPE,
    Partition,
    RaggedFeature,
    RowLengths,
    RowLimits,
    RowSplits,
    RowStarts,
    SparseFeature,
    UniformRowLength,
    ValueRowIds,
)

__all__ = ["Rows", "ragged_feature", "sparse_feature"]

ColumnSource = Callable[[str, str], Column]


@dataclass(frozen=True)
class Rows:
    """How rows are named in errors: records of a batch ("Key: k, Index: r", at record r)
    or steps of one SequenceExample ("Feature list: k, Index: s", at the record)."""

    label: str = "Key"
    steps: bool = False

    def error(self, where: Location, row: int, key: str, message: str) -> Exception:
        return where.error(0 if self.steps else row, key, f"{self.label}: {key}, Index: {row}.  {message}")


RECORDS = Rows()


def _column(
    columns: ColumnSource, feature: str, key: str, dtype: str, nrows: int, where: Location, rows: Rows
) -> Column:
    column = columns(key, dtype)
    wrong = np.flatnonzero(column.counts == WRONG_KIND)
    if len(wrong):
        row = int(wrong[0])
        raise rows.error(
            where,
            row,
            key,
            f"Data types don't match. Expected type: {TF_NAME_OF_DTYPE[dtype]}, Actual type: {column.found_type(row)}",
        )
    if len(column.counts) != nrows:  # feature lists of different lengths
        raise rows.error(
            where, 0, feature, f"Feature list {key!r} has {len(column.counts)} steps but the values have {nrows}"
        )
    return column


def ragged_feature(
    key: str, spec: RaggedFeature, columns: ColumnSource, where: Location, rows: Rows = RECORDS
) -> RaggedValues:
    """The values of ``spec.value_key`` with ``spec.partitions`` applied within each row."""
    value_key = spec.value_key or key
    nrows = len(columns(value_key, spec.dtype).counts)
    values = _column(columns, key, value_key, spec.dtype, nrows, where, rows)
    level: FlatValues | RaggedValues | np.ndarray = values.values
    per_row = np.maximum(values.counts, 0)  # how many items of `level` each row holds
    splits_dtype = spec.row_splits_dtype
    reshaped = True  # innermost UniformRowLengths reshape the flat values, as in TensorFlow
    for partition in reversed(spec.partitions):  # innermost first
        if isinstance(partition, UniformRowLength):
            lengths, inner_rows = _uniform(key, partition.length, per_row, where, rows)
            if reshaped:
                level = _reshape(level, partition.length)
                per_row = inner_rows
                continue
        else:
            reshaped = False
            part = _column(columns, key, partition.key, INT64, nrows, where, rows)
            numbers = part.values
            assert isinstance(numbers, np.ndarray)
            counts = np.maximum(part.counts, 0)
            lengths, inner_rows = _lengths(key, partition, numbers, counts, per_row, where, rows)
        reshaped = False
        level = RaggedValues(level, lengths.astype(splits_dtype, copy=False))
        per_row = inner_rows
    return RaggedValues(level, per_row.astype(splits_dtype, copy=False))


def _reshape(level: FlatValues | RaggedValues | np.ndarray, length: int) -> np.ndarray:
    if isinstance(level, list):
        array = np.empty(len(level), dtype=object)
        array[:] = level
        level = array
    assert isinstance(level, np.ndarray)
    return level.reshape((-1, length, *level.shape[1:]))


def _uniform(key: str, length: int, per_row: np.ndarray, where: Location, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
    uneven = np.flatnonzero(per_row % length)
    if len(uneven):
        row = int(uneven[0])
        raise rows.error(
            where, row, key, f"{int(per_row[row])} values do not split into rows of UniformRowLength({length})"
        )
    inner_rows = per_row // length
    return np.full(int(inner_rows.sum()), length, dtype=np.int64), inner_rows


def _lengths(
    key: str,
    partition: Partition,
    numbers: np.ndarray,
    counts: np.ndarray,
    per_row: np.ndarray,
    where: Location,
    rows: Rows,
) -> tuple[np.ndarray, np.ndarray]:
    """(the row lengths the partition gives, concatenated over rows; how many per row)."""
    assert not isinstance(partition, UniformRowLength)
    name = partition.key
    if isinstance(partition, RowLengths):
        lengths, inner_rows = numbers, counts
        if (lengths < 0).any():
            row = int(np.repeat(np.arange(len(counts)), counts)[np.flatnonzero(lengths < 0)[0]])
            raise rows.error(where, row, key, f"Negative row length in {name!r}")
    else:
        parts: list[np.ndarray] = []
        inner_rows = np.zeros(len(counts), dtype=np.int64)
        position = 0
        for row, (count, size) in enumerate(zip(counts.tolist(), per_row.tolist(), strict=True)):
            own = numbers[position : position + count]
            position += count
            found = _row_lengths(partition, own, size)
            if found is None:
                raise rows.error(where, row, key, _PROBLEM[type(partition)].format(key=name, size=size))
            parts.append(found)
            inner_rows[row] = len(found)
        lengths = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    sums = _sums_per_row(lengths, inner_rows)
    mismatch = np.flatnonzero(sums != per_row)
    if len(mismatch):
        row = int(mismatch[0])
        raise rows.error(
            where,
            row,
            key,
            f"Row partition {name!r} covers {int(sums[row])} values but there are {int(per_row[row])}",
        )
    return lengths, inner_rows


_PROBLEM = {
    RowSplits: "Row splits {key!r} must start at 0, not decrease and end at {size}",
    RowStarts: "Row starts {key!r} must start at 0, not decrease and stay within {size}",
    RowLimits: "Row limits {key!r} must not decrease and must end at {size}",
    ValueRowIds: "Value row ids {key!r} must be >= 0, not decrease and number {size}",
}


def _row_lengths(partition: Partition, own: np.ndarray, size: int) -> np.ndarray | None:
    """One row's inner row lengths from its partition values; None when they do not fit."""
    steps = np.diff(own)
    if (steps < 0).any():
        return None
    if isinstance(partition, RowSplits):
        if len(own) == 0:  # no splits and no values: zero rows
            return np.zeros(0, dtype=np.int64) if size == 0 else None
        return steps if own[0] == 0 and own[-1] == size else None
    if isinstance(partition, RowStarts):
        if len(own) == 0:
            return np.zeros(0, dtype=np.int64) if size == 0 else None
        if own[0] != 0 or own[-1] > size:
            return None
        return np.diff(np.append(own, size))
    if isinstance(partition, RowLimits):
        if len(own) == 0:
            return np.zeros(0, dtype=np.int64) if size == 0 else None
        if own[0] < 0 or own[-1] != size:
            return None
        return np.diff(np.concatenate(([0], own)))
    assert isinstance(partition, ValueRowIds)
    if len(own) != size or (len(own) and own[0] < 0):
        return None
    found: np.ndarray = np.bincount(own, minlength=int(own[-1]) + 1 if len(own) else 0).astype(np.int64)
    return found


def _sums_per_row(lengths: np.ndarray, rows: np.ndarray) -> np.ndarray:
    cumulative = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=cumulative[1:])
    bounds = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(rows, out=bounds[1:])
    sums: np.ndarray = cumulative[bounds[1:]] - cumulative[bounds[:-1]]
    return sums


def sparse_feature(
    key: str, spec: SparseFeature, columns: ColumnSource, batch_size: int, where: Location
) -> SparseValues:
    """TensorFlow's ``sparse_merge`` of the index features and the value feature, per record."""
    values = _column(columns, key, spec.value_key, spec.dtype, batch_size, where, RECORDS)
    counts = np.maximum(values.counts, 0)
    index_columns = []
    for index_key in spec.index_keys:
        column = _column(columns, key, index_key, INT64, batch_size, where, RECORDS)
        index_counts = np.where(column.counts == MISSING, 0, column.counts)
        mismatch = np.flatnonzero(index_counts != counts)
        if len(mismatch):
            row = int(mismatch[0])
            raise RECORDS.error(
                where,
                row,
                key,
                f"SparseFeature index {index_key!r} has {int(index_counts[row])} values "
                f"but {spec.value_key!r} has {int(counts[row])}",
            )
        index_columns.append(column.values)
    record_of = np.repeat(np.arange(batch_size, dtype=np.int64), counts)
    indices = np.stack([record_of, *index_columns], axis=1).astype(np.int64, copy=False)
    flat = values.values
    if not spec.already_sorted and len(indices):
        order = np.lexsort(indices.T[::-1])
        indices = indices[order]
        flat = [flat[i] for i in order.tolist()] if isinstance(flat, list) else flat[order]
    return SparseValues(flat, indices, (batch_size, *spec.dense_shape))
