"""SparseValues: a SparseTensor's three parts, what a SparseFeature decodes to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .ragged import FlatValues

__all__ = ["SparseValues"]


@dataclass(frozen=True, eq=False)
class SparseValues:
    """``tf.SparseTensor`` in numpy: value ``i`` sits at ``indices()[i]`` in a ``dense_shape`` array.

    ``values``: np.ndarray (int64 / float32) or ``list[bytes]``; ``indices()``: int64
    ``[nvalues, rank]`` (a batch puts the record's index first), sorted row-major unless the
    spec said ``already_sorted``; ``dense_shape``: a tuple of ints. The same names as the
    SparseTensor view of a :class:`RaggedValues` (``.values``, ``.indices()``, ``.dense_shape``).
    """

    values: FlatValues
    index_array: np.ndarray
    dense_shape: tuple[int, ...]

    def indices(self) -> np.ndarray:
        """SparseTensor indices (int64, shape ``[nvalues, rank]``)."""
        return self.index_array

    def row(self, index: int) -> SparseValues:
        """Record ``index`` of a batch: its entries, without the leading record index."""
        nrows = self.dense_shape[0]
        if not -nrows <= index < nrows:
            raise IndexError(f"row {index} out of range for {nrows} rows")
        index %= nrows
        mine = np.flatnonzero(self.index_array[:, 0] == index)
        flat = self.values
        values: FlatValues = [flat[i] for i in mine.tolist()] if isinstance(flat, list) else flat[mine]
        return SparseValues(values, self.index_array[mine, 1:], self.dense_shape[1:])

    def to_dense(self, default_value: Any = None) -> np.ndarray:
        """A ``dense_shape`` array holding the values, ``default_value`` (0 / 0.0 / b"") elsewhere;
        of entries at the same index the last wins. ``IndexError`` for an index out of bounds."""
        if isinstance(self.values, list):
            out = np.full(self.dense_shape, b"" if default_value is None else default_value, dtype=object)
            values: np.ndarray = np.empty(len(self.values), dtype=object)
            values[:] = self.values
        else:
            out = np.full(self.dense_shape, 0 if default_value is None else default_value, dtype=self.values.dtype)
            values = self.values
        if len(values):
            out[tuple(self.index_array.T)] = values
        return out

    def __repr__(self) -> str:
        indices = self.index_array.tolist()
        return f"SparseValues(dense_shape={self.dense_shape}, indices={indices}, values={self.values!r})"
