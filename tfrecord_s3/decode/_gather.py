"""The hot loop of batch decoding: serialized Examples -> serialized Features, per column.

``gather_features`` is the only per-record Python code of the batch path. Its signature is
deliberately narrow (records and keys in, bytes out; no specs, no dtypes, no numpy, no error
formatting) so it can be profiled alone and later swapped for a compiled kernel without
touching callers. Per record it parses the Example and, in C via ``map``, looks up and
re-serializes each wanted Feature: much cheaper than turning values into Python objects.
``_columns`` then decodes each column for the whole batch at once with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import DecodeError as ProtobufDecodeError

from ..proto.example_pb2 import Example
from ..proto.feature_pb2 import Feature

__all__ = ["EMPTY_FEATURE", "Buffer", "UnparsableRecord", "gather_features", "parse_proto"]

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


def parse_proto(parse: object, record: Buffer, index: int = 0) -> object:
    """``parse(record)`` (a generated ``FromString``) with failures as ``UnparsableRecord``."""
    try:
        return parse(record)  # type: ignore[operator]
    except PARSE_ERRORS as exc:
        raise UnparsableRecord(index, str(exc)) from exc


def gather_features(records: Sequence[Buffer], keys: Sequence[str]) -> list[list[bytes]]:
    """For each key, the serialized Feature of that key in each record (``b""`` when absent).

    ``result[k][r]`` is the Feature ``keys[k]`` of ``records[r]``, re-serialized by protobuf
    (canonical: packed lists, known fields first). Raises ``UnparsableRecord`` for a record
    that is not a serialized Example.
    """
    from_string = Example.FromString
    serialize = Feature.SerializeToString
    empties = [EMPTY_FEATURE] * len(keys)
    try:
        # Per record the inner loop runs in C (map over the keys): map .get with a default
        # (indexing a protobuf map would insert the key), then serialize.
        rows = [
            list(map(serialize, map(from_string(record).features.feature.get, keys, empties)))  # type: ignore[arg-type]
            for record in records
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
            Example.FromString(record)  # type: ignore[arg-type]
        except PARSE_ERRORS:
            return UnparsableRecord(index, reason)
    return UnparsableRecord(0, reason)
