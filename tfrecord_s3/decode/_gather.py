"""The hot loop of batch decoding: serialized Examples -> serialized Features, per column.

``gather_features`` is the only per-record Python code of the batch path. Its signature is
deliberately narrow (records and keys in, bytes out; no specs, no dtypes, no numpy, no error
formatting) so it can be profiled alone and later swapped for a compiled kernel without
touching callers. Per record it parses the Example and, in C via ``map``, looks up and
re-serializes each wanted Feature: much cheaper than turning values into Python objects.
``_columns`` then decodes each column for the whole batch at once with numpy.

``gather_columns`` is the compiled alternative (``_native.c``, optional): one walk over each
record's wire format yields every wanted column already decoded (tags, counts, a contiguous
int64/float32 buffer, the bytes values), with the same results as the path above, which stays
the oracle and the fallback (forced with ``TFRECORD_S3_PURE_PYTHON=1``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError as ProtobufDecodeError

from .._kernels import kernels_enabled
from ..proto.example_pb2 import Example
from ..proto.feature_pb2 import Feature
from ._columns import MISSING, WRONG_KIND, Column, decode_column
from .specs import BYTES, FLOAT32, INT64
from .wire import TAG_OF_DTYPE

try:
    from . import _native

    _HAVE_NATIVE = True
except ImportError:  # the optional extension did not build: the pure-Python loop serves
    _HAVE_NATIVE = False

__all__ = [
    "EMPTY_FEATURE",
    "Buffer",
    "UnparsableRecord",
    "gather_columns",
    "gather_features",
    "native_available",
    "parse_proto",
]

# What a record may be: protobuf parses any of these without a copy.
Buffer = bytes | bytearray | memoryview

# Serializes to b"": what a missing key looks like, the same as a Feature with no kind set
# (TensorFlow treats both as missing).
EMPTY_FEATURE = Feature()

# What protobuf's upb backend raises on bad bytes (DecodeError), plus what it could raise
# on input it rejects in other ways; any of them means "not an Example".
PARSE_ERRORS = (ProtobufDecodeError, RuntimeError, ValueError, TypeError, OverflowError, RecursionError)


class UnparsableRecord(Exception):
    """Record ``index`` of the batch is not a serialized message of the expected type."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, reason)
        self.index = index
        self.reason = reason


def _parses_bytearray() -> bool:
    """Whether ``FromString`` takes a bytearray: upb before protobuf 5.28 takes only bytes and
    memoryview ("expected bytes, bytearray found"); a memoryview of it parses without a copy."""
    try:
        Example.FromString(bytearray())  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


_PARSES_BYTEARRAY = _parses_bytearray()


def _parseable(record: Buffer) -> Buffer:
    """``record`` in a form every supported protobuf parses (see ``_parses_bytearray``)."""
    return memoryview(record) if isinstance(record, bytearray) else record


def _parse_example(record: Buffer) -> Any:
    return Example.FromString(_parseable(record))  # type: ignore[arg-type]


def parse_proto(parse: object, record: Buffer, index: int = 0) -> object:
    """``parse(record)`` (a generated ``FromString``) with failures as ``UnparsableRecord``."""
    try:
        return parse(_parseable(record))  # type: ignore[operator]
    except PARSE_ERRORS as exc:
        raise UnparsableRecord(index, str(exc)) from exc


def gather_features(records: Sequence[Buffer], keys: Sequence[str]) -> list[list[bytes]]:
    """For each key, the serialized Feature of that key in each record (``b""`` when absent).

    ``result[k][r]`` is the Feature ``keys[k]`` of ``records[r]``, re-serialized by protobuf
    (canonical: packed lists, known fields first). Raises ``UnparsableRecord`` for a record
    that is not a serialized Example.
    """
    from_string: Callable[[Any], Any] = Example.FromString if _PARSES_BYTEARRAY else _parse_example
    serialize = Feature.SerializeToString
    empties = [EMPTY_FEATURE] * len(keys)
    try:
        # Per record the inner loop runs in C (map over the keys): map .get with a default
        # (indexing a protobuf map would insert the key), then serialize.
        rows = [
            list(map(serialize, map(from_string(record).features.feature.get, keys, empties))) for record in records
        ]
    except PARSE_ERRORS as exc:
        # The comprehension runs in order, so the first record protobuf rejects is this one.
        raise _first_unparsable(records, str(exc)) from exc
    if not rows:
        return [[] for _ in keys]
    return [list(column) for column in zip(*rows, strict=True)]


