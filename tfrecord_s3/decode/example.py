"""Decode serialized ``tf.train.Example`` records: one at a time, or a batch into columns.

Values come out exactly as TensorFlow gives them: int64 and float32 bit for bit (nan, inf,
-0.0, subnormals, int64 extremes), bytes untouched. A Feature with no kind set counts as
missing, as in ``tf.io.parse_example``.

For throughput use :func:`parse_example_batch`: with the optional compiled kernel
(``_native.c``) it walks each record's wire format once, straight into the batch's columns;
without it (or with ``TFRECORD_S3_PURE_PYTHON=1``) it does one protobuf parse and three C
calls per record and feature, then decodes every column for the whole batch with numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..proto.example_pb2 import Example
from ..proto.feature_pb2 import Feature
from ._assemble import assemble, column_keys
from ._columns import Column, decode_column
from ._gather import Buffer, ColumnSource, UnparsableRecord, gather_columns, gather_features, parse_proto
from ._location import Location
from .ragged import RaggedValues
from .sparse import SparseValues
from .specs import KIND_OF_DTYPE, FeatureSpec, FixedLenSequenceFeature, VarLenFeature
from .validation import EXAMPLE_SPECS, check_specs

_DTYPE_OF_KIND = {kind: dtype for dtype, kind in KIND_OF_DTYPE.items()}

__all__ = [
    "Buffer",
    "check_example_specs",
    "features_to_dict",
    "infer_specs",
    "parse_example",
    "parse_example_batch",
]

FeatureValue = np.ndarray | list[bytes]


def parse_example_batch(
    records: Sequence[Buffer],
    features: Mapping[str, FeatureSpec] | None = None,
    *,
    path: str | None = None,
    offsets: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Decode a batch of serialized Examples into one dict of stacked columns.

    Per spec:

    - ``FixedLenFeature``: ``np.ndarray`` of shape ``[batch, *shape]`` (int64 / float32, or
      ``object`` holding ``bytes``); missing records get ``default_value``.
    - ``VarLenFeature``: :class:`RaggedValues`, one row per record (``.values`` flat,
      ``.row_lengths``; ``.indices()`` / ``.dense_shape`` give TensorFlow's SparseTensor).
    - ``FixedLenSequenceFeature`` (``allow_missing=True``): ``[batch, longest, *shape]``,
      short records padded with ``default_value`` (0 / 0.0 / b"" when None).
    - ``RaggedFeature``: :class:`RaggedValues` with one row per record (nested per partition;
      ``row_lengths`` in the spec's ``row_splits_dtype``).
    - ``SparseFeature``: :class:`SparseValues` (``indices()`` ``[n, 1 + rank]``, the record first;
      ``dense_shape`` ``(batch, *size)``).

    ``features=None``: every kinded feature found in the batch, as a ``VarLenFeature`` of its
    kind (a convenience: it parses each record twice; pass specs for speed).

    ``path`` and ``offsets`` (each record's byte offset) only name records in errors.
    Raises ``DecodeError`` (``.feature`` set when a feature is at fault) for a record that is
    not an Example or a value that does not fit its spec; ``ConfigError`` for a bad spec.
    """
    where = Location(path, offsets)
    if features is None:
        features = _infer_specs(records, where)
    check_example_specs(features)
    wanted = column_keys(features)
    keys = list(dict.fromkeys(key for key, _ in wanted))
    try:
        # The compiled kernel when built (None: not built, or the batch needs the pure path).
        column = gather_columns(records, keys) or _pure_columns(records, keys)
    except UnparsableRecord as exc:
        raise where.error(exc.index, None, f"Could not parse example input: {exc.reason}") from exc
    return assemble(features, column, len(records), where)


def check_example_specs(features: Any) -> None:
    """``ConfigError`` unless ``parse_example`` takes ``features`` (TensorFlow's checks)."""
    check_specs(features, EXAMPLE_SPECS)
    for key, spec in features.items():
        if isinstance(spec, FixedLenSequenceFeature) and not spec.allow_missing:
            raise ConfigError(
                f"feature {key!r}: FixedLenSequenceFeature in an Example requires allow_missing=True (as in TensorFlow)"
            )


