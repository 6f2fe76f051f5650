"""Decoded Examples as pyarrow Tables, for pyarrow, pandas and Polars users (no Ray needed).

The only module besides :mod:`tfrecord_s3.ray` that imports pyarrow (``pip install
"tfrecord-s3[arrow]"``). Columns per spec, with no nulls (a missing FixedLen feature takes
its default, as in TensorFlow):

- ``FixedLenFeature([])``: a plain column (``int64``, ``float32`` or ``binary``);
- ``FixedLenFeature([n])``: ``fixed_size_list<n>``; ``[a, b]``: ``fixed_size_list<a>`` of
  ``fixed_size_list<b>``, and so on;
- ``VarLenFeature``: ``list<...>``;
- ``RaggedFeature``: ``list<...>``, one more ``list`` level per partition;
- ``FixedLenSequenceFeature(shape)``: ``list`` of the ``FixedLenFeature(shape)`` type, each
  record keeping its own number of rows (:func:`parse_example_table` only: a padded
  ``parse_example_batch`` result has lost them).

Numeric values are handed over without a copy; bytes are copied once into Arrow's buffer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .decode import parse_example_batch
from .decode._assemble import Location, check_whole_rows
from .decode.ragged import RaggedValues
from .decode.specs import (
    BYTES,
    FLOAT32,
    INT64,
    FeatureSpec,
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    VarLenFeature,
)
from .errors import ConfigError

__all__ = ["arrow_schema", "arrow_type", "parse_example_table", "to_arrow"]

_VALUE_TYPE = {INT64: pa.int64(), FLOAT32: pa.float32(), BYTES: pa.binary()}
_MAX_OFFSET = 2**31 - 1  # list<> offsets are int32


def arrow_type(spec: FeatureSpec) -> pa.DataType:
    """The Arrow type of the column a spec decodes to (see the module docstring)."""
    if isinstance(spec, FixedLenFeature):
        return _fixed_type(_VALUE_TYPE[spec.dtype], tuple(spec.shape))
    if isinstance(spec, VarLenFeature):
        return pa.list_(_VALUE_TYPE[spec.dtype])
    if isinstance(spec, FixedLenSequenceFeature):
        return pa.list_(_fixed_type(_VALUE_TYPE[spec.dtype], tuple(spec.shape)))
    if isinstance(spec, RaggedFeature):
        out = pa.list_(_VALUE_TYPE[spec.dtype])
        for _ in spec.partitions:
            out = pa.list_(out)
        return out
    raise ConfigError(f"no Arrow column type for {spec!r}")


def arrow_schema(features: Mapping[str, FeatureSpec]) -> pa.Schema:
    """The schema of the tables :func:`parse_example_table` returns for ``features``."""
    return pa.schema([pa.field(key, arrow_type(spec), nullable=False) for key, spec in features.items()])


def to_arrow(batch: Mapping[str, Any], features: Mapping[str, FeatureSpec]) -> pa.Table:
    """A :func:`~tfrecord_s3.parse_example_batch` result (decoded with ``features``) as a Table.

    ``FixedLenSequenceFeature`` columns are refused (``ConfigError``): the padded arrays no
    longer say how many rows each record had; :func:`parse_example_table` keeps them.
    """
    columns: list[pa.Array] = []
    for key, spec in features.items():
        if key not in batch:
            raise ConfigError(f"feature {key!r} is in the specs but not in the batch")
        columns.append(_column(key, spec, batch[key]))
    return pa.Table.from_arrays(columns, schema=arrow_schema(features))


def parse_example_table(
    records: Sequence[bytes | bytearray | memoryview],
    features: Mapping[str, FeatureSpec],
    *,
    path: str | None = None,
    offsets: Sequence[int] | None = None,
) -> pa.Table:
    """Decode a batch of serialized Examples straight into a Table with :func:`arrow_schema`.

    Same decoder and errors as :func:`~tfrecord_s3.parse_example_batch` (``path`` and
    ``offsets`` name records in a ``DecodeError``); only the features named are decoded.
    """
    if not isinstance(features, Mapping):
        raise ConfigError(f"features must be a mapping of name -> spec, got {type(features).__name__}")
    # A sequence feature is decoded as ragged values, so each record keeps its row count.
    decoded: dict[str, FeatureSpec] = {
        key: RaggedFeature(spec.dtype, value_key=key) if isinstance(spec, FixedLenSequenceFeature) else spec
        for key, spec in features.items()
    }
    batch = parse_example_batch(records, decoded, path=path, offsets=offsets)
    where = Location(path, offsets)
    columns: list[pa.Array] = []
    for key, spec in features.items():
        if isinstance(spec, FixedLenSequenceFeature):
            columns.append(_sequence_column(key, spec, batch[key], where))
        else:
            columns.append(_column(key, spec, batch[key]))
    return pa.Table.from_arrays(columns, schema=arrow_schema(features))


def _fixed_type(value: pa.DataType, shape: tuple[int, ...]) -> pa.DataType:
    for dim in reversed(shape):
        value = pa.list_(value, dim)
    return value


def _column(key: str, spec: FeatureSpec, value: Any) -> pa.Array:
    if isinstance(spec, FixedLenFeature):
        if not isinstance(value, np.ndarray):
            raise ConfigError(f"feature {key!r}: expected the array a FixedLenFeature decodes to, got {value!r}")
        return _fixed_column(value, spec.dtype, tuple(spec.shape))
    if isinstance(spec, (VarLenFeature, RaggedFeature)):
        if not isinstance(value, RaggedValues):
            raise ConfigError(f"feature {key!r}: expected RaggedValues, got {type(value).__name__}")
        return _list_column(key, value, spec.dtype)
    if isinstance(spec, FixedLenSequenceFeature):
        raise ConfigError(
            f"feature {key!r}: a padded FixedLenSequenceFeature batch has lost each record's row count; "
            "decode with parse_example_table instead"
        )
    raise ConfigError(f"feature {key!r}: no Arrow column type for {spec!r}")


def _flat(values: np.ndarray | list[bytes], dtype: str) -> pa.Array:
    if dtype == BYTES:
        items = values.reshape(-1).tolist() if isinstance(values, np.ndarray) else values
        return pa.array(items, type=pa.binary())
    return pa.array(np.ascontiguousarray(values).reshape(-1), type=_VALUE_TYPE[dtype])


def _fixed_column(array: np.ndarray, dtype: str, shape: tuple[int, ...]) -> pa.Array:
    rows = array.shape[0]
    if 0 in shape:
        # No values to infer the row count from: build the empty lists row by row.
        return pa.array([[]] * rows if shape else [], type=_fixed_type(_VALUE_TYPE[dtype], shape))
    out = _flat(array, dtype)
    for dim in reversed(shape):
        out = pa.FixedSizeListArray.from_arrays(out, dim)
    return out


def _offsets(lengths: np.ndarray, key: str) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > _MAX_OFFSET:
        raise ConfigError(f"feature {key!r}: over 2**31 values in one batch; decode smaller batches")
    return pa.array(offsets.astype(np.int32))


def _list_column(key: str, ragged: RaggedValues, dtype: str) -> pa.Array:
    inner = ragged.values
    values = _list_column(key, inner, dtype) if isinstance(inner, RaggedValues) else _flat(inner, dtype)
    return pa.ListArray.from_arrays(_offsets(ragged.row_lengths, key), values)


def _sequence_column(key: str, spec: FixedLenSequenceFeature, ragged: RaggedValues, where: Location) -> pa.Array:
    if not spec.allow_missing:
        raise ConfigError(
            f"feature {key!r}: FixedLenSequenceFeature in an Example requires allow_missing=True (as in TensorFlow)"
        )
    counts = ragged.row_lengths
    check_whole_rows(key, spec, counts, where)
    values = ragged.values
    assert not isinstance(values, RaggedValues)
    rows = _flat(values, spec.dtype)
    for dim in reversed(tuple(spec.shape)):
        rows = pa.FixedSizeListArray.from_arrays(rows, dim)
    return pa.ListArray.from_arrays(_offsets(counts // spec.size, key), rows)
