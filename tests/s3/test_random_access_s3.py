"""Indexes and random access on a real (moto) S3 server: same records, few requests."""

from __future__ import annotations

import pytest

import tfrecord_s3 as tfr
from tests import golden
from tests.conftest import HttpCounter, S3Env
from tests.index.test_index import PLAIN
from tfrecord_s3.cli import main
from tfrecord_s3.index import build_index, read_index, sidecar_path
from tfrecord_s3.records.framing import encode_frame


def put_parts(s3_env: S3Env, sizes: list[int], record_bytes: int = 1000) -> tuple[list[str], list[bytes]]:
    urls, everything = [], []
    for f, n in enumerate(sizes):
        records = [f"f{f}-r{i}-".encode().ljust(record_bytes, b".") for i in range(n)]
        urls.append(s3_env.put(f"parts/part-{f}.tfrecord", b"".join(encode_frame(r) for r in records)))
        everything.extend(records)
    return urls, everything


@pytest.mark.parametrize("name", PLAIN)
def test_every_item_is_the_sequential_record_on_s3(s3_env: S3Env, name: str) -> None:
    url = s3_env.put(f"golden/{name}", golden.path_of(name).read_bytes())
    sequential = list(tfr.tf_record_iterator(str(golden.path_of(name))))
    with tfr.TFRecordMapDataset(url) as ds:  # no sidecar: built by a streaming scan
        assert len(ds) == len(sequential)
        assert [ds[i] for i in range(len(ds))] == sequential
        assert ds.__getitems__(list(range(len(ds)))[::-1]) == sequential[::-1]


def test_getitems_coalesces_near_records_into_one_get(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    urls, everything = put_parts(s3_env, [50, 50])
    assert main(["index", *urls]) == 0
    ds = tfr.TFRecordMapDataset(urls, max_gap=0)
    s3_counter.reset()
    wanted = [9, 3, 4, 5, 6, 7, 8, 0, 1, 2]  # records 0..9 of file 0, shuffled: one range
    assert ds.__getitems__(wanted) == [everything[i] for i in wanted]
    assert s3_counter.counts == {"HeadObject": 1, "GetObject": 1}
    s3_counter.reset()
    wanted = [20, 40, 41, 60, 99, 98]  # file 0: 20 | 40-41; file 1: 10 | 48-49
    assert ds.__getitems__(wanted) == [everything[i] for i in wanted]
    assert s3_counter.counts == {"HeadObject": 1, "GetObject": 4}
    s3_counter.reset()
    # With a generous gap the same batch needs one GET per file.
    wide = tfr.TFRecordMapDataset(urls, max_gap=1 << 20)
    s3_counter.reset()
    assert wide.__getitems__(wanted) == [everything[i] for i in wanted]
    assert s3_counter.counts["GetObject"] == 2
    ds.close()
    wide.close()


def test_cli_index_on_s3_and_its_use(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    urls, everything = put_parts(s3_env, [7, 9])
    assert main(["index", "--jobs", "2", s3_env.url("parts/*.tfrecord")]) == 0
    for url in urls:
        index = read_index(sidecar_path(url))
        assert index.offsets.tolist() == build_index(url).offsets.tolist()
        assert index.stamp.etag
    s3_counter.reset()
    ds = tfr.TFRecordMapDataset(urls)
    # One HEAD (is it still that version?) and one GET of the sidecar per file, no scan.
    assert s3_counter.counts == {"HeadObject": 2, "GetObject": 2}
    assert ds.__getitems__(range(len(ds))) == everything
    ds.close()


def test_rewritten_object_makes_the_sidecar_stale(s3_env: S3Env) -> None:
    urls, _ = put_parts(s3_env, [10])
    assert main(["index", urls[0]]) == 0
    records = [b"%04d" % i + b"." * 996 for i in range(10)]  # same sizes, new bytes
    s3_env.put("parts/part-0.tfrecord", b"".join(encode_frame(r) for r in records))
    with pytest.raises(tfr.StaleIndexError) as caught:
        tfr.TFRecordMapDataset(urls)
    assert caught.value.data_path == urls[0]


def test_writer_to_s3_writes_its_index(s3_env: S3Env) -> None:
    url = s3_env.url("out/w.tfrecord")
    records = [b"r%d" % i * (i + 1) for i in range(40)]
    with tfr.TFRecordWriter(url, index=True) as writer:
        for record in records:
            writer.write(record)
    index = read_index(sidecar_path(url))
    assert index.stamp == build_index(url).stamp
    with tfr.TFRecordMapDataset(url) as ds:
        assert ds.__getitems__([39, 0, 17]) == [records[39], records[0], records[17]]
