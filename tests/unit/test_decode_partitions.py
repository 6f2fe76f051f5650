"""SparseFeature and every RaggedFeature partition, with the values TensorFlow documents.

The expected values are those of the examples in TensorFlow's docs of ``tf.io.RaggedFeature``
and ``tf.io.SparseFeature`` (tensorflow/python/ops/parsing_config.py), plus the other
partition kinds applied to the same rows; tests/tf_parity compares against TensorFlow itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tfrecord_s3 import (
    DecodeError,
    RaggedFeature,
    RaggedValues,
    RowLengths,
    RowLimits,
    RowSplits,
    RowStarts,
    SparseFeature,
    SparseValues,
    UniformRowLength,
    ValueRowIds,
    VarLenFeature,
    parse_example,
    parse_example_batch,
    parse_sequence_example,
)
from tfrecord_s3.proto import Example, Feature, SequenceExample


def feature(values: list[Any]) -> Feature:
    out = Feature()
    if values and isinstance(values[0], float):
        out.float_list.value.extend(values)
    elif values and isinstance(values[0], bytes):
        out.bytes_list.value.extend(values)
    else:
        out.int64_list.value.extend(values)
    return out


def example(**features: list[Any]) -> bytes:
    message = Example()
    for key, values in features.items():
        message.features.feature[key].CopyFrom(feature(values))
    return message.SerializeToString()


# The two Examples of the tf.io.RaggedFeature docs.
DOCS = [
    example(v=[3, 1, 4, 1, 5, 9], s1=[0, 2, 3, 3, 6], s2=[0, 2, 3, 4]),
    example(v=[2, 7, 1, 8, 2, 8, 1], s1=[0, 3, 4, 5, 7], s2=[0, 1, 1, 4]),
]
DOC_SPECS = {
    "f1": RaggedFeature("int64", value_key="v"),
    "f2": RaggedFeature("int64", value_key="v", partitions=[RowSplits("s1")]),
    "f3": RaggedFeature("int64", value_key="v", partitions=[RowSplits("s2"), RowSplits("s1")]),
}


def test_the_ragged_feature_examples_of_tensorflows_docs() -> None:
    single = parse_example(DOCS[0], DOC_SPECS)
    assert single["f1"].tolist() == [3, 1, 4, 1, 5, 9]
    assert single["f2"].to_list() == [[3, 1], [4], [], [1, 5, 9]]
    assert single["f3"].to_list() == [[[3, 1], [4]], [[]], [[1, 5, 9]]]
    batch = parse_example_batch(DOCS, DOC_SPECS)
    assert batch["f1"].to_list() == [[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8, 1]]
    assert batch["f2"].to_list() == [[[3, 1], [4], [], [1, 5, 9]], [[2, 7, 1], [8], [2], [8, 1]]]
    assert batch["f3"].to_list() == [
        [[[3, 1], [4]], [[]], [[1, 5, 9]]],
        [[[2, 7, 1]], [], [[8], [2], [8, 1]]],
    ]
    assert batch["f2"].row_splits.tolist() == [0, 4, 8]
    assert batch["f2"].values.row_splits.tolist() == [0, 2, 3, 3, 6, 9, 10, 11, 13]


# The rows [[3, 1], [4], [], [1, 5, 9]] of the first Example, written with each partition kind.
SAME_ROWS = {
    "splits": (RowSplits("p"), [0, 2, 3, 3, 6]),
    "lengths": (RowLengths("p"), [2, 1, 0, 3]),
    "starts": (RowStarts("p"), [0, 2, 3, 3]),
    "limits": (RowLimits("p"), [2, 3, 3, 6]),
}


@pytest.mark.parametrize("name", list(SAME_ROWS))
def test_every_partition_kind_gives_the_same_rows(name: str) -> None:
    partition, numbers = SAME_ROWS[name]
    records = [example(v=[3, 1, 4, 1, 5, 9], p=numbers), example(v=[7], p=numbers[:1] if name != "limits" else [1])]
    if name == "splits":
        records[1] = example(v=[7], p=[0, 1])
    elif name == "lengths":
        records[1] = example(v=[7], p=[1])
    spec = {"r": RaggedFeature("int64", value_key="v", partitions=[partition])}
    assert parse_example(records[0], spec)["r"].to_list() == [[3, 1], [4], [], [1, 5, 9]]
    assert parse_example_batch(records, spec)["r"].to_list() == [[[3, 1], [4], [], [1, 5, 9]], [[7]]]


def test_value_row_ids() -> None:
    # Ids give one row per id up to the largest: trailing empty rows cannot be written.
    spec = {"r": RaggedFeature("float32", value_key="v", partitions=[ValueRowIds("ids")])}
    record = example(v=[1.5, 2.5, 3.5, 4.5], ids=[0, 0, 2, 3])
    assert parse_example(record, spec)["r"].to_list() == [[1.5, 2.5], [], [3.5], [4.5]]
    batch = parse_example_batch([record, example()], spec)["r"]
    assert batch.to_list() == [[[1.5, 2.5], [], [3.5], [4.5]], []]
    with pytest.raises(DecodeError, match="Value row ids 'ids'") as caught:
        parse_example(example(v=[1.5, 2.5], ids=[1, 0]), spec)
    assert caught.value.feature == "r"
    with pytest.raises(DecodeError, match="Value row ids"):
        parse_example(example(v=[1.5, 2.5], ids=[0]), spec)


def test_uniform_row_length_innermost_reshapes_the_values() -> None:
    record = example(v=[b"a", b"b", b"c", b"d", b"e", b"f"], n=[2, 1])
    only = parse_example(record, {"r": RaggedFeature("bytes", value_key="v", partitions=[UniformRowLength(2)])})["r"]
    assert isinstance(only, np.ndarray)
    assert only.shape == (3, 2)
    assert only.tolist() == [[b"a", b"b"], [b"c", b"d"], [b"e", b"f"]]
    spec = {"r": RaggedFeature("bytes", value_key="v", partitions=[RowLengths("n"), UniformRowLength(2)])}
    nested = parse_example_batch([record], spec)["r"]
    assert nested.to_list() == [[[[b"a", b"b"], [b"c", b"d"]], [[b"e", b"f"]]]]
    inner = nested.values
    assert isinstance(inner, RaggedValues)
    assert isinstance(inner.values, np.ndarray)
    assert inner.values.shape == (3, 2)
    # Outside the innermost place it is a partition like the others: rows of 2 rows each.
    outer = parse_example(
        example(v=[1, 2, 3, 4], n=[1, 1, 2, 0]),
        {"r": RaggedFeature("int64", value_key="v", partitions=[UniformRowLength(2), RowLengths("n")])},
    )["r"]
    assert outer.to_list() == [[[1], [2]], [[3, 4], []]]
    assert outer.row_lengths.tolist() == [2, 2]
    with pytest.raises(DecodeError, match=r"UniformRowLength\(4\)"):
        parse_example(record, {"r": RaggedFeature("bytes", value_key="v", partitions=[UniformRowLength(4)])})


@pytest.mark.parametrize(
    ("partition", "numbers"),
    [
        (RowSplits("p"), [1, 2, 6]),  # does not start at 0
        (RowSplits("p"), [0, 2, 5]),  # does not end at the number of values
        (RowStarts("p"), [0, 4, 2]),  # decreases
        (RowLimits("p"), [2, 3, 5]),  # does not end at the number of values
        (RowLengths("p"), [2, 5]),  # more than there are
    ],
)
def test_partitions_that_do_not_describe_the_values_are_decode_errors(partition: Any, numbers: list[int]) -> None:
    spec = {"r": RaggedFeature("int64", value_key="v", partitions=[partition])}
    record = example(v=[3, 1, 4, 1, 5, 9], p=numbers)
    good = {RowSplits: [0, 1], RowStarts: [0], RowLimits: [1], RowLengths: [1]}[type(partition)]
    with pytest.raises(DecodeError) as caught:
        parse_example_batch([example(v=[1], p=good), record], spec)
    assert caught.value.feature == "r"
    assert "Index: 1." in str(caught.value)


def test_the_sparse_feature_example_of_tensorflows_docs() -> None:
    record = example(val=[0.5, -1.0], ix0=[3, 20], ix1=[1, 0])
    spec = SparseFeature(index_key=["ix0", "ix1"], value_key="val", dtype="float32", size=[100, 3])
    single = parse_example(record, {"sparse": spec})["sparse"]
    assert isinstance(single, SparseValues)
    assert single.indices().tolist() == [[3, 1], [20, 0]]
    assert single.values.tolist() == [0.5, -1.0]
    assert single.dense_shape == (100, 3)
    assert single.to_dense()[20, 0] == -1.0
    batch = parse_example_batch([example(), record], {"sparse": spec})["sparse"]
    assert batch.indices().tolist() == [[1, 3, 1], [1, 20, 0]]
    assert batch.dense_shape == (2, 100, 3)
    assert batch.indices().dtype == np.int64


def test_sparse_feature_sorts_by_index_unless_already_sorted() -> None:
    record = example(v=[b"x", b"y", b"z"], i=[5, 0, 2])
    sorted_out = parse_example(record, {"s": SparseFeature("i", "v", "bytes", 6)})["s"]
    assert sorted_out.indices().tolist() == [[0], [2], [5]]
    assert sorted_out.values == [b"y", b"z", b"x"]
    kept = parse_example(record, {"s": SparseFeature("i", "v", "bytes", 6, already_sorted=True)})["s"]
    assert kept.indices().tolist() == [[5], [0], [2]]
    assert kept.to_dense().tolist() == [b"y", b"", b"z", b"", b"", b"x"]
    # Like VarLenFeature's result: values, indices() and dense_shape.
    varlen = parse_example_batch([record], {"v": VarLenFeature("bytes")})["v"]
    assert (varlen.indices().tolist(), varlen.dense_shape) == ([[0, 0], [0, 1], [0, 2]], (1, 3))


def test_sparse_feature_index_and_value_counts_must_match() -> None:
    spec = {"s": SparseFeature("i", "v", "int64", 4)}
    with pytest.raises(DecodeError, match="index 'i' has 1 values but 'v' has 2") as caught:
        parse_example_batch([example(v=[1], i=[0]), example(v=[1, 2], i=[3])], spec, path="f", offsets=[0, 9])
    assert (caught.value.feature, caught.value.offset) == ("s", 9)
    with pytest.raises(DecodeError, match="Data types don't match"):
        parse_example(example(v=[1], i=[0.5]), spec)


def sequence_example(context: dict[str, list[Any]], lists: dict[str, list[list[Any]]]) -> bytes:
    message = SequenceExample()
    for key, values in context.items():
        message.context.feature[key].CopyFrom(feature(values))
    for key, steps in lists.items():
        for step in steps:
            message.feature_lists.feature_list[key].feature.add().CopyFrom(feature(step))
    return message.SerializeToString()


def test_partitions_on_feature_lists_split_each_step() -> None:
    record = sequence_example(
        {"v": [1, 2, 3], "n": [2, 1]},
        {
            "tokens": [[1, 2, 3], [4], []],
            "lengths": [[1, 2], [1], []],
            "ids": [[0, 1, 1], [0], []],
            "more": [[5], [], [6]],
        },
    )
    context, lists = parse_sequence_example(
        record,
        {"c": RaggedFeature("int64", value_key="v", partitions=[RowLengths("n")])},
        {
            "by_lengths": RaggedFeature("int64", value_key="tokens", partitions=[RowLengths("lengths")]),
            "by_ids": RaggedFeature("int64", value_key="tokens", partitions=[ValueRowIds("ids")]),
            "tokens": RaggedFeature("int64"),
            "wide": RaggedFeature("int64", value_key="more", row_splits_dtype="int64"),
        },
    )
    assert context["c"].to_list() == [[1, 2], [3]]
    assert lists["by_lengths"].to_list() == [[[1], [2, 3]], [[4]], []]
    assert lists["by_ids"].to_list() == [[[1], [2, 3]], [[4]], []]
    assert lists["by_lengths"].row_lengths.dtype == np.int32
    assert lists["tokens"].to_list() == [[1, 2, 3], [4], []]
    assert lists["wide"].row_lengths.dtype == np.int64
    assert lists["wide"].to_list() == [[5], [], [6]]
    with pytest.raises(DecodeError, match=r"Feature list: bad, Index: 0\.  Row partition 'ids' covers 2 values but"):
        parse_sequence_example(
            record, {}, {"bad": RaggedFeature("int64", value_key="tokens", partitions=[RowLengths("ids")])}
        )
