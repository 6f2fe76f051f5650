"""Only DecodeError leaves the decoder, and the compiled and pure paths agree, on any bytes.

The reproducers of issue 11 (a FloatList holding an unknown field and no values was read as
values, or raised a bare ValueError / IndexError), then a fuzz check over wire-shaped random
bytes: mostly well-formed Examples / SequenceExamples with unknown fields, both repeated
encodings, bit flips and cuts at every level, so the generator reaches the list payloads
that plain random bytes never do.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrecord_s3.decode import (
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RaggedValues,
    RowLengths,
    RowSplits,
    VarLenFeature,
    parse_example,
    parse_example_batch,
    parse_sequence_example,
)
from tfrecord_s3.decode.wire import field as ld
from tfrecord_s3.decode.wire import varint
from tfrecord_s3.errors import DecodeError

# Issue 11: Example{x: Feature{float_list: FloatList{<unknown field>}}}, no values.
FLOAT_LIST_WITH_UNKNOWN = {
    "length-delimited": "0a0f0a0d0a0178120812064a046a756e6b",
    "varint": "0a0c0a0a0a017812051203389601",
    "fixed32": "0a0e0a0c0a01781207120555aabbccdd",
}


@contextmanager
def decoding_path(path: str) -> Iterator[None]:
    before = os.environ.get("TFRECORD_S3_PURE_PYTHON")
    os.environ["TFRECORD_S3_PURE_PYTHON"] = "1" if path == "pure" else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TFRECORD_S3_PURE_PYTHON"]
        else:
            os.environ["TFRECORD_S3_PURE_PYTHON"] = before


def feature_of(record: bytes) -> bytes:
    """The serialized Feature of key "x" in the single-entry Examples above."""
    return record[record.index(b"\x0a\x01x") + 3 :][2:]


@pytest.mark.parametrize("path", ["compiled", "pure"])
@pytest.mark.parametrize("name", list(FLOAT_LIST_WITH_UNKNOWN))
def test_float_list_with_only_an_unknown_field_holds_no_values(name: str, path: str) -> None:
    record = bytes.fromhex(FLOAT_LIST_WITH_UNKNOWN[name])
    feature = feature_of(record)
    sequence = record + ld(2, ld(1, ld(1, b"x") + ld(2, ld(1, feature) + ld(1, feature))))
    with decoding_path(path):
        single = parse_example(record, {"x": VarLenFeature("float32")})["x"]
        assert single.dtype == np.float32
        assert single.tolist() == []
        batch = parse_example_batch([record, record], {"x": VarLenFeature("float32")})["x"]
        assert batch.row_lengths.tolist() == [0, 0]
        assert len(batch.values) == 0
        ragged = parse_example_batch([record], {"x": RaggedFeature("float32")})["x"]
        assert ragged.row_lengths.tolist() == [0]
        with pytest.raises(DecodeError, match="Values size: 0"):
            parse_example(record, {"x": FixedLenFeature([1], "float32")})
        context, lists = parse_sequence_example(
            sequence,
            {"x": VarLenFeature("float32")},
            {"x": VarLenFeature("float32"), "x2": FixedLenSequenceFeature([], "float32", allow_missing=True)},
        )
        assert context["x"].tolist() == []
        assert lists["x"].row_lengths.tolist() == [0, 0]
        assert len(lists["x"].values) == 0
        assert parse_example(record) == {"x": pytest.approx(np.zeros(0, np.float32))}


def test_float_list_with_values_and_an_unknown_field_keeps_the_value_bits() -> None:
    # A signalling NaN next to an unknown field: the unknown field is dropped, the bits kept.
    payload = ld(1, struct.pack("<2I", 0x7F800001, 0x80000000)) + ld(9, b"junk")
    record = ld(1, ld(1, ld(1, b"x") + ld(2, ld(2, payload))))
    for path in ("compiled", "pure"):
        with decoding_path(path):
            values = parse_example(record, {"x": VarLenFeature("float32")})["x"]
            assert values.view(np.uint32).tolist() == [0x7F800001, 0x80000000]


# ---- the fuzz check ----

UNKNOWN_FIELDS = [4, 5, 9, 15, 16, 2047]


@st.composite
def unknown_field(draw: st.DrawFn) -> bytes:
    field = draw(st.sampled_from(UNKNOWN_FIELDS))
    wire_type = draw(st.sampled_from([0, 1, 2, 5]))
    tag = varint(field << 3 | wire_type)
    if wire_type == 0:
        return tag + varint(draw(st.sampled_from([0, 150, -1])))
    if wire_type == 1:
        return tag + draw(st.binary(min_size=8, max_size=8))
    if wire_type == 5:
        return tag + draw(st.binary(min_size=4, max_size=4))
    return tag + varint(4) + b"junk"


@st.composite
def value_list(draw: st.DrawFn, kind: int) -> bytes:
    """A BytesList (1), FloatList (2) or Int64List (3) payload, packed or not, with noise."""
    parts = [draw(list_values(kind)) for _ in range(draw(st.integers(0, 2)))]
    shape = draw(st.sampled_from(["values", "values", "unknown inside", "only unknown"]))
    if shape == "unknown inside":
        parts.insert(draw(st.integers(0, len(parts))), draw(unknown_field()))
    elif shape == "only unknown":
        parts = draw(st.lists(unknown_field(), min_size=1, max_size=2))
    return damage(draw, b"".join(parts))


@st.composite
def list_values(draw: st.DrawFn, kind: int) -> bytes:
    if kind == 1:
        return ld(1, draw(st.binary(max_size=6)))
    if kind == 2:
        bits = draw(st.lists(st.integers(0, 2**32 - 1), max_size=3))
        if draw(st.booleans()):
            return ld(1, struct.pack(f"<{len(bits)}I", *bits))
        return b"".join(b"\x0d" + struct.pack("<I", b) for b in bits)
    numbers = draw(st.lists(st.sampled_from([0, 1, -1, 300, 2**63 - 1, -(2**63)]), max_size=3))
    if draw(st.booleans()):
        return ld(1, b"".join(varint(n) for n in numbers))
    return b"".join(b"\x08" + varint(n) for n in numbers)


def damage(draw: st.DrawFn, data: bytes) -> bytes:
    """Usually nothing; sometimes one bit flipped or the end cut off."""
    how = draw(st.sampled_from(["keep"] * 40 + ["flip", "cut"]))
    if not data or how == "keep":
        return data
    position = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return data[:position]
    out = bytearray(data)
    out[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


@st.composite
def feature(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
        if draw(st.integers(0, 11)) == 0:
            parts.append(draw(unknown_field()))
        else:
            kind = draw(st.sampled_from([1, 2, 3]))
            parts.append(ld(kind, draw(value_list(kind))))
    return damage(draw, b"".join(parts))


@st.composite
def feature_list(draw: st.DrawFn) -> bytes:
    return b"".join(ld(1, step) for step in draw(st.lists(feature(), max_size=3)))


@st.composite
def feature_map(draw: st.DrawFn, value: st.SearchStrategy[bytes]) -> bytes:
    """Features / FeatureLists: map entries, sometimes keyless, key last, or with extras."""
    entries = []
    for _ in range(draw(st.integers(0, 3))):
        key = ld(1, draw(st.sampled_from([b"x", b"x", b"x", b"y", b""])))
        body = ld(2, draw(value))
        shape = draw(st.sampled_from(["key first"] * 8 + ["key last", "no key", "extra"]))
        if shape == "key first":
            body = key + body
        elif shape == "key last":
            body = body + key
        elif shape == "extra":
            body = key + body + draw(unknown_field())
        entries.append(ld(1, body))
    return damage(draw, b"".join(entries))


@st.composite
def example_bytes(draw: st.DrawFn) -> bytes:
    parts = [ld(1, draw(feature_map(feature()))) for _ in range(draw(st.sampled_from([1, 1, 2])))]
    if draw(st.integers(0, 9)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(unknown_field()))
    return damage(draw, b"".join(parts))


@st.composite
def sequence_example_bytes(draw: st.DrawFn) -> bytes:
    parts = []
    if draw(st.booleans()):
        parts.append(ld(1, draw(feature_map(feature()))))
    for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):
        parts.append(ld(2, draw(feature_map(feature_list()))))
    if draw(st.integers(0, 9)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(unknown_field()))
    return damage(draw, b"".join(parts))


DTYPES = ["int64", "float32", "bytes"]
DEFAULTS: dict[str, Any] = {"int64": 7, "float32": -0.0, "bytes": b"d"}


def example_specs(dtype: str) -> list[Any]:
    return [
        VarLenFeature(dtype),
        FixedLenFeature([], dtype, DEFAULTS[dtype]),
        FixedLenFeature([1], dtype),
        FixedLenSequenceFeature([], dtype, allow_missing=True),
        RaggedFeature(dtype),
        RaggedFeature(dtype, partitions=[RowLengths("y")]),
        RaggedFeature(dtype, partitions=[RowSplits("y")]),
    ]


def sequence_specs(dtype: str) -> list[Any]:
    return [
        VarLenFeature(dtype),
        RaggedFeature(dtype),
        FixedLenSequenceFeature([], dtype),
        FixedLenSequenceFeature([2], dtype, allow_missing=True),
    ]


def comparable(value: Any) -> Any:
    """Tells float bit patterns, dtypes and shapes apart."""
    if isinstance(value, RaggedValues):
        return ("ragged", comparable(value.values), value.row_lengths.tolist())
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return ("objects", value.shape, value.reshape(-1).tolist())
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    if isinstance(value, (list, tuple)):
        return [comparable(item) for item in value]
    if isinstance(value, dict):
        return sorted((key, comparable(item)) for key, item in value.items())
    return value


def outcome(call: Callable[[], Any]) -> Any:
    """The value, or the DecodeError; anything else escapes and fails the test."""
    try:
        return ("ok", comparable(call()))
    except DecodeError as exc:
        return ("DecodeError", str(exc), exc.feature)


def same_on_both_paths(call: Callable[[], Any]) -> Any:
    with decoding_path("compiled"):
        compiled = outcome(call)
    with decoding_path("pure"):
        pure = outcome(call)
    assert compiled == pure
    return compiled


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(example_bytes(), min_size=1, max_size=3), st.data())
def test_wire_shaped_examples_decode_or_raise_decode_error(records: list[bytes], data: Any) -> None:
    offsets = [0, 1, 2][: len(records)]
    for dtype in DTYPES:
        spec = data.draw(st.sampled_from(example_specs(dtype)))
        specs = {"x": spec}
        same_on_both_paths(functools.partial(parse_example_batch, records, specs, path="p", offsets=offsets))
        same_on_both_paths(functools.partial(parse_example, records[0], specs))
    same_on_both_paths(lambda: parse_example(records[0]))


@FUZZ
@given(sequence_example_bytes(), st.data())
def test_wire_shaped_sequence_examples_decode_or_raise_decode_error(record: bytes, data: Any) -> None:
    for dtype in DTYPES:
        contexts = [s for s in example_specs(dtype) if not isinstance(s, FixedLenSequenceFeature)]
        context = {"x": data.draw(st.sampled_from(contexts))}
        sequence = {"x": data.draw(st.sampled_from(sequence_specs(dtype)))}
        same_on_both_paths(functools.partial(parse_sequence_example, record, context, sequence))
    same_on_both_paths(lambda: parse_sequence_example(record))


@FUZZ
@given(st.binary(max_size=120), st.sampled_from(DTYPES))
def test_random_bytes_decode_or_raise_decode_error_on_both_paths(record: bytes, dtype: str) -> None:
    for spec in example_specs(dtype):
        same_on_both_paths(lambda spec=spec: parse_example_batch([record], {"x": spec}))
    same_on_both_paths(lambda: parse_sequence_example(record, {"x": VarLenFeature(dtype)}, {"x": RaggedFeature(dtype)}))
