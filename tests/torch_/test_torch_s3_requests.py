"""TFRecordIterableDataset over a glob pays no HEAD per object: the listing's sizes and ETags
go through the file planning (whole files, and byte ranges when readers outnumber files)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import HttpCounter, S3Env
from tfrecord_s3.records.framing import encode_frame

torch = pytest.importorskip("torch")

from tfrecord_s3.torch import TFRecordIterableDataset  # noqa: E402


def put_objects(s3_env: S3Env, files: int, records: int) -> list[bytes]:
    everything = []
    for f in range(files):
        recs = [b"file %d record %d " % (f, i) * (1 + i % 3) for i in range(records)]
        s3_env.put(f"plan/part-{f:02d}.tfrecord", b"".join(encode_frame(r) for r in recs))
        everything.extend(recs)
    return everything


def test_whole_files_cost_one_get_each_and_no_head(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    everything = put_objects(s3_env, files=12, records=5)
    s3_counter.reset()
    seen: list[bytes] = []
    for rank in range(3):
        ds = TFRecordIterableDataset(s3_env.url("plan/*.tfrecord"), rank=rank, world_size=3)
        seen.extend(bytes(r) for r in ds)
    assert Counter(seen) == Counter(everything)
    assert dict(s3_counter.counts) == {"ListObjectsV2": 3, "GetObject": 12}


def test_byte_range_plan_uses_the_listed_sizes(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    everything = put_objects(s3_env, files=2, records=40)
    s3_counter.reset()
    seen: list[bytes] = []
    for rank in range(5):  # more readers than files: the files are cut by byte range
        ds = TFRecordIterableDataset(s3_env.url("plan/*.tfrecord"), rank=rank, world_size=5)
        seen.extend(bytes(r) for r in ds)
    assert Counter(seen) == Counter(everything)
    assert s3_counter.counts["HeadObject"] == 0
    assert s3_counter.counts["ListObjectsV2"] == 5