def _first_unparsable(records: Sequence[Buffer], reason: str) -> UnparsableRecord:
    """Which record failed (only called after one did): the first that protobuf rejects."""
    for index, record in enumerate(records):
        try:
            _parse_example(record)
        except PARSE_ERRORS:
            return UnparsableRecord(index, reason)
    return UnparsableRecord(0, reason)


def native_available() -> bool:
    """True when the compiled decoding kernel is built and not disabled by the environment."""
    return _HAVE_NATIVE and kernels_enabled()


# (key, dtype) -> the decoded column of that key for the whole batch (as _assemble wants).
ColumnSource = Callable[[str, str], Column]

# The kernel's per-key tuple: (tags, counts, ints, floats, values, flags); see _native.c.
_NativeColumn = tuple[bytearray, bytearray, bytearray, bytearray, list[bytes], int]

if _HAVE_NATIVE:
    assert MISSING == -1  # the kernel writes -1 for missing records
    _FLAG_OF_DTYPE = {BYTES: _native.FLAG_BYTES, FLOAT32: _native.FLAG_FLOAT, INT64: _native.FLAG_INT64}
    _KIND_FLAGS = _native.FLAG_BYTES | _native.FLAG_FLOAT | _native.FLAG_INT64


def gather_columns(records: Sequence[Buffer], keys: Sequence[str]) -> ColumnSource | None:
    """The compiled path: a source of decoded columns for ``keys``, equal to
    ``decode_column(gather_features(records, keys)[k], dtype)``; None when the kernel is not
    available or the batch needs the pure path (a malformed record: the pure path raises
    the exact ``UnparsableRecord``; or a layout the kernel leaves to protobuf)."""
    if not native_available():
        return None
    unique = list(dict.fromkeys(keys))
    try:
        names = [key.encode() for key in unique]
    except UnicodeEncodeError:  # a key no record can hold; protobuf decides what happens
        return None
    found = _native.gather_columns(records, names)
    if found is None:
        return None
    native: dict[str, _NativeColumn] = {}
    redo: list[str] = []
    for key, raw in zip(unique, found, strict=True):
        # Features with unknown fields: the pure path decodes their whole column through
        # protobuf objects (floats via Python floats), so take it for those keys.
        if raw[5] & _native.FLAG_UNKNOWN:
            redo.append(key)
        else:
            native[key] = raw
    slow = dict(zip(redo, gather_features(records, redo), strict=True)) if redo else {}
    decoded: dict[tuple[str, str], Column] = {}

    def column(key: str, dtype: str) -> Column:
        found = decoded.get((key, dtype))
        if found is None:
            raw = native.get(key)
            found = decoded[(key, dtype)] = decode_column(slow[key], dtype) if raw is None else _column(raw, dtype)
        return found

    return column


def _column(raw: _NativeColumn, dtype: str) -> Column:
    tags_buffer, counts_buffer, ints, floats, values, flags = raw
    tags = np.frombuffer(tags_buffer, dtype=np.int64)
    counts = np.frombuffer(counts_buffer, dtype=np.int64)
    if flags & _KIND_FLAGS & ~_FLAG_OF_DTYPE[dtype]:  # some record holds another kind
        counts = np.where((tags != TAG_OF_DTYPE[dtype]) & (tags != 0), WRONG_KIND, counts)
    if dtype == BYTES:
        return Column(values, counts, tags)
    flat = np.frombuffer(ints, dtype=np.int64) if dtype == INT64 else np.frombuffer(floats, dtype=np.float32)
    return Column(flat, counts, tags)
