"""The compiled decoding kernel against the pure-Python path (the oracle): the same batch
results, bit for bit, or the same DecodeError (message, feature, path, offset), for random
Examples and specs, hand-made wire encodings protobuf itself never writes, and random
damage; the kernel must hand every record it does not fully model back to the pure path."""

from __future__ import annotations

import os
import random
import struct
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit import test_decode_golden as golden_tests
from tfrecord_s3.decode import (
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RaggedValues,
    RowLengths,
    VarLenFeature,
    _gather,
    example,
    parse_example,
    parse_example_batch,
)
from tfrecord_s3.decode._assemble import column_keys
from tfrecord_s3.decode._gather import UnparsableRecord, gather_features
from tfrecord_s3.errors import ConfigError, DecodeError
from tfrecord_s3.proto import Example, Feature

native = pytest.importorskip("tfrecord_s3.decode._native", reason="the optional C extension did not build")

DTYPES = ("int64", "float32", "bytes")


@contextmanager
def pure_python() -> Iterator[None]:
    """Forces the pure path the way users do (the variable is read per batch)."""
    before = os.environ.get("TFRECORD_S3_PURE_PYTHON")
    os.environ["TFRECORD_S3_PURE_PYTHON"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TFRECORD_S3_PURE_PYTHON"]
        else:
            os.environ["TFRECORD_S3_PURE_PYTHON"] = before


@pytest.fixture(autouse=True)
def _kernel_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFRECORD_S3_PURE_PYTHON", raising=False)
    assert _gather.native_available()


# ---- comparing outcomes ----


def normalize(value: Any) -> Any:
    """A comparable form that tells float bit patterns, dtypes and shapes apart."""
    if isinstance(value, RaggedValues):
        return ("ragged", normalize(value.values), value.row_lengths.dtype.str, value.row_lengths.tolist())
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return ("objects", value.shape, value.reshape(-1).tolist())
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    if isinstance(value, list):
        return ("list", [normalize(item) for item in value])
    if isinstance(value, dict):
        return ("dict", sorted((key, normalize(item)) for key, item in value.items()))
    return ("other", type(value).__name__, value)


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", normalize(call()))
    except DecodeError as exc:
        return ("DecodeError", str(exc), exc.feature, exc.path, exc.offset)
    except ConfigError as exc:
        return ("ConfigError", str(exc))


def assert_same_batch(records: list[Any], specs: dict[str, Any], **where: Any) -> Any:
    mine = outcome(lambda: parse_example_batch(records, specs, **where))
    with pure_python():
        oracle = outcome(lambda: parse_example_batch(records, specs, **where))
    assert mine == oracle
    return mine


def kernel_takes(records: list[Any], keys: list[str]) -> bool:
    """True when the kernel decodes the batch itself (no fallback for any key)."""
    found = native.gather_columns(records, [key.encode() for key in keys])
    return found is not None and not any(raw[5] & native.FLAG_UNKNOWN for raw in found)


def assert_same_columns(records: list[Any], keys: list[str]) -> None:
    """Every (key, dtype) column equal to the pure path's; a batch the kernel accepts must be
    one protobuf accepts (the kernel may be stricter than protobuf, never laxer)."""
    names = [key.encode() for key in keys]
    raw = native.gather_columns(records, names)
    try:
        pure = example._pure_columns(records, keys)
    except UnparsableRecord:
        assert raw is None, "the kernel accepted a record protobuf rejects"
        return
    mine = _gather.gather_columns(records, keys)
    if raw is None:
        assert mine is None
        return
    assert mine is not None
    for key in keys:
        for dtype in DTYPES:
            ours, theirs = mine(key, dtype), pure(key, dtype)
            assert ours.counts.tolist() == theirs.counts.tolist(), (key, dtype)
            assert ours.tags.tolist() == theirs.tags.tolist(), (key, dtype)
            if dtype == "bytes":
                assert list(ours.values) == list(theirs.values), (key, dtype)
            else:
                assert isinstance(ours.values, np.ndarray)
                assert isinstance(theirs.values, np.ndarray)
                assert ours.values.dtype == theirs.values.dtype
                assert ours.values.tobytes() == theirs.values.tobytes(), (key, dtype)


# ---- random Examples and specs ----

KEYS = ["a", "b", "label", "", "ключ", "x/y:z", "\U0001f600"]
specials = st.sampled_from([0x7FC00000, 0xFFC00001, 0x7F800001, 0x80000000, 0x00000001, 0x807FFFFF, 0x7F800000])
float_bits = st.one_of(st.integers(0, 2**32 - 1), specials)
int64s = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([-(2**63), 2**63 - 1, -1, 0, 127, 128]))
feature_values = st.one_of(
    st.tuples(st.just("int64"), st.lists(int64s, max_size=12)),
    st.tuples(st.just("float32"), st.lists(float_bits, max_size=12)),
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=40), max_size=5)),
    st.tuples(st.just("none"), st.just([])),
)
feature_maps = st.dictionaries(st.sampled_from(KEYS), feature_values, max_size=len(KEYS))


