"""S3_TRANSPORT=crt: the ranged GETs over the AWS Common Runtime give the bytes the urllib3
path gives, and every fault the same typed error (path, byte offset), on every S3 server."""

from __future__ import annotations

import hashlib
import os
import select
import sys
import threading
from typing import Any

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.waiting import wait_until
from tfrecord_s3.config import S3Config
from tfrecord_s3.errors import AccessDeniedError, ConfigError, ObjectChangedError, ObjectNotFoundError
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client
from tfrecord_s3.storage.s3_files import open_s3, open_s3_stream, range_reader
from tfrecord_s3.storage.s3_path import S3Path

KiB = 1024
# Small blocks and parts, so a few hundred KiB take many GETs and many CRT parts each.
BLOCK = 96 * KiB
PART = 32 * KiB
SIZE = 5 * BLOCK + 777


def _data(size: int = SIZE) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:size])


@pytest.fixture
def crt(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The crt_reader module with small parts; skips, saying why, without awscrt."""
    pytest.importorskip("awscrt", reason='the crt transport needs awscrt: pip install "tfrecord-s3[crt]"')
    from tfrecord_s3.storage import crt_reader

    monkeypatch.setattr(crt_reader, "PART_SIZE", PART)
    return crt_reader


def _config(transport: str, **changes: Any) -> S3Config:
    return S3Config.from_env(transport=transport, block_size=BLOCK, first_block_size=16 * KiB, **changes)


def test_bytes_are_those_of_the_urllib3_path(s3_env: S3Env, crt: Any) -> None:
    data = _data()
    url = s3_env.put("crt/blob.bin", data)
    seen = {}
    for transport in ("urllib3", "crt"):
        with open_s3(url, config=_config(transport)) as stream:
            assert type(stream.raw._reader).__name__ == ("CrtRangeReader" if transport == "crt" else "S3RangeReader")
            seen[transport] = stream.read()
            counters = stream.raw.counters()
        assert counters.bytes_received == len(data)
        assert counters.retries == 0
    assert seen["crt"] == seen["urllib3"] == data


def test_records_through_s3_transport_variable(s3_env: S3Env, crt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [f"record {i} ".encode() * (1 + i % 50) for i in range(3000)]
    url = s3_env.put("crt/data.tfrecord", b"".join(encode_frame(r) for r in records))
    monkeypatch.setenv("S3_TRANSPORT", "crt")
    assert S3Config.from_env().transport == "crt"
    with open_s3_stream(url) as stream:
        assert type(stream._reader).__name__ == "CrtRangeReader"
    assert list(tfr.tf_record_iterator(url)) == records
    dataset = tfr.TFRecordDataset([url, url], num_parallel_reads=2)
    assert sorted(bytes(r) for r in dataset) == sorted(records * 2)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (0, SIZE), (SIZE - 1, SIZE), (PART - 1, PART + 1), (123, 123 + 3 * PART + 5), (BLOCK, 2 * BLOCK)],
)
def test_ranged_reads(s3_env: S3Env, crt: Any, start: int, end: int) -> None:
    data = _data()
    s3_env.put("crt/ranges.bin", data)
    reader = range_reader(S3Path(s3_env.bucket, "crt/ranges.bin"), _config("crt"))
    assert isinstance(reader, crt.CrtRangeReader)
    assert reader.read_range(start, end) == data[start:end]
    assert b"".join(reader.iter_range(start, end)) == data[start:end]
    out = bytearray(end - start)
    counts = list(reader.readinto_range(start, end, memoryview(out)))
    assert bytes(out) == data[start:end]
    assert sum(counts) == end - start
    assert all(count > 0 for count in counts)
    with pytest.raises(ValueError, match="outside"):
        reader.read_range(start, SIZE + 1)


def test_seeks_read_the_right_bytes(s3_env: S3Env, crt: Any) -> None:
    data = _data()
    url = s3_env.put("crt/seek.bin", data)
    with open_s3(url, config=_config("crt")) as stream:
        for offset in (SIZE - 10, 5, 3 * BLOCK - 3, 0):
            stream.seek(offset)
            assert stream.read(300) == data[offset : offset + 300]


def test_key_deleted_after_listing_is_not_found_at_its_offset(s3_env: S3Env, crt: Any) -> None:
    # A listed object is opened without a HEAD: the CRT's GET is the first request.
    s3_env.put("crt/gone.bin", _data())
    (listed,) = tfr.glob(s3_env.url("crt/gone*"))
    s3_env.client.delete_object(Bucket=s3_env.bucket, Key="crt/gone.bin")
    with pytest.raises(ObjectNotFoundError) as caught, open_s3(listed, config=_config("crt")) as stream:
        stream.read()
    assert caught.value.path == listed
    assert str(caught.value).startswith(f"read {listed} at byte 0: ")


def test_key_missing_at_open(s3_env: S3Env, crt: Any) -> None:
    with pytest.raises(ObjectNotFoundError, match="not found"):
        open_s3(s3_env.url("crt/never-written"), config=_config("crt"))


def test_object_rewritten_after_listing_is_object_changed(s3_env: S3Env, crt: Any) -> None:
    s3_env.put("crt/changing.bin", _data())
    (listed,) = tfr.glob(s3_env.url("crt/changing*"))
    s3_env.put("crt/changing.bin", _data()[::-1])
    with pytest.raises(ObjectChangedError) as caught, open_s3(listed, config=_config("crt")) as stream:
        stream.read()
    assert caught.value.path == listed
    assert "changed while it was being read" in str(caught.value)


@pytest.mark.servers("swift", "rgw", reason="moto does not check signatures")
def test_wrong_secret_is_access_denied(s3_env: S3Env, crt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_env.put("crt/secret.bin", _data())
    (listed,) = tfr.glob(s3_env.url("crt/secret*"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    s3_client.clear_client_cache()  # the chain is walked again: the CRT signs with the new secret
    with pytest.raises(AccessDeniedError) as caught, open_s3(listed, config=_config("crt")) as stream:
        stream.read()
    message = str(caught.value)
    assert message.startswith(f"read {listed} at byte 0: ")
    assert "not-the-secret" not in message


def test_no_credentials_is_access_denied(s3_env: S3Env, crt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_env.put("crt/anon.bin", _data())
    (listed,) = tfr.glob(s3_env.url("crt/anon*"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    s3_client.clear_client_cache()
    with (
        pytest.raises(AccessDeniedError, match="no AWS credentials found"),
        open_s3(listed, config=_config("crt")) as stream,
    ):
        stream.read()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.reset_after(5000), id="reset-mid-body"),
        pytest.param(Fault.close_after(10 * KiB), id="close-mid-body"),
        pytest.param(Fault.reset_before_headers(), id="reset-before-headers"),
        pytest.param(Fault.slow_down(), id="503-slowdown"),
        pytest.param(Fault.internal_error(), id="500"),
        pytest.param(Fault.expired_token(), id="expired-token"),
        pytest.param(Fault.stall(3.0, after=100), id="stall-past-read-timeout"),
    ],
)
def test_faults_are_retried_to_identical_bytes(s3_env: S3Env, crt: Any, s3_proxy: FaultProxy, fault: Fault) -> None:
    data = _data()
    url = s3_env.put("crt/faulty.bin", data)
    # Hedging off: a stall would otherwise be raced by a hedge instead of retried (test_hedging).
    config = _config("crt", backoff_base=0.01, throttle_backoff_base=0.01, hedge_after=None)
    with open_s3(url, config=config) as stream:
        assert stream.read() == data
        clean = stream.raw.counters()
    rule = s3_proxy.add_rule(fault, method="GET", key="crt/faulty.bin", nth=2)
    with open_s3(url, config=config) as stream:
        assert stream.read() == data
        counters = stream.raw.counters()
    # One more GET than without the fault (an expired token is refreshed, not counted a retry).
    assert counters.requests == clean.requests + 1
    assert counters.retries == (0 if fault == Fault.expired_token() else 1)
    assert counters.bytes_received == len(data)
    assert s3_proxy.rule_counts(rule)[1] == 1


def test_tls_with_the_ca_file(s3_env: S3Env, crt: Any, tls_front: Any, tls_certificates: Any) -> None:
    data = _data()
    url = s3_env.put("crt/tls.bin", data)
    config = _config("crt", ca_file=str(tls_certificates.ca_file))
    assert config.endpoint_url is not None
    assert config.endpoint_url.startswith("https://")
    with open_s3(url, config=config) as stream:
        assert stream.read() == data
    assert tls_front.handshake_failures == 0


def test_missing_awscrt_says_what_to_install(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    url = s3_env.put("crt/any.bin", b"x")
    for name in [name for name in sys.modules if name == "awscrt" or name.startswith("awscrt.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "awscrt", None)  # what `import awscrt` meets when it is absent
    with pytest.raises(ConfigError, match=r'pip install "tfrecord-s3\[crt\]"'):
        open_s3(url, config=S3Config.from_env(transport="crt"))


def test_s3_transport_is_validated() -> None:
    assert S3Config.from_env({}).transport == "urllib3"
    assert S3Config.from_env({"S3_TRANSPORT": " CRT "}).transport == "crt"
    with pytest.raises(ConfigError, match="S3_TRANSPORT='curl'"):
        S3Config.from_env({"S3_TRANSPORT": "curl"})
    with pytest.raises(ConfigError, match=r"S3Config\.transport"):
        S3Config(transport="curl")


def test_a_forked_child_reads_with_its_own_crt_client(s3_env: S3Env, crt: Any) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    data = _data()
    url = s3_env.put("crt/fork.bin", data)
    with open_s3(url, config=_config("crt")) as stream:  # the parent's CRT client exists now
        assert stream.read() == data
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        ok = b"0"
        try:
            with open_s3(url, config=_config("crt")) as stream:
                ok = b"1" if stream.read() == data else b"0"
        finally:
            os.write(write, ok)
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 120)
        assert ready, "the forked child did not answer within 120 s"
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.wrong_content_range(), id="wrong-content-range"),
        pytest.param(Fault.partial_200(), id="partial-200"),
        pytest.param(
            Fault.full_200(), id="full-200", marks=pytest.mark.servers("moto", reason="it rewrites a signed header")
        ),
    ],
)
def test_a_reply_for_the_wrong_bytes_is_never_used(s3_env: S3Env, crt: Any, s3_proxy: FaultProxy, fault: Fault) -> None:
    data = _data()
    url = s3_env.put("crt/wrong.bin", data)
    s3_proxy.add_rule(fault, method="GET", key="crt/wrong.bin", window=(BLOCK, BLOCK + 1), times=None)
    config = _config("crt", read_ahead=0, backoff_base=0.01)
    got = bytearray()
    with pytest.raises(tfr.StorageError) as caught, open_s3(url, config=config) as stream:
        while chunk := stream.read(4096):
            got += chunk
    assert bytes(got) == data[: len(got)]  # nothing from the bad reply
    assert len(got) <= BLOCK
    assert isinstance(caught.value, tfr.ResponseError)  # at once: a wrong reply is not retried
    assert str(caught.value).startswith(f"read {url} at byte {BLOCK}: ")


def test_closing_a_dataset_cancels_a_stalled_crt_get(
    s3_env: S3Env, crt: Any, s3_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_TRANSPORT", "crt")
    # A read timeout longer than the test: only cancelling the GET ends it.
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "120000")
    first = s3_env.put("crt/close-a.tfrecord", b"".join(encode_frame(b"a%d" % i) for i in range(10)))
    second = s3_env.put("crt/close-b.tfrecord", b"".join(encode_frame(b"b%d" % i) for i in range(10)))
    s3_proxy.add_rule(Fault.stall(120, after=3), method="GET", key="crt/close-b.tfrecord")
    it = iter(tfr.TFRecordDataset([first, second], num_parallel_reads=2))
    assert next(it) == b"a0"
    assert wait_until(lambda: bool(s3_proxy.requests(method="GET", key="crt/close-b.tfrecord")))
    assert _prefetch_threads()
    it.close()  # type: ignore[attr-defined]
    # close() joins its readers for at most 2 s: a reader still waiting on its GET would be left.
    assert _prefetch_threads() == []


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tfrecord-s3 prefetch")]
