"""write_tfrecords: a Ray dataset -> sharded TFRecords (local or S3) -> read_tfrecords, unchanged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'tfrecord-s3[ray]')")
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")

from ray.data.extensions import ArrowTensorArray  # noqa: E402

from tfrecord_s3.errors import CorruptRecordError  # noqa: E402
from tfrecord_s3.index import INDEX_SUFFIX  # noqa: E402
from tfrecord_s3.ray import read_tfrecords, tfrecord_datasource, write_tfrecords  # noqa: E402
from tfrecord_s3.ray._datasink import rows_of  # noqa: E402
from tfrecord_s3.records.framing import encode_frame  # noqa: E402

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
    # Uncompressed shards get index sidecars: the set's record count is known without reading.
    assert all(Path(p + INDEX_SUFFIX).exists() != bool(compression) for p in shards)
    (task,) = tfrecord_datasource(shards, features=SPEC, compression_type=compression).get_read_tasks(1)
    assert task.metadata.num_rows == (None if compression else 120)
    with pytest.raises(tfr.ConfigError, match="already holds"):
        write_tfrecords(ds, str(tmp_path / "out"), compression_type=compression)


def test_count_from_sidecars_reads_no_record(tmp_path: Path) -> None:
    shards = write_tfrecords(ray.data.from_items(rows(50), override_num_blocks=2), str(tmp_path / "out"))
    for shard in shards:  # garbage of the same size and mtime: any read would fail its CRCs
        before = os.stat(shard)
        Path(shard).write_bytes(b"\xff" * before.st_size)
        os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert read_tfrecords(shards, features=SPEC).count() == 50
    with pytest.raises(CorruptRecordError):
        read_tfrecords(shards, features=SPEC, use_index=False).count()


def test_a_stale_sidecar_is_not_trusted(tmp_path: Path) -> None:
    shards = write_tfrecords(ray.data.from_items(rows(30), override_num_blocks=1), str(tmp_path / "out"))
    first = next(iter(tfr.tf_record_iterator(shards[0])))
    with open(shards[0], "ab") as data:  # the shard grows: its sidecar no longer describes it
        data.write(encode_frame(first))
    with pytest.warns(RuntimeWarning, match="stale index"):
        (task,) = tfrecord_datasource(shards, features=SPEC).get_read_tasks(1)
    assert task.metadata.num_rows is None
    with pytest.warns(RuntimeWarning, match="stale index"):
        assert read_tfrecords(shards, features=SPEC).count() == 31  # counted by reading
    assert read_tfrecords(shards, features=SPEC, use_index=False).count() == 31


def _equal(ds: Any, count: int) -> bool:
    table = pa.concat_tables(ray.get(ds.to_arrow_refs())).sort_by("id")
    return bool(table.to_pylist() == expected(count))


def test_s3_round_trip(s3_env: S3Env) -> None:
    ds = ray.data.from_items(rows(60), override_num_blocks=2)
    shards = write_tfrecords(ds, s3_env.url("written"))
    found = tfr.glob(s3_env.url("written/part-*"))
    assert sorted(found) == sorted(shards + [p + INDEX_SUFFIX for p in shards])
    assert _equal(read_tfrecords(s3_env.url("written/*"), features=SPEC), 60)


def test_s3_sidecars_give_row_counts_when_asked(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    shards = write_tfrecords(ray.data.from_items(rows(40), override_num_blocks=2), s3_env.url("counted"))
    s3_counter.reset()
    (task,) = tfrecord_datasource(s3_env.url("counted/*"), features=SPEC).get_read_tasks(1)
    assert (task.metadata.num_rows, dict(s3_counter.counts)) == (None, {"ListObjectsV2": 1})  # S3: not by default
    s3_counter.reset()
    (task,) = tfrecord_datasource(s3_env.url("counted/*"), features=SPEC, use_index=True).get_read_tasks(1)
    assert task.metadata.num_rows == 40
    assert dict(s3_counter.counts) == {"ListObjectsV2": 1, "GetObject": len(shards)}  # one GET per sidecar
    assert read_tfrecords(s3_env.url("counted/*"), features=SPEC, use_index=True).count() == 40


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
