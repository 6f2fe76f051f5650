"""Opening an S3 object by path costs no HEAD: the first ranged GET's reply says the size
(``Content-Range`` total, or a whole-object 200's length) and the ETag that pins every later
GET. What a HEAD said before must still come out: exact bytes of objects shorter than the
first range, empty objects and reads at the end (416: one HEAD then), and the same typed
errors and messages for a missing key, a missing bucket or a denied read."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tfrecord_s3.config import S3Config
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.records.reader import open_records
from tfrecord_s3.storage import s3_client, s3_files
from tfrecord_s3.storage.s3_files import ListedObject

KiB = 1024
FIRST = 4 * KiB
#: Growing blocks from 4 KiB up to 16 KiB (the default policy, scaled down for moto).
GROWING = {"first_block_size": FIRST, "block_size": 16 * KiB}
RECORDS = [random.Random(9).randbytes(n) for n in (100, 0, 3000, 7, 5000, 1200, 40, 2500)]
FILE = b"".join(encode_frame(r) for r in RECORDS)


def listed(s3_env: S3Env, key: str) -> ListedObject:
    """``key`` as a listing gives it (size and ETag known: no HEAD, no probe)."""
    head = s3_env.client.head_object(Bucket=s3_env.bucket, Key=key)
    return ListedObject(s3_env.url(key), int(head["ContentLength"]), str(head["ETag"]))


@pytest.mark.parametrize("size", [1, FIRST - 1, FIRST, FIRST + 1, 4 * FIRST, 5 * FIRST, 5 * FIRST + 1, 10 * FIRST + 3])
def test_any_size_reads_exactly_without_a_head(s3_env: S3Env, s3_counter: HttpCounter, size: int) -> None:
    data = random.Random(size).randbytes(size)
    url = s3_env.put(f"sized/{size}.bin", data)
    known = listed(s3_env, f"sized/{size}.bin")
    config = S3Config.from_env(**GROWING)
    s3_counter.reset()
    with s3_files.open_s3_stream(url, config=config) as stream:
        assert stream.readall() == data
        assert stream.size == size
        probed = stream.counters()
    with s3_files.open_s3_stream(known, config=config) as stream:
        assert stream.readall() == data
        planned = stream.counters()
    assert "HeadObject" not in s3_counter.counts
    assert probed.bytes_received == planned.bytes_received == size
    # Knowing the size, an object within four first blocks is one GET; found out from the
    # first reply, what that GET left is one more when it is as small.
    if size <= FIRST:
        assert probed.requests == planned.requests == 1
    elif size <= 5 * FIRST:
        assert probed.requests == 2
    else:
        assert probed.requests == planned.requests
    assert s3_counter.counts["GetObject"] == probed.requests + planned.requests


def test_first_get_asks_the_first_block_and_later_ones_are_pinned(
    s3_env: S3Env, sent_gets: list[dict[str, str]]
) -> None:
    data = random.Random(2).randbytes(10 * FIRST)
    url = s3_env.put("pinned.bin", data)
    etag = s3_env.client.head_object(Bucket=s3_env.bucket, Key="pinned.bin")["ETag"]
    with s3_files.open_s3_stream(url, config=S3Config.from_env(**GROWING)) as stream:
        assert stream.readall() == data
    first, *later = sent_gets
    assert first["Range"] == f"bytes=0-{FIRST - 1}"
    assert "If-Match" not in first
    assert later
    assert {h.get("If-Match") for h in later} == {etag}


def test_dataset_of_explicit_paths_sends_no_head(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    paths = [s3_env.put(f"explicit/part-{i}.tfrecord", FILE) for i in range(8)]
    s3_counter.reset()
    assert list(tfr.TFRecordDataset(paths)) == RECORDS * 8
    assert s3_counter.counts == {"GetObject": 8}  # each file within the first 1 MiB GET


def test_resume_mid_file_and_at_the_end(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    url = s3_env.put("resume.tfrecord", FILE)
    config = S3Config.from_env(**GROWING)
    at = sum(len(r) + 16 for r in RECORDS[:3])
    s3_counter.reset()
    assert list(open_records(url, start_offset=at, config=config)) == RECORDS[3:]
    assert "HeadObject" not in s3_counter.counts
    # At the end: the first GET is answered 416 (no byte there), and a HEAD says the size.
    s3_counter.reset()
    assert list(open_records(url, start_offset=len(FILE), config=config)) == []
    assert s3_counter.counts == {"GetObject": 1, "HeadObject": 1}


@pytest.mark.parametrize("policy", [GROWING, {"block_size": 16 * KiB, "read_ahead": 2}], ids=["growing", "fixed"])
def test_a_seek_past_the_end_reads_nothing(s3_env: S3Env, policy: dict[str, int]) -> None:
    url = s3_env.put("short.bin", b"0123456789")
    with tfr.open(url, "rb") as f:
        f.seek(5)
        assert f.read() == b"56789"
    config = S3Config.from_env(**policy)
    with s3_files.open_s3_stream(url, config=config) as stream:
        stream.seek(100)
        assert stream.read(10) == b""
        assert stream.size == 10
        stream.seek(3)
        assert stream.read(4) == b"3456"


def test_an_empty_file_gives_no_records(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    url = s3_env.put("empty.tfrecord", b"")
    s3_counter.reset()
    assert list(tfr.TFRecordDataset([url])) == []
    assert s3_counter.counts == {"GetObject": 1, "HeadObject": 1}


def _same_error_as_stat(url: str, kind: type[Exception]) -> None:
    with pytest.raises(kind) as by_stat:
        tfr.stat(url)
    with pytest.raises(kind) as by_open:
        open_records(url)  # raises at open, before the first record is asked for
    with pytest.raises(kind) as in_dataset:
        list(tfr.TFRecordDataset([url]))
    with tfr.open(url, "rb") as f, pytest.raises(kind) as by_read:
        f.read(1)
    assert str(by_open.value) == str(by_stat.value) == str(by_read.value)
    assert str(in_dataset.value) == str(by_stat.value)
    assert getattr(by_open.value, "path", None) == getattr(by_stat.value, "path", None)
    assert url in str(by_open.value)


def test_a_missing_key_is_the_same_error_as_a_head_gives(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    url = s3_env.url("absent.tfrecord")
    _same_error_as_stat(url, tfr.ObjectNotFoundError)
    with pytest.raises(tfr.ObjectNotFoundError, match="not found"):
        list(open_records(url))


def test_a_missing_bucket_is_named(s3_env: S3Env) -> None:
    url = f"s3://{s3_env.bucket}-gone/k.tfrecord"
    _same_error_as_stat(url, tfr.ObjectNotFoundError)
    with pytest.raises(tfr.ObjectNotFoundError, match="no such bucket"):
        list(open_records(url))


def test_access_denied_is_the_same_error_as_a_head_gives(s3_env: S3Env, s3_proxy: FaultProxy) -> None:
    url = s3_env.put("denied.tfrecord", FILE)
    s3_proxy.add_rule(Fault.access_denied(), times=None)
    _same_error_as_stat(url, tfr.AccessDeniedError)


def test_a_rewrite_after_the_first_get_is_object_changed(s3_env: S3Env) -> None:
    old = random.Random(4).randbytes(10 * FIRST)
    url = s3_env.put("rewritten.bin", old)
    config = S3Config.from_env(block_size=FIRST, read_ahead=0)
    with s3_files.open_s3_stream(url, config=config) as stream:
        assert stream.read(FIRST) == old[:FIRST]
        s3_env.put("rewritten.bin", old[::-1])  # same size, other bytes
        with pytest.raises(tfr.ObjectChangedError, match="at byte 4096"):
            stream.read()


@pytest.mark.parametrize("cut", [0, 1, 100, FIRST - 1])
def test_a_first_get_cut_mid_body_resumes_pinned_to_its_etag(
    s3_env: S3Env, s3_proxy: FaultProxy, sent_gets: list[dict[str, str]], cut: int
) -> None:
    url = s3_env.put("cut.tfrecord", FILE)
    etag = s3_env.client.head_object(Bucket=s3_env.bucket, Key="cut.tfrecord")["ETag"]
    s3_proxy.add_rule(Fault.close_after(cut), method="GET", key="cut.tfrecord", window=(0, 1), times=1)
    config = S3Config.from_env(block_size=FIRST, read_ahead=0, backoff_base=0.001)
    with s3_files.open_s3_stream(url, config=config) as stream:
        assert stream.readall() == FILE
        assert stream.retries == 1
    first, retry, *_ = sent_gets
    assert first["Range"] == f"bytes=0-{FIRST - 1}"
    assert "If-Match" not in first
    assert retry["Range"] == f"bytes={cut}-{FIRST - 1}"  # from the next byte, in the first block
    assert retry["If-Match"] == etag


def test_a_first_get_that_stalls_resumes_pinned_to_its_etag(
    s3_env: S3Env, s3_proxy: FaultProxy, sent_gets: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "300")
    url = s3_env.put("stall.tfrecord", FILE)
    s3_proxy.add_rule(Fault.stall(1.5, after=200), method="GET", key="stall.tfrecord", window=(0, 1), times=1)
    config = S3Config.from_env(block_size=FIRST, read_ahead=0, backoff_base=0.001)
    assert list(open_records(url, config=config)) == RECORDS
    assert sent_gets[1]["Range"] == f"bytes=200-{FIRST - 1}"
    assert "If-Match" in sent_gets[1]


def test_an_unknown_profile_at_the_first_get_is_a_config_error_not_a_cut_reply(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = s3_env.put("profile.tfrecord", FILE)
    config = tmp_path / "config"
    config.write_text("[profile training]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    s3_client.clear_client_cache()
    with pytest.raises(tfr.ConfigError, match="AWS_PROFILE='nosuch': no such profile"):
        open_records(url)  # at once: no retries of a client that cannot be built


def test_an_endpoint_never_heard_from_fails_at_once_with_the_heads_message(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first GET finds nothing listening where no server ever answered: no retries, and
    # the error is the HEAD's (what an open said before), naming the endpoint.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{port}")
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    s3_client.clear_client_cache()
    url = s3_env.url("anything.tfrecord")
    with pytest.raises(tfr.StorageError) as by_stat:
        tfr.stat(url)
    with pytest.raises(tfr.StorageError) as by_open:
        open_records(url)
    assert str(by_open.value) == str(by_stat.value)
    assert f"cannot connect to http://127.0.0.1:{port}" in str(by_open.value)