def build(features: dict[str, tuple[str, list[Any]]]) -> bytes:
    message = Example()
    for key, (kind, values) in features.items():
        feature = message.features.feature[key]
        if kind == "int64":
            feature.int64_list.value.extend(values)
        elif kind == "float32":
            feature.float_list.value.extend(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}I", *values)))
        elif kind == "bytes":
            feature.bytes_list.value.extend(values)
        else:
            feature.CopyFrom(Feature())
    return message.SerializeToString()


DEFAULTS = {"int64": (7, [1, 2]), "float32": (-0.0, [1.5, float("nan")]), "bytes": (b"d", [b"p", b"q"])}


@st.composite
def specs_for(draw: st.DrawFn, keys: list[str]) -> dict[str, Any]:
    specs: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(keys), unique=True, min_size=1, max_size=4)):
        dtype = draw(st.sampled_from(DTYPES))
        scalar = draw(st.booleans())
        shape = [] if scalar else [2]
        default = DEFAULTS[dtype][0 if scalar else 1] if draw(st.booleans()) else None
        choice = draw(st.sampled_from(["fixed", "varlen", "sequence", "ragged", "ragged_lengths"]))
        if choice == "fixed":
            specs[key] = FixedLenFeature(shape, dtype, default)
        elif choice == "varlen":
            specs[key] = VarLenFeature(dtype)
        elif choice == "sequence":
            padding = DEFAULTS[dtype][0] if default is not None else None  # a scalar
            specs[key] = FixedLenSequenceFeature(shape, dtype, allow_missing=True, default_value=padding)
        elif choice == "ragged":
            specs[key] = RaggedFeature(dtype)
        else:
            specs[key] = RaggedFeature(dtype, partitions=[RowLengths(draw(st.sampled_from(keys)))])
    return specs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(feature_maps, max_size=6), st.data())
def test_random_batches_and_specs_decode_the_same(batch: list[dict[str, Any]], data: st.DataObject) -> None:
    records = [build(features) for features in batch]
    assert kernel_takes(records, KEYS)
    assert_same_columns(records, KEYS)
    specs = data.draw(specs_for(KEYS))
    assert_same_batch(records, specs)
    assert_same_batch(records, specs, path="s3://b/k", offsets=[16 * i for i in range(len(records))])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feature_maps, st.data())
def test_single_records_decode_the_same(features: dict[str, Any], data: st.DataObject) -> None:
    record = build(features)
    specs = data.draw(specs_for(KEYS))
    mine = outcome(lambda: parse_example(record, specs, path="f", offset=3))
    with pure_python():
        assert mine == outcome(lambda: parse_example(record, specs, path="f", offset=3))


# ---- random damage ----


@st.composite
def damaged(draw: st.DrawFn) -> tuple[list[bytes], int]:
    records = [build(draw(feature_maps)) for _ in range(draw(st.integers(1, 3)))]
    index = draw(st.integers(0, len(records) - 1))
    data = bytearray(records[index])
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif how == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif how == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif how == "delete":
            del data[position : position + draw(st.integers(1, 4))]
        else:
            del data[position:]
    records[index] = bytes(data)
    return records, index


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(), st.data())
def test_damaged_records_decode_the_same_or_fail_the_same(case: tuple[list[bytes], int], data: st.DataObject) -> None:
    records, _ = case
    assert_same_columns(records, KEYS)
    assert_same_batch(records, data.draw(specs_for(KEYS)), path="p", offsets=list(range(len(records))))


def test_damage_inside_values_stays_on_the_kernel() -> None:
    """Bytes inside a bytes value are free: the kernel must keep such records, not fall back."""
    rng = random.Random(3)
    blob = bytes(range(256)) * 2
    record = build({"a": ("bytes", [blob]), "b": ("int64", [1, -1])})
    start = record.index(blob)
    for _ in range(200):
        data = bytearray(record)
        data[start + rng.randrange(len(blob))] = rng.randrange(256)
        assert kernel_takes([bytes(data)], KEYS)
        assert_same_columns([bytes(data)], KEYS)


