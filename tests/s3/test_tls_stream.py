"""The stream over HTTPS (a TLS front with a test CA, in front of the fault proxy): the TLS
fast path drains records straight into the block buffer, and still resumes a cut or stalled
body at the exact byte, tells a slow trickle from a stall, honours the stall budget and ends
a stalled GET at once when the stream is closed."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.servers.tls import Certificates, TlsFront
from tests.waiting import wait_until
from tfrecord_s3.config import S3Config
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client, s3_files

pytestmark = pytest.mark.servers("moto", reason="TLS is the client's side: one server shows it")

KiB = 1024
BLOCK = 256 * KiB
KEY = "tls-fast.bin"
DATA = random.Random(13).randbytes(3 * BLOCK + 4321)


@pytest.fixture
def tls_proxy(
    s3_proxy: FaultProxy, tls_certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultProxy]:
    """TLS from the client to a front, plain HTTP from there through the fault proxy."""
    front = TlsFront(("127.0.0.1", s3_proxy.port), tls_certificates).start()
    monkeypatch.setenv("S3_ENDPOINT", front.host_port)
    monkeypatch.setenv("S3_USE_HTTPS", "1")
    monkeypatch.setenv("S3_CA_FILE", str(tls_certificates.ca_file))
    s3_client.clear_client_cache()
    try:
        yield s3_proxy
    finally:
        s3_client.clear_client_cache()
        front.stop()
    assert front.handshake_failures == 0


@pytest.fixture
def url(s3_env: S3Env) -> str:
    return s3_env.put(KEY, DATA)


def config(**changes: object) -> S3Config:
    options: dict[str, object] = {"block_size": BLOCK, "read_ahead": 0, "backoff_base": 0.001, "max_attempts": 4}
    options.update(changes)
    return S3Config.from_env(**options)


def test_every_block_arrives_over_one_tls_connection(url: str, tls_proxy: FaultProxy) -> None:
    with s3_files.open_s3_stream(url, config=config()) as stream:
        assert stream.readall() == DATA
        assert stream.retries == 0
    tls_proxy.wait_idle()
    gets = tls_proxy.requests(method="GET", key=KEY)
    assert len(gets) == 4
    assert len({r.conn for r in gets}) == 1  # each body read to its end: the connection is reused


@pytest.mark.parametrize("cut", [100, 16 * KiB + 5, 100 * KiB, BLOCK - 1])
def test_a_body_cut_over_tls_resumes_at_the_exact_byte(url: str, tls_proxy: FaultProxy, cut: int) -> None:
    tls_proxy.add_rule(Fault.close_after(cut), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    with s3_files.open_s3_stream(url, config=config()) as stream:
        assert stream.readall() == DATA
        counters = stream.counters()
    tls_proxy.wait_idle()
    assert f"bytes={BLOCK + cut}-{2 * BLOCK - 1}" in [r.range_header for r in tls_proxy.requests(method="GET")]
    assert counters.retries == 1
    assert counters.bytes_received == len(DATA)
    assert tls_proxy.bytes_sent(key=KEY) == len(DATA)  # not one byte sent twice


def test_a_stall_over_tls_resumes_at_the_exact_byte(
    url: str, tls_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "300")
    tls_proxy.add_rule(Fault.stall(1.5, after=40_000), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    with s3_files.open_s3_stream(url, config=config()) as stream:
        assert stream.readall() == DATA
        assert stream.retries == 1
        assert stream.counters().bytes_received == len(DATA)
    tls_proxy.wait_idle()
    assert f"bytes={BLOCK + 40_000}-{2 * BLOCK - 1}" in [r.range_header for r in tls_proxy.requests(method="GET")]


def test_a_slow_trickle_over_tls_is_not_a_stall(
    url: str, tls_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 500 bytes every 20 ms against a 2 s read timeout: fewer bytes than the low-water mark
    # arrive within it, and partial TLS records too, but bytes do arrive.
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "2000")
    tls_proxy.add_rule(Fault.drip(500, 0.02, after=1000), method="GET", key=KEY, window=(0, 1))
    with s3_files.open_s3_stream(url, config=config(block_size=64 * KiB)) as stream:
        assert stream.read(64 * KiB) == DATA[: 64 * KiB]
        assert stream.retries == 0


def test_the_stall_budget_holds_over_tls(s3_env: S3Env, tls_proxy: FaultProxy) -> None:
    records = [b"record %d " % i * 40 for i in range(300)]
    url = s3_env.put("frozen-tls.tfrecord", b"".join(encode_frame(r) for r in records))
    tls_proxy.add_rule(Fault.stall(120, after=1000), method="GET", key="frozen-tls")
    tls_proxy.add_rule(Fault.stall(120), method="GET", key="frozen-tls", times=None)
    cfg = S3Config.from_env(read_timeout=1.0, stall_budget=2.0, max_attempts=30, read_ahead=0, backoff_base=0.01)
    began = time.monotonic()
    with pytest.raises(tfr.RetriesExhaustedError, match="stall budget") as caught:
        list(tfr.open_records(url, config=cfg))
    assert time.monotonic() - began < 15
    assert caught.value.offset == 1000
    assert caught.value.path == url


def test_closing_ends_a_get_stalled_over_tls_at_once(
    url: str, tls_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "120000")  # only breaking the connection ends it
    tls_proxy.add_rule(Fault.stall(120, after=20_000), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    stream = s3_files.open_s3_stream(url, config=config(read_ahead=1))
    assert stream.read(BLOCK) == DATA[:BLOCK]  # the next block is now fetched ahead, and stalls
    assert wait_until(lambda: len(tls_proxy.requests(method="GET", key=KEY)) >= 2)
    closer = threading.Thread(target=stream.close)
    began = time.monotonic()
    closer.start()
    closer.join(30)
    assert not closer.is_alive()
    assert time.monotonic() - began < 20
    assert stream.closed
