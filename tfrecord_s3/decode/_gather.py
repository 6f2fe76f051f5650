"""The hot loop of batch decoding: serialized Examples -> serialized Features, per column.

``gather_features`` is the only per-record Python code of the batch path. Its signature is
deliberately narrow (records and keys in, bytes out; no specs, no dtypes, no numpy, no error
formatting) so it can be profiled alone and later swapped for a compiled kernel without
touching callers. Per record and key it does three C calls (map lookup, serialize, append):
re-serializing one Feature is much cheaper than turning its values into Python objects,
and ``_columns`` then decodes each column for the whole batch at once with numpy.
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
    columns: list[list[bytes]] = [[] for _ in keys]
    plan = [(key, column.append) for key, column in zip(keys, columns, strict=True)]
    from_string = Example.FromString
    serialize = Feature.SerializeToString
    empty = EMPTY_FEATURE
    index = 0
    try:
        for index, record in enumerate(records):  # noqa: B007 (index names the bad record)
            get = from_string(record).features.feature.get  # type: ignore[arg-type]  # (.get: [] would insert)
            for key, append in plan:
                append(serialize(get(key, empty)))
    except PARSE_ERRORS as exc:
        raise UnparsableRecord(index, str(exc)) from exc
    return columns
