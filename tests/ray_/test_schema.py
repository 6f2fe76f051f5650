"""Features inferred from a sample of records: the rules, and the errors that name a record."""

from __future__ import annotations

import numpy as np
import pytest

import tfrecord_s3 as tfr

pytest.importorskip("ray", reason="ray is not installed (pip install 'tfrecord-s3[ray]')")

from tfrecord_s3.ray._schema import Sample, infer_features


def sample(*records: bytes, path: str = "f.tfrecord") -> Sample:
    out, offset = Sample(files=[path]), 0
    for record in records:
        out.records.append((path, offset, record))
        offset += len(record) + 16
    return out


def test_rules() -> None:
    records = [
        tfr.encode_example({"id": i, "vec": np.zeros(3, np.float32), "tags": [b"t"] * i, "some": 1} if i else {"id": i})
        for i in range(3)
    ]
    records[0] = tfr.encode_example({"id": 0, "vec": np.zeros(3, np.float32), "tags": np.array([], object)})
    specs = infer_features(sample(*records))
    assert specs == {
        "id": tfr.FixedLenFeature([], "int64"),  # one value everywhere: a plain column
        "some": tfr.VarLenFeature("int64"),  # missing from a record
        "tags": tfr.VarLenFeature("bytes"),  # lengths vary
        "vec": tfr.FixedLenFeature([3], "float32"),  # three values everywhere
    }


def test_a_feature_changing_kind_names_the_record() -> None:
    first, second = tfr.encode_example({"x": 1}), tfr.encode_example({"x": 1.5})
    with pytest.raises(tfr.DecodeError, match="float values, but int64") as caught:
        infer_features(sample(first, second))
    assert (caught.value.path, caught.value.offset, caught.value.feature) == ("f.tfrecord", len(first) + 16, "x")


def test_bad_record_and_empty_sample() -> None:
    with pytest.raises(tfr.DecodeError, match="Could not parse") as caught:
        infer_features(sample(tfr.encode_example({"x": 1}), b"\xff\xff\xff"))
    assert caught.value.offset is not None
    with pytest.raises(tfr.ConfigError, match="features="):
        infer_features(sample(tfr.encode_example({})))
