"""Spec mappings are checked as TensorFlow checks them, before any record is read (issue 11)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tfrecord_s3 import (
    ConfigError,
    DecodeError,
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RowLengths,
    RowSplits,
    SparseFeature,
    UniformRowLength,
    VarLenFeature,
    parse_example,
    parse_example_batch,
    parse_sequence_example,
)
from tfrecord_s3.proto import Example, SequenceExample


def example(**features: list[Any]) -> bytes:
    message = Example()
    for key, values in features.items():
        feature = message.features.feature[key]
        if values and isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        elif values and isinstance(values[0], float):
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    return message.SerializeToString()


RECORD = example(a=[1, 2], b=[2, 0], v=[1.5, 2.5])

CONFLICTS: dict[str, tuple[dict[str, Any], str]] = {
    "dense and ragged": (
        {"a": FixedLenFeature([2], "int64"), "r": RaggedFeature("int64", value_key="a")},
        "Dense and ragged keys must not intersect",
    ),
    "dense and a partition": (
        {
            "a": FixedLenFeature([2], "int64"),
            "r": RaggedFeature("float32", value_key="v", partitions=[RowLengths("a")]),
        },
        "Dense and ragged keys must not intersect",
    ),
    "dense and sparse": (
        {"a": FixedLenFeature([2], "int64"), "s": SparseFeature("a", "v", "float32", 5)},
        "Dense and sparse keys must not intersect",
    ),
    "varlen and ragged": (
        {"a": VarLenFeature("int64"), "r": RaggedFeature("int64", value_key="a")},
        "Ragged and sparse keys must not intersect",
    ),
    "two sparse dtypes": (
        {"a": VarLenFeature("int64"), "s": SparseFeature("b", "a", "float32", 5)},
        "Conflicting type int64 vs float for feature a.",
    ),
    "two ragged dtypes": (
        {"a": RaggedFeature("int64"), "r": RaggedFeature("float32", value_key="a")},
        "Conflicting type",
    ),
    "two partition dtypes": (
        {
            "r1": RaggedFeature("float32", value_key="v", partitions=[RowSplits("a")]),
            "r2": RaggedFeature("float32", value_key="v", partitions=[RowSplits("a")], row_splits_dtype="int64"),
        },
        "Conflicting partition type",
    ),
    "a value key read as a partition of another dtype": (
        {"a": RaggedFeature("float32"), "r": RaggedFeature("float32", value_key="v", partitions=[RowLengths("a")])},
        "Conflicting type float vs int64 for feature a.",
    ),
}


@pytest.mark.parametrize("name", list(CONFLICTS))
def test_a_key_read_by_two_specs_in_conflict_is_a_config_error(name: str) -> None:
    specs, message = CONFLICTS[name]
    with pytest.raises(ConfigError, match=message):
        parse_example_batch([RECORD], specs)
    with pytest.raises(ConfigError, match=message):
        parse_example(b"\xff not even an Example", specs)  # checked before any record is read


def test_keys_shared_without_conflict_are_fine() -> None:
    out = parse_example_batch(
        [RECORD],
        {
            "a": VarLenFeature("int64"),
            "s": SparseFeature("a", "a", "int64", 5),  # sparse and sparse, same dtype
            "r1": RaggedFeature("float32", value_key="v", partitions=[RowLengths("b")]),
            "r2": RaggedFeature("float32", value_key="v"),
        },
    )
    assert out["a"].to_list() == [[1, 2]]
    assert out["r2"].to_list() == [[1.5, 2.5]]


def test_ragged_value_key_must_not_be_empty() -> None:
    with pytest.raises(ConfigError, match="value_key must not be empty"):
        RaggedFeature("int64", value_key="")
    with pytest.raises(ConfigError, match="value_key must be a str"):
        RaggedFeature("int64", value_key=3)  # type: ignore[arg-type]


def test_default_value_on_a_feature_list_is_a_config_error() -> None:
    record = SequenceExample().SerializeToString()
    spec = FixedLenSequenceFeature([], "int64", allow_missing=True, default_value=5)
    with pytest.raises(ConfigError, match="default_value"):
        parse_sequence_example(record, {}, {"f": spec})
    # In an Example the same spec is fine: there the default pads the batch.
    assert parse_example_batch([RECORD, example()], {"a": spec})["a"].tolist() == [[1, 2], [5, 5]]


def test_spec_types_each_parser_takes() -> None:
    record = SequenceExample().SerializeToString()
    with pytest.raises(ConfigError, match="not a feature spec"):
        parse_sequence_example(record, {"f": FixedLenSequenceFeature([], "int64", allow_missing=True)}, {})
    with pytest.raises(ConfigError, match="not a feature spec"):
        parse_sequence_example(record, {}, {"f": FixedLenFeature([], "int64")})
    with pytest.raises(ConfigError, match="not a feature spec"):
        parse_sequence_example(record, {"s": SparseFeature("a", "b", "int64", 3)}, {})
    with pytest.raises(ConfigError, match="allow_missing"):
        parse_example(RECORD, {"a": FixedLenSequenceFeature([], "int64")})


@pytest.mark.parametrize("shape", [[0], [2, 0]])
def test_fixed_len_with_an_empty_default_is_required_as_in_tensorflow(shape: list[int]) -> None:
    spec = FixedLenFeature(shape, "float32", default_value=np.zeros(shape))
    assert spec.default is None
    with pytest.raises(DecodeError, match="is required but could not be found"):
        parse_example_batch([example()], {"f": spec})
    empty = Example()
    empty.features.feature["f"].float_list.SetInParent()
    assert parse_example(empty.SerializeToString(), {"f": spec})["f"].shape == tuple(shape)


def test_row_splits_dtype_is_int32_by_default_and_honoured_at_every_level() -> None:
    records = [example(v=[1, 2, 3], n=[2, 1]), example(v=[4], n=[1])]
    default = parse_example_batch(records, {"r": RaggedFeature("int64", value_key="v", partitions=[RowLengths("n")])})
    assert RaggedFeature("int64").row_splits_dtype == np.int32
    assert default["r"].row_lengths.dtype == np.int32
    assert default["r"].values.row_lengths.dtype == np.int32
    assert default["r"].row_splits.dtype == np.int32
    assert default["r"].to_list() == [[[1, 2], [3]], [[4]]]
    wide = RaggedFeature("int64", value_key="v", partitions=[RowLengths("n")], row_splits_dtype=np.int64)
    out = parse_example_batch(records, {"r": wide})["r"]
    assert out.row_lengths.dtype == np.int64
    assert out.values.row_lengths.dtype == np.int64
    with pytest.raises(ConfigError, match="Conflicting partition type"):  # v read with two splits dtypes
        parse_example(records[0], {"r": wide, "u": RaggedFeature("int64", value_key="v")})
    single = parse_example(
        records[0], {"r": wide, "u": RaggedFeature("int64", value_key="v", row_splits_dtype="int64")}
    )
    assert single["r"].row_lengths.dtype == np.int64
    assert single["u"].tolist() == [1, 2, 3]
    # VarLenFeature is TensorFlow's SparseTensor: int64 indices whatever the ragged dtypes.
    assert parse_example_batch(records, {"v": VarLenFeature("int64")})["v"].indices().dtype == np.int64


def test_other_partition_and_sparse_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="UniformRowLength"):
        UniformRowLength(0)
    with pytest.raises(ConfigError, match="partitions must be a list"):
        RaggedFeature("int64", partitions=RowLengths("n"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="if and only if"):
        SparseFeature(["i"], "v", "int64", 3)
    with pytest.raises(ConfigError, match="if and only if"):
        SparseFeature("i", "v", "int64", [3])
    with pytest.raises(ConfigError, match="2 index keys"):
        SparseFeature(["i", "j"], "v", "int64", [3])
    with pytest.raises(ConfigError, match="value_key"):
        SparseFeature("i", "", "int64", 3)
    assert tfr.SparseFeature is SparseFeature