# ---- hand-made wire encodings ----


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def ld(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def entry(key: bytes | None, *values: bytes, extra: bytes = b"") -> bytes:
    body = (b"" if key is None else ld(1, key)) + b"".join(ld(2, value) for value in values) + extra
    return ld(1, body)


def example_of(*entries: bytes, extra: bytes = b"") -> bytes:
    return ld(1, b"".join(entries)) + extra


def ints_packed(*values: int) -> bytes:
    return ld(3, ld(1, b"".join(varint(v) for v in values)))


def floats_packed(*values: float) -> bytes:
    return ld(2, ld(1, struct.pack(f"<{len(values)}f", *values)))


def bytes_list(*values: bytes) -> bytes:
    return ld(1, b"".join(ld(1, v) for v in values))


UNKNOWN = tag(9, 0) + varint(300) + tag(10, 1) + b"12345678" + tag(11, 5) + b"1234" + ld(12, b"skip me")
NEGATIVE_10_BYTES = varint(-(2**63))
assert len(NEGATIVE_10_BYTES) == 10

# name -> (record, True when the kernel itself must decode it, without any fallback)
CRAFTED: dict[str, tuple[bytes, bool]] = {
    "unpacked int64": (example_of(entry(b"a", ld(3, tag(1, 0) + varint(5) + tag(1, 0) + varint(-7)))), True),
    "unpacked floats": (example_of(entry(b"a", ld(2, (tag(1, 5) + struct.pack("<f", 1.5)) * 3))), True),
    "packed then unpacked": (
        example_of(entry(b"a", ld(3, ld(1, varint(1) + varint(2)) + tag(1, 0) + varint(3) + ld(1, varint(4))))),
        True,
    ),
    "empty packed": (example_of(entry(b"a", ld(3, ld(1, b""))), entry(b"b", ld(2, ld(1, b"")))), True),
    "int64 extremes": (example_of(entry(b"a", ints_packed(-(2**63), 2**63 - 1, -1, 0))), True),
    "non-canonical varints": (example_of(entry(b"a", ld(3, ld(1, b"\x81\x80\x80\x00" + b"\xff" * 9 + b"\x7f")))), True),
    "10-byte varint with high bits": (example_of(entry(b"a", ld(3, tag(1, 0) + b"\x80" * 9 + b"\x7e"))), True),
    "nan, -0.0, subnormal": (example_of(entry(b"a", floats_packed(float("nan"), -0.0, 1e-45, float("-inf")))), True),
    "signalling nan bits": (
        example_of(entry(b"a", ld(2, ld(1, struct.pack("<3I", 0x7F800001, 0xFFA00000, 0x7FC00001))))),
        True,
    ),
    "empty list of each kind": (example_of(entry(b"a", ld(1, b"")), entry(b"b", ld(3, b""))), True),
    "kindless feature": (example_of(entry(b"a", b"")), True),
    "entry without value": (example_of(entry(b"a")), True),
    "entry without key": (example_of(entry(None, ints_packed(4))), True),
    "duplicate key, last wins": (example_of(entry(b"a", ints_packed(1)), entry(b"a", bytes_list(b"x"))), True),
    "duplicate key, last is kindless": (example_of(entry(b"a", ints_packed(1)), entry(b"a", b"")), True),
    "value twice merges": (example_of(entry(b"a", ints_packed(1, 2), ints_packed(3))), True),
    "oneof switch clears": (example_of(entry(b"a", ints_packed(1) + bytes_list(b"q") + ints_packed(2))), True),
    "key after value": (example_of(ld(1, ld(2, ints_packed(8)) + ld(1, b"a"))), True),
    "key twice in entry": (example_of(ld(1, ld(1, b"b") + ld(2, ints_packed(8)) + ld(1, b"a"))), True),
    "features twice": (
        ld(1, entry(b"a", ints_packed(1))) + ld(1, entry(b"a", ints_packed(2)) + entry(b"b", b"")),
        True,
    ),
    "unknown fields in Example and Features": (
        UNKNOWN + ld(1, UNKNOWN + entry(b"a", ints_packed(1)) + UNKNOWN) + UNKNOWN,
        True,
    ),
    "wrong wire type for features": (tag(1, 0) + varint(1) + example_of(entry(b"a", ints_packed(1))), True),
    "unknown fields in an unwanted feature": (example_of(entry(b"zz", ints_packed(1)[:-3] + UNKNOWN)), True),
    "non-ascii keys": (example_of(entry("ключ".encode(), ints_packed(1)), entry("\U0001f600".encode(), b"")), True),
    "empty record": (b"", True),
    # Left to protobuf: the pure path decides (and must give the same answer through the API).
    "unknown field in a wanted feature": (example_of(entry(b"a", ints_packed(1) + UNKNOWN)), False),
    "unknown field in a wanted list": (example_of(entry(b"a", ld(2, ld(1, struct.pack("<f", 1.0)) + UNKNOWN))), False),
    "kindless feature with unknown fields": (example_of(entry(b"a", UNKNOWN)), False),
    "int64 field with wrong wire type": (example_of(entry(b"a", tag(3, 0) + varint(1))), False),
    "map entry with an unknown field": (example_of(entry(b"a", ints_packed(1), extra=UNKNOWN)), False),
    "map key with wrong wire type": (example_of(ld(1, tag(1, 0) + varint(1) + ld(2, ints_packed(1)))), False),
    "group in Example": (
        tag(5, 3) + tag(6, 0) + varint(1) + tag(5, 4) + example_of(entry(b"a", ints_packed(1))),
        False,
    ),
    # Malformed: protobuf rejects these.
    "truncated varint": (example_of(entry(b"a", ld(3, ld(1, b"\x80\x80")))), False),
    "11-byte varint": (example_of(entry(b"a", ld(3, ld(1, b"\x80" * 10 + b"\x00")))), False),
    "length past the end": (example_of(entry(b"a", ints_packed(1)))[:-1], False),
    "length past the parent": (ld(1, tag(1, 2) + varint(50) + b"x"), False),
    "6-byte length": (tag(1, 2) + b"\x80\x80\x80\x80\x80\x00", False),
    "field 0": (b"\x00\x01", False),
    "wire type 6": (b"\x0e", False),
    "wire type 7": (example_of(entry(b"a", b"\x0f")), False),
    "end group alone": (example_of(entry(b"a", ints_packed(1))) + tag(2, 4), False),
    "6-byte tag": (b"\x88\x80\x80\x80\x80\x00\x00", False),
    "tag over 32 bits": (b"\xf8\xff\xff\xff\x1f\x00", False),
    "packed floats not a multiple of 4": (example_of(entry(b"a", ld(2, ld(1, b"abc")))), False),
    "truncated fixed32": (example_of(entry(b"a", ld(2, tag(1, 5) + b"abc"))), False),
    "truncated fixed64 unknown": (example_of(entry(b"a", ld(2, tag(4, 1) + b"abc"))), False),
    "bad utf-8 key": (example_of(entry(b"\xff", ints_packed(1))), False),
    "surrogate key": (example_of(entry(b"\xed\xa0\x80", ints_packed(1))), False),
    "overlong key": (example_of(entry(b"\xc0\x80", ints_packed(1))), False),
    "key past U+10FFFF": (example_of(entry(b"\xf4\x90\x80\x80", ints_packed(1))), False),
    "truncated utf-8 key": (example_of(entry(b"a\xe2\x82", ints_packed(1))), False),
    "bad feature in an unwanted key": (example_of(entry(b"zz", ld(3, ld(1, b"\x80")))), False),
    "bad feature in a replaced entry": (
        example_of(entry(b"a", ld(3, ld(1, b"\x80"))), entry(b"a", ints_packed(1))),
        False,
    ),
    "bad feature before the key": (example_of(ld(1, ld(2, ld(3, ld(1, b"\x80"))) + ld(1, b"a"))), False),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_encodings_decode_the_same(name: str) -> None:
    record, on_kernel = CRAFTED[name]
    good = build({"a": ("int64", [3]), "b": ("bytes", [b"v"])})
    for records in ([record], [good, record, good]):
        keys = ["a", "b", "", "ключ"]
        if on_kernel:
            assert kernel_takes(records, keys)
        assert_same_columns(records, keys)
        for dtype in DTYPES:
            assert_same_batch(records, {key: VarLenFeature(dtype) for key in keys}, path="p", offsets=[5, 6, 7])
            assert_same_batch(records, {"a": FixedLenFeature([], dtype, DEFAULTS[dtype][0])}, path="p")


def test_malformed_records_fail_with_protobufs_message_and_the_record_offset() -> None:
    good = build({"a": ("int64", [3])})
    records = [good, good, CRAFTED["truncated varint"][0], CRAFTED["field 0"][0]]
    result = assert_same_batch(records, {"a": VarLenFeature("int64")}, path="s3://b/k", offsets=[0, 10, 20, 30])
    kind, message, feature, path, offset = result
    assert (kind, feature, path, offset) == ("DecodeError", None, "s3://b/k", 20)
    assert message.startswith("Name: s3://b/k at byte 20, Could not parse example input: ")


def test_records_of_any_buffer_type_and_non_buffers() -> None:
    record = build({"a": ("float32", [0x3FC00000]), "b": ("bytes", [b"xy"])})
    specs = {"a": VarLenFeature("float32"), "b": VarLenFeature("string")}
    for records in ([bytearray(record)], [memoryview(record)], [record, bytearray(record), memoryview(record)]):
        assert kernel_takes(records, ["a", "b"])
        assert assert_same_batch(records, specs)[0] == "ok"
    assert native.gather_columns([memoryview(record)[::2]], [b"a"]) is None
    for bad in (["not bytes"], [1], [None], [memoryview(record)[::2]]):
        assert assert_same_batch(bad, specs)[0] == "DecodeError"


def test_empty_batch_and_duplicate_keys() -> None:
    assert_same_batch([], {"a": VarLenFeature("int64"), "b": FixedLenFeature([2], "float32")})
    record = build({"a": ("int64", [1, 2])})
    assert _gather.gather_columns([record], ["a", "a"]) is not None
    assert_same_batch([record], {"a": VarLenFeature("int64"), "c": RaggedFeature("int64", value_key="a")})


def test_same_key_read_as_several_dtypes() -> None:
    records = [build({"a": ("int64", [1])}), build({"a": ("float32", [0x40000000])}), build({})]
    for dtype in DTYPES:
        assert_same_batch(records, {"a": VarLenFeature(dtype)})
    assert_same_columns(records, ["a"])


def test_large_batches_match_too() -> None:
    """Big enough for the kernel to run without the GIL."""
    rng = random.Random(11)
    records = [
        build(
            {
                "a": ("int64", [rng.getrandbits(64) - 2**63 for _ in range(rng.randrange(20))]),
                "b": ("bytes", [rng.randbytes(rng.randrange(600)) for _ in range(rng.randrange(3))]),
                "label": ("float32", [rng.getrandbits(32) for _ in range(8)]),
            }
        )
        for _ in range(400)
    ]
    assert sum(map(len, records)) > 64 * 1024
    assert kernel_takes(records, KEYS)
    assert_same_columns(records, KEYS)
    assert_same_batch(
        records, {"a": VarLenFeature("int64"), "b": RaggedFeature("string"), "label": VarLenFeature("float32")}
    )


def test_no_references_leak() -> None:
    records = [build({"a": ("int64", [1]), "b": ("bytes", [b"q"])}), bytearray(build({"a": ("float32", [7])}))]
    broken = [records[0], CRAFTED["truncated varint"][0]]
    keys = [b"a", b"b", b"c"]
    before = [sys.getrefcount(item) for item in (*records, *broken, *keys)]
    for _ in range(2000):
        assert native.gather_columns(records, keys) is not None
        assert native.gather_columns(broken, keys) is None
        with pytest.raises(TypeError):
            native.gather_columns(records, ["a"])
    assert [sys.getrefcount(item) for item in (*records, *broken, *keys)] == before


# ---- the golden corpus (written by TensorFlow) through both paths ----


@pytest.mark.parametrize("spec_name", ["fixed", "varlen", "fixed_sequence", "ragged"])
def test_golden_corpus_matches_tensorflow_through_both_paths(spec_name: str) -> None:
    records = golden_tests.records_of(golden_tests.EXAMPLES)
    specs = golden_tests.specs_from_json(
        golden_tests.file_info(golden_tests.EXAMPLES)["parse_example"]["specs"][spec_name]
    )
    keys = list(dict.fromkeys(key for key, _ in column_keys(specs)))
    assert kernel_takes(records, keys)
    assert_same_columns(records, keys)
    assert assert_same_batch(records, specs)[0] == "ok"
    golden_tests.test_batch_decoding_matches_tf_parse_example(spec_name)
    with pure_python():
        golden_tests.test_batch_decoding_matches_tf_parse_example(spec_name)


def test_golden_error_cases_through_both_paths() -> None:
    for case in golden_tests.file_info(golden_tests.EXAMPLES)["parse_example_errors"]:
        golden_tests.test_tensorflow_parse_errors_are_decode_errors_naming_the_feature(case)
        with pure_python():
            golden_tests.test_tensorflow_parse_errors_are_decode_errors_naming_the_feature(case)


def test_pure_python_variable_turns_the_kernel_off() -> None:
    with pure_python():
        assert not _gather.native_available()
        assert _gather.gather_columns([build({})], ["a"]) is None
    assert _gather.native_available()


def test_gather_features_is_unchanged_oracle() -> None:
    record = build({"a": ("int64", [1])})
    assert gather_features([record], ["a", "b"]) == [[Feature(int64_list={"value": [1]}).SerializeToString()], [b""]]
