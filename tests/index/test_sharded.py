"""ShardedWriter: rolling shards, {count} filled at the end, an index per shard, aborts leave nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env
from tfrecord_s3.config import MIN_PART_SIZE, S3Config
from tfrecord_s3.index import INDEX_SUFFIX, build_index, read_index, sidecar_path


def records(n: int, size: int = 100) -> list[bytes]:
    return [b"%06d" % i + bytes([i % 251]) * (size - 6) for i in range(n)]


def read_back(paths: list[str]) -> list[bytes]:
    return [r for p in paths for r in tfr.tf_record_iterator(p)]


def test_count_is_filled_in_at_the_end(tmp_path: Path) -> None:
    pattern = str(tmp_path / "train-{index:05d}-of-{count:05d}.tfrecord")
    data = records(35)
    with tfr.ShardedWriter(pattern, max_records=10) as writer:
        for record in data:
            writer.write(record)
    assert [Path(p).name for p in writer.paths] == [f"train-0000{i}-of-00004.tfrecord" for i in range(4)]
    assert read_back(writer.paths) == data
    for path in writer.paths:
        assert read_index(sidecar_path(path)).offsets.tolist() == build_index(path).offsets.tolist()
        assert read_index(sidecar_path(path)).stamp == build_index(path).stamp
    names = sorted(os.listdir(tmp_path))
    assert len(names) == 8  # 4 shards + 4 indexes, no temporary left
    assert all(n.endswith((".tfrecord", INDEX_SUFFIX)) for n in names)


def test_max_bytes_rolls_before_a_shard_overflows(tmp_path: Path) -> None:
    data = [*records(30, 100), b"x" * 5000, *records(5, 100)]
    with tfr.ShardedWriter(str(tmp_path / "s-{index}.tfrecord"), max_bytes=1000, index=False) as writer:
        for record in data:
            writer.write(record)
    sizes = [os.path.getsize(p) for p in writer.paths]
    assert read_back(writer.paths) == data
    assert all(size <= 1000 for size in sizes if size != 5016)
    assert 5016 in sizes  # the oversized record has a shard of its own
    assert not any(n.endswith(INDEX_SUFFIX) for n in os.listdir(tmp_path))


def test_num_shards_names_are_final_and_the_set_is_completed(tmp_path: Path) -> None:
    pattern = str(tmp_path / "t-{index:03d}-of-{count:03d}.tfrecord")
    data = records(23)
    with tfr.ShardedWriter(pattern, max_records=10, num_shards=5) as writer:
        for record in data:
            writer.write(record)
    assert [Path(p).name for p in writer.paths] == [f"t-00{i}-of-005.tfrecord" for i in range(5)]
    assert [len(list(tfr.tf_record_iterator(p))) for p in writer.paths] == [10, 10, 3, 0, 0]
    assert read_back(writer.paths) == data
    with (
        pytest.raises(tfr.ConfigError, match="more than num_shards"),
        tfr.ShardedWriter(str(tmp_path / "u-{index}-of-{count}.tfrecord"), max_records=2, num_shards=2) as small,
    ):
        for record in records(5):
            small.write(record)


def test_local_abort_leaves_no_temporary_and_no_cut_shard(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        tfr.ShardedWriter(str(tmp_path / "a-{index}-of-{count}.tfrecord"), max_records=4) as w,
    ):
        for record in records(10):
            w.write(record)
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_bad_patterns_and_options(tmp_path: Path) -> None:
    with pytest.raises(tfr.ConfigError):
        tfr.ShardedWriter(str(tmp_path / "no-index.tfrecord"))
    with pytest.raises(tfr.ConfigError):
        tfr.ShardedWriter(str(tmp_path / "{index}-{split}.tfrecord"))
    with pytest.raises(tfr.ConfigError, match="uncompressed"):
        tfr.ShardedWriter(str(tmp_path / "{index}.tfrecord.gz"), compression_type="GZIP")
    with pytest.raises(tfr.ConfigError):
        tfr.ShardedWriter(str(tmp_path / "{index}.tfrecord"), max_records=0)


def list_keys(s3_env: S3Env) -> list[str]:
    return sorted(o["Key"] for o in s3_env.client.list_objects_v2(Bucket=s3_env.bucket).get("Contents", []))


def test_s3_shards_upload_parts_in_parallel(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    config = S3Config.from_env(part_size=MIN_PART_SIZE)
    data = records(240, 100_000)  # 24 MB: 2 shards of ~12 MB, 3 parts each
    pattern = s3_env.url("out/train-{index:05d}-of-{count:05d}.tfrecord")
    with tfr.ShardedWriter(pattern, max_bytes=12_100_000, upload_concurrency=3, config=config) as writer:
        for record in data:
            writer.write(record)
    assert writer.paths == [s3_env.url(f"out/train-0000{i}-of-00002.tfrecord") for i in range(2)]
    assert read_back(writer.paths) == data
    assert s3_counter.counts["UploadPart"] == 6
    # Two uploads, then two server-side copies to the final names.
    assert s3_counter.counts["CompleteMultipartUpload"] == 2
    assert s3_counter.counts["CopyObject"] == 2
    assert s3_counter.counts["DeleteObject"] == 2
    assert list_keys(s3_env) == sorted(
        [f"out/train-0000{i}-of-00002.tfrecord" for i in range(2)]
        + [f"out/train-0000{i}-of-00002.tfrecord{INDEX_SUFFIX}" for i in range(2)]
    )
    with tfr.TFRecordMapDataset(writer.paths) as ds:  # the indexes match the renamed objects
        assert ds.__getitems__([0, 239, 120]) == [data[0], data[239], data[120]]


def test_s3_abort_leaves_no_object_and_no_upload(s3_env: S3Env) -> None:
    config = S3Config.from_env(part_size=MIN_PART_SIZE)
    pattern = s3_env.url("out/a-{index}-of-{count}.tfrecord")
    with pytest.raises(RuntimeError), tfr.ShardedWriter(pattern, max_records=60, config=config) as writer:
        for record in records(100, 100_000):
            writer.write(record)
        raise RuntimeError("boom")
    assert list_keys(s3_env) == []
    assert s3_env.client.list_multipart_uploads(Bucket=s3_env.bucket).get("Uploads", []) == []
