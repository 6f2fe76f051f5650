"""write_tfrecords: a Ray dataset -> sharded TFRecords (local or S3) -> read_tfrecords, unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'tfrecord-s3[ray]')")
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")

from ray.data.extensions import ArrowTensorArray  # noqa: E402

from tfrecord_s3.ray import read_tfrecords, write_tfrecords  # noqa: E402
from tfrecord_s3.ray._datasink import rows_of  # noqa: E402

pytestmark = pytest.mark.usefixtures("ray_cluster")

SPEC: dict[str, Any] = {
    "id": tfr.FixedLenFeature([], "int64"),
    "flag": tfr.FixedLenFeature([], "int64"),
    "score": tfr.FixedLenFeature([], "float32"),
    "vector": tfr.FixedLenFeature([3], "float32"),
    "name": tfr.FixedLenFeature([], "bytes"),
    "tokens": tfr.VarLenFeature("int64"),
}


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "flag": bool(i % 2),
            "score": i / 4,
            "vector": np.arange(3, dtype=np.float32) * i,
            "name": f"item {i}",
            "tokens": list(range(i % 4)),
        }
        for i in range(count)
    ]


def expected(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "flag": i % 2,
            "score": i / 4,
            "vector": [0.0, float(i), 2.0 * i],
            "name": f"item {i}".encode(),
            "tokens": list(range(i % 4)),
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("compression", [None, "GZIP"])
def test_local_round_trip(tmp_path: Path, compression: str | None) -> None:
    ds = ray.data.from_items(rows(120), override_num_blocks=3)
    shards = write_tfrecords(ds, str(tmp_path / "out"), compression_type=compression)
    suffix = ".tfrecord.gz" if compression else ".tfrecord"
    assert shards
    assert all(Path(p).name.startswith("part-") and p.endswith(suffix) for p in shards)
    back = read_tfrecords(shards, features=SPEC, compression_type=compression)
    assert _equal(back, 120)
    # Plain TFRecord files: our own reader (and TensorFlow) read them with no Ray at all.
    assert sum(1 for p in shards for _ in tfr.tf_record_iterator(p, compression)) == 120
    with pytest.raises(tfr.ConfigError, match="already holds"):
        write_tfrecords(ds, str(tmp_path / "out"), compression_type=compression)


def _equal(ds: Any, count: int) -> bool:
    table = pa.concat_tables(ray.get(ds.to_arrow_refs())).sort_by("id")
    return bool(table.to_pylist() == expected(count))


def test_s3_round_trip(s3_env: S3Env) -> None:
    ds = ray.data.from_items(rows(60), override_num_blocks=2)
    shards = write_tfrecords(ds, s3_env.url("written"))
    assert shards == sorted(tfr.glob(s3_env.url("written/part-*")))
    assert _equal(read_tfrecords(s3_env.url("written/*"), features=SPEC), 60)


def test_rows_of_flattens_lists_and_leaves_nulls_out() -> None:
    table = pa.table(
        {
            "nested": pa.array([[[1, 2], [3]], None, [[4]]], type=pa.list_(pa.list_(pa.int64()))),
            "grid": pa.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], type=pa.list_(pa.float32(), 2)),
            "maybe": pa.array([1, None, 3]),
            "words": pa.array([["a"], [], ["b", "c"]]),
        }
    ).slice(1)
    out = list(rows_of(table))
    assert [sorted(r) for r in out] == [["grid", "words"], ["grid", "maybe", "nested", "words"]]
    assert out[1]["nested"].tolist() == [4]
    assert out[1]["grid"].tolist() == [5.0, 6.0]
    assert out[0]["words"].tolist() == []
    assert out[1]["words"].tolist() == ["b", "c"]
    decoded = tfr.parse_example(tfr.encode_example(out[1]))
    assert decoded["maybe"].tolist() == [3]
    assert decoded["words"] == [b"b", b"c"]
    tensors = pa.table({"t": ArrowTensorArray.from_numpy(np.arange(12, dtype=np.float32).reshape(2, 2, 3))})
    assert [r["t"].tolist() for r in rows_of(tensors)] == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]
    assert tfr.parse_example(tfr.encode_example(next(iter(rows_of(tensors)))))["t"].tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(tfr.ConfigError, match=r"no tf\.train\.Feature kind"):
        list(rows_of(pa.table({"when": pa.array([1], type=pa.timestamp("s"))})))
