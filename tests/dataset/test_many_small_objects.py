"""Many small S3 objects: no HEAD after a listing, one GET per small object, files opened
ahead concurrently without changing the order (moto on 127.0.0.1)."""

from __future__ import annotations

import pickle

import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.dataset.interleave import MAX_FILES_AHEAD, files_ahead
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage.s3_files import ListedObject, glob_s3

OBJECTS = 40


@pytest.fixture
def small_objects(s3_env: S3Env) -> list[bytes]:
    records = []
    for i in range(OBJECTS):
        recs = [f"o{i}r{j}".encode() * (1 + j % 5) for j in range(20 + i % 7)]
        s3_env.put(f"many/obj-{i:04d}.tfrecord", b"".join(encode_frame(r) for r in recs))
        records.append(recs)
    return [r for recs in records for r in recs]


def test_a_glob_carries_size_and_etag(s3_env: S3Env, small_objects: list[bytes]) -> None:
    found = glob_s3(s3_env.url("many/obj-*.tfrecord"))
    assert len(found) == OBJECTS
    first = found[0]
    assert isinstance(first, ListedObject)
    head = s3_env.client.head_object(Bucket=s3_env.bucket, Key="many/obj-0000.tfrecord")
    assert (first.size, first.etag) == (head["ContentLength"], head["ETag"])
    assert first == s3_env.url("many/obj-0000.tfrecord")  # still the path, as a str
    again = pickle.loads(pickle.dumps(first))
    assert (again, again.size, again.etag) == (first, first.size, first.etag)


def test_objects_from_a_glob_cost_no_head_and_one_get_each(
    s3_env: S3Env, small_objects: list[bytes], s3_counter: HttpCounter
) -> None:
    dataset = TFRecordDataset(s3_env.url("many/obj-*.tfrecord"))
    assert list(dataset) == small_objects
    assert s3_counter.counts["HeadObject"] == 0
    assert s3_counter.counts["GetObject"] == OBJECTS
    assert s3_counter.counts["ListObjectsV2"] == 1


def test_a_path_named_directly_costs_one_get_and_no_head(
    s3_env: S3Env, small_objects: list[bytes], s3_counter: HttpCounter
) -> None:
    paths = [s3_env.url(f"many/obj-{i:04d}.tfrecord") for i in range(3)]
    assert len(list(TFRecordDataset(paths))) == sum(20 + i % 7 for i in range(3))
    assert s3_counter.counts == {"GetObject": 3}  # its reply says the size and ETag


def test_a_rewrite_between_listing_and_read_is_object_changed(s3_env: S3Env, small_objects: list[bytes]) -> None:
    dataset = TFRecordDataset(s3_env.url("many/obj-000*.tfrecord"))
    assert len(dataset.files) == 10  # listed now
    s3_env.put("many/obj-0003.tfrecord", encode_frame(b"a new version"))
    with pytest.raises(tfr.ObjectChangedError, match=r"obj-0003\.tfrecord"):
        list(dataset)


@pytest.mark.parametrize("parallel", [None, 3])
def test_files_opened_ahead_keep_the_deterministic_order(
    s3_env: S3Env, small_objects: list[bytes], parallel: int | None
) -> None:
    pattern = s3_env.url("many/obj-*.tfrecord")
    listed = TFRecordDataset(pattern, num_parallel_reads=parallel)
    plain = [str(p) for p in listed.files]  # plain strings: no sizes, one HEAD each
    got = list(listed)
    assert got == list(TFRecordDataset(plain, num_parallel_reads=parallel))
    if parallel is None:
        assert got == small_objects  # file after file, each in record order


def test_how_many_files_are_opened_ahead() -> None:
    small = [ListedObject(f"s3://b/k{i}", 100_000, '"e"') for i in range(1000)]
    assert files_ahead(small, 256 << 20) == MAX_FILES_AHEAD
    large = [ListedObject(f"s3://b/k{i}", 100 << 20, '"e"') for i in range(8)]
    assert files_ahead(large, 256 << 20) == 1
    assert files_ahead(["/local/a", "/local/b"], 256 << 20) == 1
    assert files_ahead([f"s3://b/{i}" for i in range(9)], 256 << 20) == 4  # sizes unknown
    assert files_ahead(small[:3], 256 << 20) == 2  # never more than the files after the first
