"""Encodings TensorFlow's serializer never writes decode as protobuf defines them (README,
"TensorFlow parity"): one test per class, on both paths, each checked against protobuf's own
reading of the same bytes."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.unit.test_decode_robustness import decoding_path
from tfrecord_s3 import DecodeError, VarLenFeature, parse_example, parse_example_batch
from tfrecord_s3.decode.wire import field as ld
from tfrecord_s3.decode.wire import varint
from tfrecord_s3.proto import Example


@pytest.fixture(params=["compiled", "pure"])
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    with decoding_path(request.param):
        yield request.param


def record_of(*entries: bytes) -> bytes:
    return ld(1, b"".join(entries))


def entry(key: bytes, feature: bytes) -> bytes:
    return ld(1, ld(1, key) + ld(2, feature))


def protobuf_reads(record: bytes, key: str) -> Any:
    feature = Example.FromString(record).features.feature[key]
    kind = feature.WhichOneof("kind")
    return kind, list(getattr(feature, kind).value) if kind else []


def decoded(record: bytes, dtype: str) -> list[Any]:
    single = parse_example(record, {"a": VarLenFeature(dtype)})["a"]
    batch = parse_example_batch([record, record], {"a": VarLenFeature(dtype)})["a"]
    row = batch.row(1)
    if isinstance(single, np.ndarray):
        assert isinstance(row, np.ndarray)
        assert row.tobytes() == single.tobytes()
        return single.tolist()  # type: ignore[no-any-return]
    assert row == single
    return list(single)


def test_values_split_over_several_packed_runs_are_concatenated(path: str) -> None:
    ints = ld(3, ld(1, varint(1) + varint(2)) + b"\x08" + varint(3) + ld(1, varint(-4)))
    record = record_of(entry(b"a", ints))
    assert decoded(record, "int64") == [1, 2, 3, -4]
    assert protobuf_reads(record, "a") == ("int64_list", [1, 2, 3, -4])
    floats = ld(2, ld(1, struct.pack("<2f", 1.5, -0.0)) + b"\x0d" + struct.pack("<f", 2.5) + ld(1, b""))
    record = record_of(entry(b"a", floats))
    assert decoded(record, "float32") == [1.5, -0.0, 2.5]
    assert protobuf_reads(record, "a") == ("float_list", [1.5, -0.0, 2.5])


def test_a_feature_holding_two_kinds_keeps_the_last(path: str) -> None:
    # The Feature's kind is a oneof: a later member replaces an earlier one.
    record = record_of(entry(b"a", ld(3, ld(1, varint(7))) + ld(1, ld(1, b"x") + ld(1, b"y"))))
    assert decoded(record, "bytes") == [b"x", b"y"]
    assert protobuf_reads(record, "a") == ("bytes_list", [b"x", b"y"])
    with pytest.raises(DecodeError, match="Data types don't match"):
        parse_example(record, {"a": VarLenFeature("int64")})
    # The same kind twice merges: the values of both.
    record = record_of(entry(b"a", ld(3, ld(1, varint(1))) + ld(3, ld(1, varint(2)))))
    assert decoded(record, "int64") == [1, 2]


def test_unknown_fields_inside_a_list_are_skipped(path: str) -> None:
    unknown = ld(9, b"junk") + varint(10 << 3 | 0) + varint(300) + varint(11 << 3 | 5) + b"abcd"
    floats = ld(2, unknown + ld(1, struct.pack("<2I", 0x7F800001, 0x3F800000)) + unknown)
    record = record_of(entry(b"a", floats))
    assert decoded(record, "float32")[1] == 1.0
    values = parse_example(record, {"a": VarLenFeature("float32")})["a"]
    assert values.view(np.uint32).tolist() == [0x7F800001, 0x3F800000]  # a signalling NaN kept
    record = record_of(entry(b"a", ld(3, unknown + ld(1, varint(5)))), entry(b"b", ld(1, unknown + ld(1, b"v"))))
    assert decoded(record, "int64") == [5]
    assert protobuf_reads(record, "a") == ("int64_list", [5])
    assert parse_example(record, {"b": VarLenFeature("bytes")})["b"] == [b"v"]


def test_map_entries_with_a_repeated_key_keep_the_last(path: str) -> None:
    first = entry(b"a", ld(3, ld(1, varint(1) + varint(2))))
    last = entry(b"a", ld(2, ld(1, struct.pack("<f", 0.25))))
    record = record_of(first, entry(b"b", ld(1, ld(1, b"z"))), last)
    assert decoded(record, "float32") == [0.25]
    assert protobuf_reads(record, "a") == ("float_list", [0.25])
    # Also across two Features messages (a repeated embedded message merges).
    record = ld(1, first) + ld(1, last)
    assert decoded(record, "float32") == [0.25]
    assert protobuf_reads(record, "a") == ("float_list", [0.25])
