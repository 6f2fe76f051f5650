"""Decoding against the golden corpus: every value TensorFlow read back, bit for bit."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest

from tests import golden
from tfrecord_s3.decode import (
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RaggedValues,
    RowLengths,
    VarLenFeature,
    parse_example,
    parse_example_batch,
    parse_sequence_example,
)
from tfrecord_s3.errors import DecodeError
from tfrecord_s3.records.reader import tf_record_iterator

EXAMPLES = "examples_none.tfrecord"
SEQUENCES = "sequence_examples.tfrecord"


def records_of(name: str) -> list[bytes]:
    return list(tf_record_iterator(str(golden.path_of(name))))


def file_info(name: str) -> dict[str, Any]:
    return golden.expected()["files"][name]  # type: ignore[no-any-return]


def same_bytes(ours: bytes, expected: Any) -> bool:
    want = golden.decode_bytes(expected)
    if isinstance(want, dict):
        return len(ours) == want["len"] and hashlib.sha256(ours).hexdigest() == want["sha256"]
    return ours == want


def same_scalar(ours: Any, expected: Any) -> bool:
    if isinstance(ours, bytes):
        return same_bytes(ours, expected)
    if isinstance(ours, (float, np.floating)):
        return isinstance(expected, str) and golden.same_float(float(ours), golden.decode_float(expected))
    return isinstance(expected, int) and int(ours) == expected


def same_list(ours: Any, expected: list[Any]) -> bool:
    items = ours.tolist() if isinstance(ours, np.ndarray) else list(ours)
    if len(items) != len(expected):
        return False
    for mine, want in zip(items, expected, strict=True):
        if isinstance(want, list):
            if not same_list(mine, want):
                return False
        elif not same_scalar(mine, want):
            return False
    return True


def spec_from_json(spec: dict[str, Any]) -> Any:
    kind = spec["type"]
    dtype = spec["dtype"]
    default = spec.get("default_value")
    if default is not None:
        if dtype == "string":
            default = golden.decode_bytes(default) if default else b""
        elif dtype == "float32":
            default = [float(v) for v in default] if isinstance(default, list) else float(default)
    if kind == "FixedLenFeature":
        return FixedLenFeature(spec["shape"], dtype, default)
    if kind == "VarLenFeature":
        return VarLenFeature(dtype)
    if kind == "FixedLenSequenceFeature":
        return FixedLenSequenceFeature(spec["shape"], dtype, spec.get("allow_missing", False), default)
    assert kind == "RaggedFeature"
    partitions = []
    for partition in spec["partitions"]:
        assert partition["type"] == "RowLengths"
        partitions.append(RowLengths(partition["key"]))
    return RaggedFeature(
        dtype, value_key=spec["value_key"], partitions=partitions, row_splits_dtype=spec["row_splits_dtype"]
    )


def specs_from_json(specs: dict[str, Any]) -> dict[str, Any]:
    return {key: spec_from_json(spec) for key, spec in specs.items()}


def test_values_of_the_float_list_are_float32_and_ints_int64() -> None:
    first = parse_example(records_of(EXAMPLES)[0])
    assert first["floats"].dtype == np.float32
    assert first["ints"].dtype == np.int64
    assert isinstance(first["name"], list)


def test_every_example_without_spec_matches_tensorflow() -> None:
    expected = file_info(EXAMPLES)["records"]
    records = records_of(EXAMPLES)
    assert len(records) == len(expected) == 200
    for index, (record, want) in enumerate(zip(records, expected, strict=True)):
        ours = parse_example(record)
        kinded = {key: value for key, value in want["features"].items() if value["kind"] is not None}
        assert sorted(ours) == sorted(kinded), f"record {index}"
        for key, value in kinded.items():
            assert same_list(ours[key], value["value"]), f"record {index} feature {key}"


def test_kindless_feature_is_left_out_without_spec() -> None:
    expected = file_info(EXAMPLES)["records"]
    with_kindless = [i for i, r in enumerate(expected) if r["features"].get("kindless", {}).get("kind", "x") is None]
    assert with_kindless, "the corpus has kindless features"
    records = records_of(EXAMPLES)
    for index in with_kindless:
        assert "kindless" not in parse_example(records[index])


@pytest.mark.parametrize("spec_name", ["fixed", "varlen", "fixed_sequence", "ragged"])
def test_batch_decoding_matches_tf_parse_example(spec_name: str) -> None:
    info = file_info(EXAMPLES)["parse_example"]
    features = specs_from_json(info["specs"][spec_name])
    results = info["results"][spec_name]
    batch = parse_example_batch(records_of(EXAMPLES), features)
    assert sorted(batch) == sorted(features)
    for key, shape in results["batch"].items():
        value = batch[key]
        if "shape" in shape:
            assert list(value.shape) == shape["shape"], key
        else:
            assert list(value.dense_shape) == shape["dense_shape"], key
    for index, want in enumerate(results["per_record"]):
        for key, expected in want.items():
            value = batch[key]
            if isinstance(value, RaggedValues):
                row = value.row(index)
                mine = row.to_list() if isinstance(row, RaggedValues) else row
                assert same_list(mine, expected), f"record {index} feature {key}"
            elif isinstance(expected, list):
                assert same_list(value[index], expected), f"record {index} feature {key}"
            else:
                assert same_scalar(value[index], expected), f"record {index} feature {key}"


@pytest.mark.parametrize("spec_name", ["fixed", "varlen", "fixed_sequence", "ragged"])
def test_single_record_decoding_agrees_with_the_batch(spec_name: str) -> None:
    info = file_info(EXAMPLES)["parse_example"]
    features = specs_from_json(info["specs"][spec_name])
    records = records_of(EXAMPLES)
    batch = parse_example_batch(records, features)
    for index in (0, 1, 7, 198, 199):
        single = parse_example(records[index], features)
        for key, value in single.items():
            whole = batch[key]
            if isinstance(whole, RaggedValues):
                row = whole.row(index)
                if isinstance(row, RaggedValues):
                    assert value.to_list() == row.to_list()
                else:
                    assert same_kind_equal(value, row)
            elif spec_name == "fixed_sequence":
                rows = value.shape[0]
                assert same_kind_equal(value, whole[index][:rows])
            else:
                assert same_kind_equal(value, whole[index])


def same_kind_equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) and a.dtype == np.float32:
        return bool(np.array_equal(a.view(np.int32), np.asarray(b).view(np.int32)))
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b)) and a.dtype == np.asarray(b).dtype
    if isinstance(a, (float, np.floating)):
        return golden.same_float(float(a), float(b))
    return bool(a == b)


def error_cases() -> list[Any]:
    return [pytest.param(case, id=case["description"]) for case in file_info(EXAMPLES)["parse_example_errors"]]


@pytest.mark.parametrize("case", error_cases())
def test_tensorflow_parse_errors_are_decode_errors_naming_the_feature(case: dict[str, Any]) -> None:
    records = records_of(EXAMPLES)
    features = specs_from_json(case["spec"])
    (key,) = features
    indices = range(len(records)) if case["record_indices"] == "all" else case["record_indices"]
    batch = [records[i] for i in indices]
    with pytest.raises(DecodeError) as caught:
        parse_example_batch(batch, features)
    assert caught.value.feature == key
    assert str(caught.value) == case["error"]["message_core"]
    # One record at a time too: the first bad record fails with the same message.
    first_bad = next(i for i in indices if _fails(records[i], features))
    with pytest.raises(DecodeError, match="Name: f at byte 12, ") as caught:
        parse_example(records[first_bad], features, path="f", offset=12)
    assert caught.value.feature == key
    assert (caught.value.path, caught.value.offset) == ("f", 12)


def _fails(record: bytes, features: dict[str, Any]) -> bool:
    try:
        parse_example(record, features)
    except DecodeError:
        return True
    return False


def test_error_names_path_and_offset_of_the_bad_record_in_a_batch() -> None:
    records = records_of(EXAMPLES)[:10]
    offsets = [100 * i for i in range(10)]
    with pytest.raises(DecodeError) as caught:
        parse_example_batch(records, {"label": FixedLenFeature([], "int64")}, path="s3://b/k", offsets=offsets)
    message = file_info(EXAMPLES)["parse_example_errors"][0]["error"]["message_core"]
    assert str(caught.value) == message.replace("<unknown>", "s3://b/k at byte 300")
    assert (caught.value.path, caught.value.offset, caught.value.feature) == ("s3://b/k", 300, "label")


def test_every_sequence_example_without_spec_matches_tensorflow() -> None:
    expected = file_info(SEQUENCES)["records"]
    records = records_of(SEQUENCES)
    assert len(records) == len(expected)
    for index, (record, want) in enumerate(zip(records, expected, strict=True)):
        context, sequences = parse_sequence_example(record)
        kinded = {k: v for k, v in want["context"].items() if v["kind"] is not None}
        assert sorted(context) == sorted(kinded), index
        for key, value in kinded.items():
            assert same_list(context[key], value["value"]), (index, key)
        assert sorted(sequences) == sorted(want["feature_lists"]), index
        for key, steps in want["feature_lists"].items():
            assert len(sequences[key]) == len(steps)
            for mine, step in zip(sequences[key], steps, strict=True):
                assert same_list(mine, step["value"] if step["kind"] is not None else []), (index, key)


def _same_sparse(value: Any, expected: dict[str, Any]) -> bool:
    if isinstance(value, RaggedValues):
        return (
            list(value.dense_shape) == expected["dense_shape"]
            and value.indices().tolist() == expected["indices"]
            and same_list(value.values, expected["values"])
        )
    # A context VarLenFeature comes back as its 1-D values.
    indices = [[i] for i in range(len(value))]
    return (
        [len(value)] == expected["dense_shape"]
        and indices == expected["indices"]
        and same_list(value, expected["values"])
    )


def test_parse_single_sequence_example_matches_tensorflow() -> None:
    info = file_info(SEQUENCES)["parse_single_sequence_example"]
    context_specs = specs_from_json(info["specs"]["context"])
    sequence_specs = specs_from_json(info["specs"]["sequence"])
    records = records_of(SEQUENCES)
    assert len(info["per_record"]) == len(records)
    for index, (record, want) in enumerate(zip(records, info["per_record"], strict=True)):
        context, sequences = parse_sequence_example(record, context_specs, sequence_specs)
        for part, ours, specs in (
            ("context", context, context_specs),
            ("sequence", sequences, sequence_specs),
        ):
            assert sorted(ours) == sorted(want[part])
            for key, expected in want[part].items():
                value = ours[key]
                where = (index, part, key)
                if isinstance(specs[key], VarLenFeature):
                    assert _same_sparse(value, expected), where
                elif isinstance(value, RaggedValues):
                    assert same_list(value.to_list(), expected), where
                elif isinstance(expected, list):
                    assert same_list(value, expected), where
                    if isinstance(specs[key], FixedLenSequenceFeature):
                        assert value.shape == (len(expected), *specs[key].shape), where
                else:
                    assert same_scalar(value, expected), where