def _pure_columns(records: Sequence[Buffer], keys: list[str]) -> ColumnSource:
    """Columns through protobuf: re-serialized Features, decoded per column with numpy."""
    blobs_of = dict(zip(keys, gather_features(records, keys), strict=True))
    decoded: dict[tuple[str, str], Column] = {}

    def column(key: str, dtype: str) -> Column:
        found = decoded.get((key, dtype))
        if found is None:
            found = decoded[(key, dtype)] = decode_column(blobs_of[key], dtype)
        return found

    return column


def parse_example(
    serialized: Buffer,
    features: Mapping[str, FeatureSpec] | None = None,
    *,
    path: str | None = None,
    offset: int | None = None,
) -> dict[str, Any]:
    """Decode one serialized Example.

    ``features=None``: every feature, as ``np.ndarray`` (int64 / float32) or ``list[bytes]``;
    a Feature with no kind set carries neither a type nor values and is left out (TensorFlow
    treats it as missing too).

    With specs, the result for each feature is row 0 of :func:`parse_example_batch`:
    ``FixedLenFeature`` -> array of ``shape`` (a numpy scalar, or ``bytes``, for shape
    ``[]``); ``VarLenFeature`` -> 1-D array or ``list[bytes]``; ``FixedLenSequenceFeature``
    -> ``[rows, *shape]``; ``RaggedFeature`` -> values, or :class:`RaggedValues` if partitioned
    (a ``[rows, length]`` array when the only partitions are ``UniformRowLength``);
    ``SparseFeature`` -> :class:`SparseValues` of ``dense_shape`` ``size``.

    Raises ``DecodeError`` (with ``.feature``, ``.path``, ``.offset``) as TensorFlow would.
    """
    offsets = None if offset is None else [offset]
    if features is None:
        where = Location(path, offsets)
        try:
            example = parse_proto(Example.FromString, serialized)
        except UnparsableRecord as exc:
            raise where.error(0, None, f"Could not parse example input: {exc.reason}") from exc
        return features_to_dict(example.features.feature)  # type: ignore[attr-defined]
    batch = parse_example_batch([serialized], features, path=path, offsets=offsets)
    return {key: _row0(value) for key, value in batch.items()}


def infer_specs(
    records: Sequence[Buffer], *, path: str | None = None, offsets: Sequence[int] | None = None
) -> dict[str, FeatureSpec]:
    """A VarLenFeature per kinded feature of ``records``, typed by the first record holding it
    (what ``features=None`` decodes with). ``DecodeError`` for a record that is not an Example."""
    return _infer_specs(records, Location(path, offsets))


def _infer_specs(records: Sequence[Buffer], where: Location) -> dict[str, FeatureSpec]:
    specs: dict[str, FeatureSpec] = {}
    for index, record in enumerate(records):
        try:
            example: Any = parse_proto(Example.FromString, record, index)
        except UnparsableRecord as exc:
            raise where.error(exc.index, None, f"Could not parse example input: {exc.reason}") from exc
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind is not None and key not in specs:
                specs[key] = VarLenFeature(_DTYPE_OF_KIND[kind])
    return specs


def _row0(value: Any) -> Any:
    if isinstance(value, (RaggedValues, SparseValues)):
        return value.row(0)
    return value[0]


def features_to_dict(feature_map: Mapping[str, Feature]) -> dict[str, FeatureValue]:
    """Every kinded Feature of a protobuf ``Features.feature`` map as numpy / list of bytes."""
    out: dict[str, FeatureValue] = {}
    for key, feature in feature_map.items():
        value = feature_values(feature)
        if value is not None:
            out[key] = value
    return out


def feature_values(feature: Feature) -> FeatureValue | None:
    """A Feature's values (int64 / float32 array, or list of bytes); None when no kind is set."""
    kind = feature.WhichOneof("kind")
    if kind == "int64_list":
        return np.array(feature.int64_list.value, dtype=np.int64)
    if kind == "float_list":
        return np.array(feature.float_list.value, dtype=np.float32)
    if kind == "bytes_list":
        return list(feature.bytes_list.value)
    return None
