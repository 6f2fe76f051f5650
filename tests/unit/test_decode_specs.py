"""Feature specs, edge values and errors of the Example decoders (beyond the golden corpus)."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest

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
from tfrecord_s3.decode._columns import decode_column, decode_column_slow
from tfrecord_s3.errors import ConfigError, DecodeError
from tfrecord_s3.proto import Example, Feature, SequenceExample

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def example(**features: Any) -> bytes:
    """An Example; ints -> int64_list, floats -> float_list, bytes -> bytes_list, None -> kindless."""
    message = Example()
    for key, values in features.items():
        feature = message.features.feature[key]
        if values is None:
            continue
        if values and isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        elif values and isinstance(values[0], float):
            feature.float_list.value.extend(values)
        elif values == "empty_floats":
            feature.float_list.SetInParent()
        else:
            feature.int64_list.value.extend(values)
    return message.SerializeToString()


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        ("int64", "int64"),
        (np.int64, "int64"),
        ("float32", "float32"),
        (np.float32, "float32"),
        ("string", "bytes"),
        ("bytes", "bytes"),
        (bytes, "bytes"),
        (str, "bytes"),
        (np.bytes_, "bytes"),
        (object, "bytes"),
        (int, "int64"),
    ],
)
def test_dtype_spellings(dtype: Any, name: str) -> None:
    assert VarLenFeature(dtype).dtype == name


@pytest.mark.parametrize("dtype", ["float64", np.int32, "uint8", "bool", 3, None])
def test_unsupported_dtypes_are_config_errors(dtype: Any) -> None:
    with pytest.raises(ConfigError, match="dtype"):
        VarLenFeature(dtype)


@pytest.mark.parametrize(
    ("shape", "default"),
    [([-1], None), ([None], None), ("ab", None), ([2], [1]), ([], "x"), ([], 1.5), ([], 2**63), ([2, 2], [1, 2, 3])],
)
def test_bad_fixed_len_specs_are_config_errors(shape: Any, default: Any) -> None:
    with pytest.raises(ConfigError, match="FixedLenFeature"):
        FixedLenFeature(shape, "int64", default)


def test_other_bad_specs_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        FixedLenSequenceFeature([0], "int64")
    with pytest.raises(ConfigError):
        FixedLenSequenceFeature([], "int64", True, [1, 2])
    with pytest.raises(ConfigError):
        RaggedFeature("int64", partitions=["x"])  # type: ignore[list-item]
    with pytest.raises(ConfigError):
        RaggedFeature("int64", row_splits_dtype="float32")
    with pytest.raises(ConfigError, match="allow_missing"):
        parse_example_batch([example(a=[1])], {"a": FixedLenSequenceFeature([], "int64")})
    with pytest.raises(ConfigError, match="not a feature spec"):
        parse_example_batch([example(a=[1])], {"a": "int64"})  # type: ignore[dict-item]


def test_fixed_len_defaults_fill_missing_and_kindless_records() -> None:
    records = [example(v=[1.0, 2.0]), example(), example(v=None), example(v=[-0.0, math.inf])]
    out = parse_example_batch(records, {"v": FixedLenFeature([2], "float32", [0.5, -1.0])})["v"]
    assert out.dtype == np.float32
    assert out.shape == (4, 2)
    assert out.tolist() == [[1.0, 2.0], [0.5, -1.0], [0.5, -1.0], [0.0, math.inf]]
    assert math.copysign(1.0, out[3, 0]) == -1.0


def test_fixed_len_bytes_scalar_and_default_str() -> None:
    records = [example(s=[b"a\x00"]), example(), example(s=[b""])]
    out = parse_example_batch(records, {"s": FixedLenFeature([], "string", "déf")})["s"]
    assert out.dtype == object
    assert out.tolist() == [b"a\x00", "déf".encode(), b""]
    assert parse_example(records[0], {"s": FixedLenFeature([], "string")})["s"] == b"a\x00"


def test_int64_extremes_and_float_specials_round_trip_bit_exact() -> None:
    ints = [INT64_MIN, -1, 0, 1, 127, 128, 2**31, INT64_MAX]
    floats = [math.nan, -math.inf, math.inf, -0.0, 1.401298464324817e-45, 3.4028234663852886e38, 0.1]
    record = example(i=ints, f=floats)
    out = parse_example_batch([record, record], {"i": VarLenFeature("int64"), "f": VarLenFeature("float32")})
    assert out["i"].values.tolist() == ints * 2
    expected = np.array(floats * 2, dtype=np.float32)
    assert np.array_equal(out["f"].values.view(np.int32), expected.view(np.int32))
    single = parse_example(record)
    assert single["i"].tolist() == ints
    assert np.array_equal(single["f"].view(np.int32), expected[:7].view(np.int32))


def test_varlen_results_as_sparse_tensor() -> None:
    records = [example(t=[b"x", b"y"]), example(), example(t=[b"z"])]
    out = parse_example_batch(records, {"t": VarLenFeature("bytes")})["t"]
    assert isinstance(out, RaggedValues)
    assert out.values == [b"x", b"y", b"z"]
    assert out.row_lengths.tolist() == [2, 0, 1]
    assert out.dense_shape == (3, 2)
    assert out.indices().tolist() == [[0, 0], [0, 1], [2, 0]]
    assert out.to_dense().tolist() == [[b"x", b"y"], [b"", b""], [b"z", b""]]
    assert out.row_splits.tolist() == [0, 2, 2, 3]
    assert out.to_list() == [[b"x", b"y"], [], [b"z"]]
    assert out[-1] == [b"z"]
    with pytest.raises(IndexError):
        out.row(3)


def test_fixed_len_sequence_pads_with_default() -> None:
    records = [example(p=[1, 2, 3, 4]), example(), example(p=[5, 6])]
    out = parse_example_batch(records, {"p": FixedLenSequenceFeature([2], "int64", True, -1)})["p"]
    assert out.shape == (3, 2, 2)
    assert out.tolist() == [[[1, 2], [3, 4]], [[-1, -1], [-1, -1]], [[5, 6], [-1, -1]]]
    with pytest.raises(DecodeError, match="multiple") as caught:
        parse_example_batch([example(p=[1, 2, 3])], {"p": FixedLenSequenceFeature([2], "int64", True)})
    assert caught.value.feature == "p"


def test_ragged_row_splits_and_nested_partitions() -> None:
    record = example(v=[1, 2, 3, 4, 5], outer=[2, 1], inner=[2, 0, 3], splits=[0, 3, 5])
    out = parse_example(
        record,
        {
            "nested": RaggedFeature("int64", value_key="v", partitions=[RowLengths("outer"), RowLengths("inner")]),
            "split": RaggedFeature("int64", value_key="v", partitions=[RowSplits("splits")]),
            "v": RaggedFeature("int64"),
        },
    )
    assert out["nested"].to_list() == [[[1, 2], []], [[3, 4, 5]]]
    assert out["split"].to_list() == [[1, 2, 3], [4, 5]]
    assert out["v"].tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(DecodeError, match="covers") as caught:
        parse_example(
            example(v=[1, 2], n=[1]), {"r": RaggedFeature("int64", value_key="v", partitions=[RowLengths("n")])}
        )
    assert caught.value.feature == "r"


@pytest.mark.parametrize(
    "garbage", [b"\xff", b"\x0a\x05ab", b"\x0a", b"\x08\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"]
)
def test_non_protobuf_bytes_are_decode_errors(garbage: bytes) -> None:
    with pytest.raises(DecodeError, match="Could not parse") as caught:
        parse_example(garbage, path="p", offset=7)
    assert (caught.value.path, caught.value.offset) == ("p", 7)
    with pytest.raises(DecodeError) as in_batch:
        parse_example_batch([example(a=[1]), garbage], {"a": VarLenFeature("int64")}, offsets=[0, 40])
    assert in_batch.value.offset == 40
    assert "<unknown> at byte 40" in str(in_batch.value)
    with pytest.raises(DecodeError):
        parse_sequence_example(garbage)


def test_decode_errors_pickle_with_their_fields() -> None:
    with pytest.raises(DecodeError) as caught:
        parse_example(example(), {"x": FixedLenFeature([], "int64")}, path="f", offset=3)
    again = pickle.loads(pickle.dumps(caught.value))
    assert (str(again), again.feature, again.path, again.offset) == (str(caught.value), "x", "f", 3)


def test_batch_without_specs_gives_every_feature_as_ragged() -> None:
    out = parse_example_batch([example(a=[1, 2], b=[b"x"]), example(a=[3], k=None)])
    assert sorted(out) == ["a", "b"]
    assert out["a"].to_list() == [[1, 2], [3]]
    assert out["b"].to_list() == [[b"x"], []]


def _features(*features: Feature) -> list[bytes]:
    return [f.SerializeToString() for f in features]


def test_unknown_fields_take_the_slow_path_with_the_same_result() -> None:
    with_unknown = Feature.FromString(Feature(float_list={"value": [1.5]}).SerializeToString() + b"\x28\x05")
    inner_unknown = Feature()
    inner_unknown.int64_list.MergeFromString(b"\x0a\x01\x07\x10\x01")  # value [7] plus unknown field 2
    blobs = [*_features(with_unknown, Feature(float_list={"value": [2.5]})), b""]
    fast = decode_column(blobs, "float32")
    assert fast.values.tolist() == [1.5, 2.5]
    assert fast.counts.tolist() == [1, 1, -1]
    ints = decode_column(_features(inner_unknown), "int64")
    assert ints.values.tolist() == [7]
    assert ints.counts.tolist() == [1]


def test_fast_and_slow_column_decoders_agree_on_long_and_mixed_columns() -> None:
    rng = np.random.default_rng(5)
    features = []
    for i in range(300):
        n = int(rng.integers(0, 300))
        if i % 7 == 0:
            features.append(Feature())
        elif i % 5 == 0:
            features.append(Feature(bytes_list={"value": [bytes(rng.integers(0, 256, n, dtype=np.uint8))] * (i % 3)}))
        elif i % 2:
            features.append(
                Feature(int64_list={"value": rng.integers(INT64_MIN, INT64_MAX, n, dtype=np.int64).tolist()})
            )
        else:
            features.append(Feature(float_list={"value": rng.standard_normal(n).astype(np.float32).tolist()}))
    blobs = _features(*features)
    for dtype in ("int64", "float32", "bytes"):
        fast, slow = decode_column(blobs, dtype), decode_column_slow(blobs, dtype)
        assert fast.counts.tolist() == slow.counts.tolist()
        assert fast.tags.tolist() == slow.tags.tolist()
        if dtype == "bytes":
            assert fast.values == slow.values
        else:
            assert np.array_equal(np.asarray(fast.values).view(np.uint8), np.asarray(slow.values).view(np.uint8))


def _sequence_example() -> bytes:
    message = SequenceExample()
    message.context.feature["n"].int64_list.value.append(2)
    frames = message.feature_lists.feature_list["frames"]
    for row in ([1.0, 2.0], [3.0, 4.0]):
        frames.feature.add().float_list.value.extend(row)
    words = message.feature_lists.feature_list["words"]
    words.feature.add().bytes_list.value.extend([b"a", b"b"])
    words.feature.add()  # kindless step
    return message.SerializeToString()


def test_sequence_example_specs_and_errors() -> None:
    record = _sequence_example()
    context, sequences = parse_sequence_example(
        record,
        {"n": FixedLenFeature([], "int64"), "m": FixedLenFeature([], "int64", 9)},
        {
            "frames": FixedLenSequenceFeature([2], "float32"),
            "words": VarLenFeature("bytes"),
            "gone": FixedLenSequenceFeature([], "int64", allow_missing=True),
        },
    )
    assert (int(context["n"]), int(context["m"])) == (2, 9)
    assert sequences["frames"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert sequences["words"].to_list() == [[b"a", b"b"], []]
    assert sequences["gone"].shape == (0,)
    with pytest.raises(DecodeError, match="required") as caught:
        parse_sequence_example(record, {}, {"gone": FixedLenSequenceFeature([], "int64")})
    assert caught.value.feature == "gone"
    with pytest.raises(DecodeError, match="Data types don't match"):
        parse_sequence_example(record, {}, {"frames": VarLenFeature("int64")})
    with pytest.raises(DecodeError, match="values != expected"):
        parse_sequence_example(record, {}, {"frames": FixedLenSequenceFeature([3], "float32")})
    with pytest.raises(ConfigError):
        parse_sequence_example(record, {}, {"frames": FixedLenFeature([2], "float32")})
    with pytest.raises(ConfigError):
        parse_sequence_example(record, {"n": FixedLenSequenceFeature([], "int64")}, {})
    assert parse_sequence_example(record, {}, {}) == ({}, {})


def test_signalling_nan_bits_survive_the_reference_decoder() -> None:
    # A Feature with an unknown field takes the protobuf-based reference path; a float32
    # signalling NaN must come out with its bits intact, as TensorFlow gives it.
    import struct

    import numpy as np

    import tfrecord_s3 as tfr

    snan = struct.pack("<I", 0x7F800001)
    float_list = b"\x0a\x08" + snan + struct.pack("<f", 1.5)  # packed, two values
    feature = b"\x12" + bytes([len(float_list)]) + float_list + b"\x78\x01"  # + unknown field 15
    entry = b"\x0a\x01x" + b"\x12" + bytes([len(feature)]) + feature
    features = b"\x0a" + bytes([len(entry)]) + entry
    record = b"\x0a" + bytes([len(features)]) + features
    result = tfr.parse_example_batch([record], {"x": tfr.VarLenFeature("float32")})
    values = np.asarray(result["x"].values, dtype=np.float32)
    assert values.view(np.uint32).tolist() == [0x7F800001, 0x3FC00000]
