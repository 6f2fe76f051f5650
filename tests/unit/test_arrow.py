"""tfrecord_s3.arrow: decoded batches as pyarrow Tables, equal to parse_example_batch's values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfrecord_s3 as tfr

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'tfrecord-s3[arrow]')")

from tfrecord_s3.arrow import arrow_schema, parse_example_table, to_arrow  # noqa: E402

SPEC: dict[str, Any] = {
    "id": tfr.FixedLenFeature([], "int64"),
    "score": tfr.FixedLenFeature([], "float32", default_value=-1.0),
    "name": tfr.FixedLenFeature([], "bytes"),
    "embedding": tfr.FixedLenFeature([3], "float32"),
    "grid": tfr.FixedLenFeature([2, 2], "int64"),
    "tags": tfr.VarLenFeature("bytes"),
    "ids": tfr.VarLenFeature("int64"),
    "nested": tfr.RaggedFeature("float32", value_key="flat", partitions=(tfr.RowLengths("lens"),)),
}


def records(count: int) -> list[bytes]:
    out = []
    for i in range(count):
        values: dict[str, Any] = {
            "id": i,
            "name": f"n{i}",
            "embedding": np.arange(3, dtype=np.float32) + i,
            "grid": np.arange(4) * i,
            "tags": [b"t"] * (i % 3 + 1),
            "ids": np.arange(i % 4, dtype=np.int64),
            "flat": np.arange(i + 1, dtype=np.float32),
            "lens": [1, i] if i else [1],
        }
        if i % 2:
            values["score"] = i / 2
        out.append(tfr.encode_example(values))
    return out


def as_lists(value: Any) -> list[Any]:
    return value.to_list() if isinstance(value, tfr.RaggedValues) else value.tolist()  # type: ignore[no-any-return]


def test_every_column_equals_parse_example_batch() -> None:
    batch = records(7)
    table = parse_example_table(batch, SPEC)
    expected = tfr.parse_example_batch(batch, SPEC)
    assert table.num_rows == 7
    assert table.schema == arrow_schema(SPEC)
    for key in SPEC:
        assert table.column(key).to_pylist() == as_lists(expected[key]), key
    assert table.column("score").to_pylist()[:2] == [-1.0, 0.5]  # the default fills missing records


def test_column_types() -> None:
    schema = arrow_schema(SPEC)
    assert schema.field("id").type == pa.int64()
    assert schema.field("name").type == pa.binary()
    assert schema.field("embedding").type == pa.list_(pa.float32(), 3)
    assert schema.field("grid").type == pa.list_(pa.list_(pa.int64(), 2), 2)
    assert schema.field("tags").type == pa.list_(pa.binary())
    assert schema.field("nested").type == pa.list_(pa.list_(pa.float32()))


def test_to_arrow_of_a_decoded_batch_equals_parse_example_table() -> None:
    batch = records(5)
    assert to_arrow(tfr.parse_example_batch(batch, SPEC), SPEC).equals(parse_example_table(batch, SPEC))


def test_numeric_values_are_not_copied() -> None:
    batch = tfr.parse_example_batch(records(4), SPEC)
    column = to_arrow(batch, SPEC).column("embedding").chunk(0)
    address = column.values.buffers()[1].address
    assert address == batch["embedding"].__array_interface__["data"][0]


def test_only_the_named_features_are_decoded() -> None:
    # "id" is a bytes value here: decoding it as int64 would fail, so a table without it
    # proves it was never decoded.
    bad = [tfr.encode_example({"id": b"not an int", "ids": [1, 2]})]
    table = parse_example_table(bad, {"ids": tfr.VarLenFeature("int64")})
    assert table.column_names == ["ids"]
    with pytest.raises(tfr.DecodeError):
        parse_example_table(bad, {"id": tfr.FixedLenFeature([], "int64")})


def test_sequence_feature_keeps_each_records_rows() -> None:
    spec = {"steps": tfr.FixedLenSequenceFeature([2], "int64", allow_missing=True)}
    batch = [tfr.encode_example({"steps": np.arange(2 * i)}) for i in range(3)]
    table = parse_example_table(batch, spec)
    assert table.column("steps").to_pylist() == [[], [[0, 1]], [[0, 1], [2, 3]]]
    assert table.schema.field("steps").type == pa.list_(pa.list_(pa.int64(), 2))
    with pytest.raises(tfr.ConfigError, match="parse_example_table"):
        to_arrow(tfr.parse_example_batch(batch, spec), spec)


def test_uneven_sequence_names_the_record() -> None:
    spec = {"steps": tfr.FixedLenSequenceFeature([2], "int64", allow_missing=True)}
    batch = [tfr.encode_example({"steps": [1, 2]}), tfr.encode_example({"steps": [1, 2, 3]})]
    with pytest.raises(tfr.DecodeError, match="not a multiple") as caught:
        parse_example_table(batch, spec, path="s3://b/k", offsets=[0, 40])
    assert (caught.value.path, caught.value.offset, caught.value.feature) == ("s3://b/k", 40, "steps")


def test_decode_errors_carry_path_and_offset() -> None:
    batch = [tfr.encode_example({"id": 1}), tfr.encode_example({"id": [1, 2]})]
    with pytest.raises(tfr.DecodeError) as caught:
        parse_example_table(batch, {"id": tfr.FixedLenFeature([], "int64")}, path="f.tfrecord", offsets=[0, 27])
    assert (caught.value.path, caught.value.offset) == ("f.tfrecord", 27)


def test_zero_size_shape_and_empty_batch() -> None:
    spec = {"none": tfr.FixedLenFeature([0], "float32", default_value=[]), "id": tfr.FixedLenFeature([], "int64")}
    table = parse_example_table([tfr.encode_example({"id": 1}), tfr.encode_example({"id": 2})], spec)
    assert table.column("none").to_pylist() == [[], []]
    assert parse_example_table([], SPEC).num_rows == 0


def test_bad_specs_raise_config_error() -> None:
    with pytest.raises(tfr.ConfigError):
        parse_example_table(records(1), ["id"])  # type: ignore[arg-type]
    with pytest.raises(tfr.ConfigError):
        to_arrow({"id": np.zeros(1, np.int64)}, {"id": "int64"})  # type: ignore[dict-item]
    with pytest.raises(tfr.ConfigError, match="not in the batch"):
        to_arrow({}, {"id": tfr.FixedLenFeature([], "int64")})


values = st.one_of(
    st.tuples(st.just("int64"), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=5)),
    st.tuples(st.just("float32"), st.lists(st.floats(width=32, allow_nan=False), max_size=5)),
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=20), max_size=5)),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(values, min_size=1, max_size=6))
def test_var_len_columns_hold_every_records_values(rows: list[tuple[str, list[Any]]]) -> None:
    kind = rows[0][0]
    rows = [(k, v) for k, v in rows if k == kind]
    numpy_type = {"int64": np.int64, "float32": np.float32}
    batch = [
        tfr.encode_example({"x": v if kind == "bytes" else np.array(v, dtype=numpy_type[kind])}) if v else b""
        for _, v in rows
    ]
    table = parse_example_table(batch, {"x": tfr.VarLenFeature(kind)})
    assert table.column("x").to_pylist() == [v for _, v in rows]
