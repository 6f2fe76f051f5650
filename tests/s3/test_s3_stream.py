"""The S3 stream over real HTTP (moto): request costs counted at botocore's send hook, the
headers every GET carries, a changed or deleted object, and threads/sockets after close."""

from __future__ import annotations

import random
import time

import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env
from tests.s3.resources import open_socket_count, our_threads, settles, thread_count
from tfrecord_s3.config import S3Config
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client, s3_files

KiB = 1024


def test_no_head_and_one_get_per_block(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    # The shape of "100 MiB at 8 MiB blocks = 13 GETs" (the first one says the size: no
    # HEAD), scaled down 1024x because moto re-reads the whole object for every ranged GET.
    data = random.Random(0).randbytes(100 * KiB)
    url = s3_env.put("hundred.bin", data)
    s3_counter.reset()
    config = S3Config.from_env(block_size=8 * KiB, read_ahead=2)
    with s3_files.open_s3(url, "rb", config=config) as f:
        assert f.read() == data
        stream = f.raw
        counters = stream.counters()  # type: ignore[attr-defined]
    assert s3_counter.counts == {"GetObject": 13}
    assert counters.requests == 13
    assert counters.bytes_requested == counters.bytes_received == len(data)
    assert counters.retries == 0


def test_every_get_after_the_first_has_range_and_if_match(s3_env: S3Env, sent_gets: list[dict[str, str]]) -> None:
    data = random.Random(1).randbytes(20 * KiB)
    url = s3_env.put("ranged.bin", data)
    etag = s3_env.client.head_object(Bucket=s3_env.bucket, Key="ranged.bin")["ETag"]
    with s3_files.open_s3(url, "rb", config=S3Config.from_env(block_size=8 * KiB)) as f:
        assert f.read() == data
    ranges = sorted(h["Range"] for h in sent_gets)
    assert ranges == ["bytes=0-8191", "bytes=16384-20479", "bytes=8192-16383"]
    # The first GET (its reply says the ETag) goes alone; the others are pinned to it.
    first, *later = sent_gets
    assert first["Range"] == "bytes=0-8191"
    assert "If-Match" not in first
    assert [h["If-Match"] for h in later] == [etag, etag]
    # Checksums only when required: no flexible-checksum headers on plain reads.
    assert not any(k.lower().startswith("x-amz-checksum") for h in sent_gets for k in h)


def test_empty_object_costs_a_refused_get_and_one_head(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    # The first GET of an empty object is answered 416 (no byte in range): a HEAD says why.
    url = s3_env.put("empty.tfrecord", b"")
    s3_counter.reset()
    assert list(tfr.tf_record_iterator(url)) == []
    with tfr.open(url, "rb") as f:
        assert f.read() == b""
        f.seek(100)
        assert f.read(10) == b""  # the size is known by now: no request
    assert s3_counter.counts == {"GetObject": 2, "HeadObject": 2}


def test_object_smaller_than_a_block_is_one_get(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    records = [b"a" * 10, b"", b"bc"]
    url = s3_env.put("small.tfrecord", b"".join(encode_frame(r) for r in records))
    s3_counter.reset()
    assert list(tfr.tf_record_iterator(url)) == records
    assert s3_counter.counts == {"GetObject": 1}


@pytest.mark.parametrize("same_size", [True, False])
def test_object_overwritten_mid_read_is_object_changed(s3_env: S3Env, same_size: bool) -> None:
    old = b"A" * (30 * KiB)
    url = s3_env.put("changing.bin", old)
    config = S3Config.from_env(block_size=8 * KiB, read_ahead=0)
    with s3_files.open_s3(url, "rb", config=config) as f:
        first = f.read(8 * KiB)
        s3_env.put("changing.bin", b"B" * (len(old) if same_size else 10 * KiB))
        with pytest.raises(tfr.ObjectChangedError) as caught:
            f.read()
        assert f.raw.retries == 0  # type: ignore[attr-defined]
    assert first == old[: 8 * KiB]  # no byte of the new version was handed out
    assert url in str(caught.value)
    assert "at byte 8192" in str(caught.value)
    assert caught.value.path == url


def test_object_deleted_mid_read_is_not_found_without_retries(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    url = s3_env.put("vanishing.bin", b"C" * (20 * KiB))
    config = S3Config.from_env(block_size=8 * KiB, read_ahead=0)
    with s3_files.open_s3(url, "rb", config=config) as f:
        assert f.read(8 * KiB) == b"C" * (8 * KiB)
        s3_env.client.delete_object(Bucket=s3_env.bucket, Key="vanishing.bin")
        s3_counter.reset()
        with pytest.raises(tfr.ObjectNotFoundError, match=r"vanishing\.bin"):
            f.read()
        assert f.raw.retries == 0  # type: ignore[attr-defined]
    assert s3_counter.counts == {"GetObject": 1}


def test_threads_and_sockets_return_to_baseline(s3_env: S3Env) -> None:
    data = random.Random(3).randbytes(64 * KiB)
    url = s3_env.put("obj.bin", data)
    s3_client.clear_client_cache()
    sockets, threads = open_socket_count(), thread_count()
    config = S3Config.from_env(block_size=4 * KiB, read_ahead=3)
    for _ in range(3):
        with s3_files.open_s3(url, "rb", config=config) as f:
            assert f.read() == data
        assert our_threads() == []  # read-ahead threads joined at close
    # Leaving early, with read-ahead GETs in flight.
    f = s3_files.open_s3(url, "rb", config=config)
    assert f.read(10) == data[:10]
    began = time.monotonic()
    f.close()
    assert time.monotonic() - began < 2
    assert our_threads() == []
    # The pooled keep-alive connections go with the clients (and moto's threads serving them).
    s3_client.clear_client_cache()
    assert settles(open_socket_count, sockets) <= sockets
    assert settles(thread_count, threads) <= threads
