"""RaggedValues: flat values split into rows of varying length (VarLen and Ragged results)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RaggedValues"]

# What a column of values is: int64 / float32 arrays, or a list of bytes.
FlatValues = np.ndarray | list[bytes]


@dataclass(frozen=True, eq=False)
class RaggedValues:
    """Rows of varying length over one flat ``values`` column, the way a training loop wants it.

    ``values``: np.ndarray (int64 / float32), ``list[bytes]``, or another RaggedValues (nested
    partitions). ``row_lengths``: np.ndarray, one entry per row (a record of a batch, or a
    step of a sequence): int64, or a RaggedFeature's ``row_splits_dtype`` (int32 by default).
    Row ``i`` is ``values[row_splits[i]:row_splits[i + 1]]``.

    ``indices`` / ``dense_shape`` give TensorFlow's SparseTensor view of a VarLenFeature
    result; ``to_dense`` pads; ``to_list`` nests Python lists.
    """

    values: FlatValues | RaggedValues
    row_lengths: np.ndarray

    @property
    def row_splits(self) -> np.ndarray:
        """``[0, cumsum(row_lengths)...]`` (the dtype of ``row_lengths``), length ``nrows + 1``."""
        splits = np.zeros(len(self.row_lengths) + 1, dtype=self.row_lengths.dtype)
        np.cumsum(self.row_lengths, out=splits[1:])
        return splits

    @property
    def nrows(self) -> int:
        return len(self.row_lengths)

    def __len__(self) -> int:
        return len(self.row_lengths)

    def row(self, index: int) -> FlatValues | RaggedValues:
        """The values of one row (a slice of ``values``)."""
        if not -self.nrows <= index < self.nrows:
            raise IndexError(f"row {index} out of range for {self.nrows} rows")
        index %= self.nrows
        start = int(self.row_lengths[:index].sum())
        stop = start + int(self.row_lengths[index])
        return _slice(self.values, start, stop)

    def __getitem__(self, index: int) -> FlatValues | RaggedValues:
        return self.row(index)

    @property
    def dense_shape(self) -> tuple[int, int]:
        """SparseTensor dense shape: ``(nrows, longest row)`` (longest is 0 when there are no values)."""
        longest = int(self.row_lengths.max()) if len(self.row_lengths) else 0
        return (self.nrows, longest)

    def indices(self) -> np.ndarray:
        """SparseTensor indices ``[[row, position], ...]`` (int64, shape ``[nvalues, 2]``)."""
        rows = np.repeat(np.arange(self.nrows, dtype=np.int64), self.row_lengths)
        positions = np.arange(len(rows), dtype=np.int64) - np.repeat(self.row_splits[:-1], self.row_lengths)
        return np.stack([rows, positions], axis=1) if len(rows) else np.zeros((0, 2), dtype=np.int64)

    def to_dense(self, default_value: Any = None) -> np.ndarray:
        """A ``dense_shape`` array, short rows padded with ``default_value`` (0 / 0.0 / b"")."""
        if isinstance(self.values, RaggedValues):
            raise TypeError("to_dense needs flat values; this RaggedValues is nested")
        nrows, longest = self.dense_shape
        if isinstance(self.values, list):
            out = np.full((nrows, longest), b"" if default_value is None else default_value, dtype=object)
        else:
            out = np.full((nrows, longest), 0 if default_value is None else default_value, dtype=self.values.dtype)
        where = self.indices()
        if len(where):
            values = np.array(self.values, dtype=object) if isinstance(self.values, list) else self.values
            out[where[:, 0], where[:, 1]] = values
        return out

    def to_list(self) -> list[Any]:
        """Nested Python lists (ints, floats, bytes)."""
        splits = self.row_splits.tolist()
        inner = self.values.to_list() if isinstance(self.values, RaggedValues) else list(_as_list(self.values))
        return [inner[splits[i] : splits[i + 1]] for i in range(self.nrows)]

    def __repr__(self) -> str:
        return f"RaggedValues(nrows={self.nrows}, values={self.values!r}, row_lengths={self.row_lengths!r})"


def _slice(values: FlatValues | RaggedValues, start: int, stop: int) -> FlatValues | RaggedValues:
    if isinstance(values, RaggedValues):
        splits = values.row_splits
        return RaggedValues(
            _slice(values.values, int(splits[start]), int(splits[stop])), values.row_lengths[start:stop]
        )
    return values[start:stop]


def _as_list(values: FlatValues) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else values
