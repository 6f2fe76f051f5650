"""Property tests: any Example round-trips; any byte string decodes or raises DecodeError."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrecord_s3.decode import (
    FixedLenFeature,
    RaggedFeature,
    VarLenFeature,
    parse_example,
    parse_example_batch,
    parse_sequence_example,
)
from tfrecord_s3.errors import DecodeError
from tfrecord_s3.proto import Example, Feature

int64s = st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20)
# Any float32 bit pattern: nan payloads, -0.0, subnormals, infinities.
float32s = st.lists(
    st.integers(0, 2**32 - 1).map(lambda bits: struct.unpack("<f", struct.pack("<I", bits))[0]), max_size=20
)
bytes_lists = st.lists(st.binary(max_size=300), max_size=6)
feature_values = st.one_of(
    st.tuples(st.just("int64"), int64s),
    st.tuples(st.just("float32"), float32s),
    st.tuples(st.just("bytes"), bytes_lists),
    st.tuples(st.just("none"), st.just([])),
)
feature_maps = st.dictionaries(st.text(max_size=12), feature_values, max_size=8)


def build(features: dict[str, tuple[str, list[Any]]]) -> bytes:
    message = Example()
    for key, (kind, values) in features.items():
        feature = message.features.feature[key]
        if kind == "int64":
            feature.int64_list.value.extend(values)
        elif kind == "float32":
            feature.float_list.value.extend(values)
        elif kind == "bytes":
            feature.bytes_list.value.extend(values)
        else:
            feature.CopyFrom(Feature())
    return message.SerializeToString()


def float_bits(values: Any) -> list[int]:
    return np.asarray(values, dtype=np.float32).view(np.uint32).tolist()  # type: ignore[no-any-return]


@given(feature_maps)
def test_random_example_round_trips_without_spec(features: dict[str, tuple[str, list[Any]]]) -> None:
    out = parse_example(build(features))
    assert sorted(out) == sorted(key for key, (kind, _) in features.items() if kind != "none")
    for key, value in out.items():
        kind, values = features[key]
        if kind == "float32":
            assert float_bits(value) == float_bits(values)
        elif kind == "int64":
            assert value.dtype == np.int64
            assert value.tolist() == values
        else:
            assert value == values


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(feature_maps, min_size=1, max_size=6), st.sampled_from(["int64", "float32", "bytes"]))
def test_batch_columns_equal_per_record_values(batch: list[dict[str, tuple[str, list[Any]]]], dtype: str) -> None:
    records = [build(features) for features in batch]
    keys = sorted({key for features in batch for key in features})[:4]
    specs = {key: VarLenFeature(dtype) for key in keys}
    mismatched = any(features.get(key, ("none",))[0] not in ("none", dtype) for features in batch for key in keys)
    if mismatched:
        with pytest.raises(DecodeError, match="Data types don't match") as caught:
            parse_example_batch(records, specs)
        assert caught.value.feature in keys
        return
    out = parse_example_batch(records, specs)
    for key in keys:
        for index, features in enumerate(batch):
            kind, values = features.get(key, ("none", []))
            row = out[key].row(index)
            if kind == "none":
                assert len(row) == 0
            elif dtype == "float32":
                assert float_bits(row) == float_bits(values)
            else:
                assert list(row) == list(values)


SPECS = {
    "a": VarLenFeature("int64"),
    "b": FixedLenFeature([], "float32", 0.0),
    "c": RaggedFeature("bytes"),
    "": FixedLenFeature([2], "bytes", [b"", b""]),
}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for call in (
        lambda: parse_example(data),
        lambda: parse_example(data, SPECS),
        lambda: parse_example_batch([data, data], SPECS),
        lambda: parse_sequence_example(data),
    ):
        try:
            call()
        except DecodeError:
            pass


@settings(max_examples=200, deadline=None)
@given(feature_maps, st.data())
def test_mutated_examples_decode_or_raise_decode_error(features: dict[str, tuple[str, list[Any]]], data: Any) -> None:
    record = bytearray(build(features))
    if not record:
        return
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(record) - 1))
        record[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(record)))
    for mutated in (bytes(record), bytes(record[:cut])):
        try:
            parse_example_batch([mutated], {key: VarLenFeature("int64") for key in features})
        except DecodeError:
            pass
        try:
            parse_example(mutated)
        except DecodeError:
            pass
