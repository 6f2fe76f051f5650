"""The fault proxy, checked on the wire: each fault really happens, exactly where asked,
between plain clients (boto3 with retries off, or a raw socket) and a real moto server."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from tests.faults.conftest import plain_s3_client
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault, default_storm_faults
from tests.waiting import wait_until

DATA = bytes((i * 7 + i // 256) % 256 for i in range(10_000))


@pytest.fixture
def key(request: pytest.FixtureRequest, fault_upstream_url: str, fault_bucket: str) -> Iterator[str]:
    """A fresh object holding DATA, named after the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    direct = plain_s3_client(fault_upstream_url)
    direct.put_object(Bucket=fault_bucket, Key=name, Body=DATA)
    yield name
    direct.close()


@pytest.fixture
def s3(fault_proxy: FaultProxy) -> Iterator[Any]:
    client = plain_s3_client(fault_proxy.endpoint_url, timeout=2.0)
    yield client
    client.close()


@dataclass
class RawResponse:
    head: str
    body: bytes
    ending: str  # "complete" (Content-Length reached), "eof", "reset" or "timeout"

    @property
    def status(self) -> int:
        return int(self.head.split(" ", 2)[1])

    def header(self, name: str) -> str | None:
        m = re.search(rf"^{name}: *(.*?)\r$", self.head, re.IGNORECASE | re.MULTILINE)
        return m.group(1) if m else None


def raw_request(
    proxy: FaultProxy,
    s3: Any,
    bucket: str,
    key: str,
    *,
    method: str = "GET",
    range_header: str | None = None,
    timeout: float = 2.0,
) -> RawResponse:
    """One presigned request on a raw socket, read until the body is complete or the
    connection ends, so RST and FIN are told apart."""
    op = "head_object" if method == "HEAD" else "get_object"
    url = urlsplit(s3.generate_presigned_url(op, Params={"Bucket": bucket, "Key": key}))
    lines = [f"{method} {url.path}?{url.query} HTTP/1.1", f"Host: {url.netloc}"]
    if range_header:
        lines.append(f"Range: {range_header}")
    with socket.create_connection(proxy.address, timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        ending = "eof"
        expected: int | None = None
        try:
            while True:
                if expected is None and b"\r\n\r\n" in buf:
                    head = buf.split(b"\r\n\r\n", 1)[0].decode()
                    m = re.search(r"^content-length: *(\d+)", head, re.IGNORECASE | re.MULTILINE)
                    expected = len(head) + 4 + (0 if method == "HEAD" else int(m.group(1)) if m else 1 << 40)
                if expected is not None and len(buf) >= expected:
                    ending = "complete"
                    break
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
        except ConnectionResetError:
            ending = "reset"
        except TimeoutError:
            ending = "timeout"
    head_bytes, _, body = buf.partition(b"\r\n\r\n")
    return RawResponse(head_bytes.decode("latin-1"), body, ending)


def read_all(body: Any) -> tuple[bytes, Exception | None]:
    got = b""
    try:
        while chunk := body.read(1000):
            got += chunk
    except Exception as exc:  # the error class is what the test asserts on
        return got, exc
    return got, None


# ---- plain forwarding ------------------------------------------------------------------


def test_forwards_requests_unchanged_on_one_keep_alive_connection(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str
) -> None:
    ranged = s3.get_object(Bucket=fault_bucket, Key=key, Range="bytes=100-1099")
    assert ranged["Body"].read() == DATA[100:1100]
    assert ranged["ContentRange"] == f"bytes 100-1099/{len(DATA)}"
    s3.put_object(Bucket=fault_bucket, Key=key + ".copy", Body=DATA[:3000])
    assert s3.head_object(Bucket=fault_bucket, Key=key + ".copy")["ContentLength"] == 3000
    assert s3.get_object(Bucket=fault_bucket, Key=key + ".copy")["Body"].read() == DATA[:3000]

    assert fault_proxy.wait_idle()
    log = fault_proxy.requests()
    assert [(e.method, e.status, e.body_bytes, e.complete) for e in log] == [
        ("GET", 206, 1000, True),
        ("PUT", 200, 0, True),
        ("HEAD", 200, 0, True),
        ("GET", 200, 3000, True),
    ]
    assert log[0].range_header == "bytes=100-1099"
    assert log[2].content_length == 3000
    assert {e.conn for e in log} == {1}  # moto closes each connection; the proxy keeps the client's
    assert all(e.fault is None for e in log)
    assert fault_proxy.bytes_sent(key=key) == 4000


def test_put_with_expect_100_continue(fault_proxy: FaultProxy, s3: Any, fault_bucket: str) -> None:
    url = urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": fault_bucket, "Key": "expect"}))
    body = DATA[:5000]
    with socket.create_connection(fault_proxy.address, timeout=2) as sock:
        sock.sendall(
            f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    assert s3.get_object(Bucket=fault_bucket, Key="expect")["Body"].read() == body


def test_put_with_chunked_body_is_forwarded_as_framed(fault_proxy: FaultProxy, s3: Any, fault_bucket: str) -> None:
    url = urlsplit(s3.generate_presigned_url("put_object", Params={"Bucket": fault_bucket, "Key": "chunked"}))
    body = DATA[:3000]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:1000], body[1000:]))
    with socket.create_connection(fault_proxy.address, timeout=2) as sock:
        sock.sendall(
            f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + chunks
            + b"0\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    assert s3.get_object(Bucket=fault_bucket, Key="chunked")["Body"].read() == body


# ---- connection faults -----------------------------------------------------------------


def test_reset_before_headers_sends_nothing_and_forwards_nothing(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.reset_before_headers(), method="PUT")
    with pytest.raises(ConnectionClosedError):
        s3.put_object(Bucket=fault_bucket, Key=key + ".never", Body=b"x" * 100)
    with pytest.raises(ClientError, match="404"):  # the PUT never reached the server
        s3.head_object(Bucket=fault_bucket, Key=key + ".never")
    s3.put_object(Bucket=fault_bucket, Key=key + ".later", Body=b"y")  # the rule fired once
    assert fault_proxy.wait_idle()
    put = fault_proxy.requests(method="PUT")
    assert [(e.fault, e.status, e.upstream_status, e.body_bytes) for e in put] == [
        ("reset_before_headers", None, None, 0),
        (None, 200, 200, 0),
    ]


@pytest.mark.parametrize("n", [0, 1, 777, len(DATA) - 1])
def test_reset_after_n_body_bytes_is_an_rst_after_exactly_n(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str, n: int
) -> None:
    fault_proxy.add_rule(Fault.reset_after(n), method="GET", key=key)
    response = raw_request(fault_proxy, s3, fault_bucket, key)
    assert response.status == 200
    assert response.header("Content-Length") == str(len(DATA))
    assert response.ending == "reset"
    assert response.body == DATA[:n]
    assert fault_proxy.wait_idle()
    (entry,) = fault_proxy.requests(method="GET")
    assert (entry.body_bytes, entry.complete, entry.fault) == (n, False, f"reset_after({n})")


def test_close_after_n_body_bytes_is_a_clean_short_body(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.close_after(1234), method="GET")
    response = raw_request(fault_proxy, s3, fault_bucket, key, range_header="bytes=1000-4999")
    assert (response.status, response.header("Content-Length")) == (206, "4000")
    assert response.ending == "eof"
    assert response.body == DATA[1000:2234]


def test_boto3_sees_reset_and_short_body_mid_stream(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.reset_after(3000), method="GET", nth=1)
    fault_proxy.add_rule(Fault.close_after(5000), method="GET", nth=2)
    got, exc = read_all(s3.get_object(Bucket=fault_bucket, Key=key)["Body"])
    assert got == DATA[:3000]
    assert isinstance(exc, ResponseStreamingError)
    assert "reset" in str(exc).lower()
    got, exc = read_all(s3.get_object(Bucket=fault_bucket, Key=key)["Body"])
    assert got == DATA[:5000]
    assert exc is not None
    assert "5000" in str(exc)
    assert s3.get_object(Bucket=fault_bucket, Key=key)["Body"].read() == DATA


def test_absolute_reset_offset_fires_on_the_response_carrying_that_byte(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str
) -> None:
    fault_proxy.add_rule(Fault.reset_after(6500, absolute=True), method="GET")
    blocks = [(start, min(start + 4096, len(DATA)) - 1) for start in range(0, len(DATA), 4096)]
    results = [raw_request(fault_proxy, s3, fault_bucket, key, range_header=f"bytes={a}-{b}") for a, b in blocks]
    assert [r.ending for r in results] == ["complete", "reset", "complete"]
    assert results[1].body == DATA[4096:6500]
    assert fault_proxy.wait_idle()
    assert [e.fault for e in fault_proxy.requests(faulted=True)] == ["reset_after(@6500)"]


# ---- slow faults -----------------------------------------------------------------------


def test_stall_before_headers_times_the_client_out_and_shorter_one_passes(
    fault_proxy: FaultProxy, fault_bucket: str, key: str
) -> None:
    impatient = plain_s3_client(fault_proxy.endpoint_url, timeout=0.3)
    fault_proxy.add_rule(Fault.stall(3.0), method="GET", nth=1)
    fault_proxy.add_rule(Fault.stall(0.15), method="GET", nth=2)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        impatient.get_object(Bucket=fault_bucket, Key=key)
    assert 0.25 < time.monotonic() - started < 2.0  # the timeout, not the 3 s stall
    started = time.monotonic()
    assert impatient.get_object(Bucket=fault_bucket, Key=key)["Body"].read() == DATA
    assert time.monotonic() - started >= 0.15
    impatient.close()


def test_stall_after_n_bytes_then_carries_on(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    fault_proxy.add_rule(Fault.stall(3.0, after=2048), method="GET", nth=1)
    fault_proxy.add_rule(Fault.stall(0.1, after=2048), method="GET", nth=2)
    response = raw_request(fault_proxy, s3, fault_bucket, key, timeout=0.3)
    assert (response.ending, response.body) == ("timeout", DATA[:2048])
    started = time.monotonic()
    response = raw_request(fault_proxy, s3, fault_bucket, key, timeout=0.5)
    assert (response.ending, response.body) == ("complete", DATA)
    assert time.monotonic() - started >= 0.1


def test_drip_sends_the_body_slowly_and_intact(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    fault_proxy.add_rule(Fault.drip(100, 0.01, after=200), method="GET")
    started = time.monotonic()
    response = raw_request(fault_proxy, s3, fault_bucket, key, range_header="bytes=0-1199")
    assert (response.ending, response.body) == ("complete", DATA[:1200])
    assert time.monotonic() - started >= 9 * 0.01  # 1000 dripped bytes, 100 at a time


# ---- body and header corruption ----------------------------------------------------------


def test_flip_bit_changes_exactly_that_bit(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    fault_proxy.add_rule(Fault.flip_bit(500, bit=3), method="GET", nth=1)
    fault_proxy.add_rule(Fault.flip_bit(1500, bit=7, absolute=True), method="GET")
    body = s3.get_object(Bucket=fault_bucket, Key=key, Range="bytes=0-999")["Body"].read()
    assert [(i, a ^ b) for i, (a, b) in enumerate(zip(body, DATA[:1000], strict=True)) if a != b] == [(500, 0x08)]
    untouched = s3.get_object(Bucket=fault_bucket, Key=key, Range="bytes=2000-2999")["Body"].read()
    assert untouched == DATA[2000:3000]  # the absolute rule's window: byte 1500 not in it
    body = s3.get_object(Bucket=fault_bucket, Key=key, Range="bytes=1000-1999")["Body"].read()
    assert [(i, a ^ b) for i, (a, b) in enumerate(zip(body, DATA[1000:2000], strict=True)) if a != b] == [(500, 0x80)]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault.internal_error(), 500, "InternalError"),
        (Fault.slow_down(), 503, "SlowDown"),
        (Fault.expired_token(), 403, "ExpiredToken"),
        (Fault.access_denied(), 403, "AccessDenied"),
    ],
)
def test_s3_error_answers(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str, fault: Fault, status: int, code: str
) -> None:
    fault_proxy.add_rule(fault, method="GET", times=None)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=fault_bucket, Key=key)
    error = info.value.response
    assert error["Error"]["Code"] == code
    assert error["Error"]["Message"] == fault.message
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error["ResponseMetadata"]["RequestId"].startswith("FAULTPROXY")
    assert s3.head_object(Bucket=fault_bucket, Key=key)["ContentLength"] == len(DATA)  # not a HEAD rule
    with pytest.raises(ClientError):  # times=None: every GET, on the same kept-alive connection
        s3.get_object(Bucket=fault_bucket, Key=key)
    assert fault_proxy.wait_idle()
    assert [(e.status, e.upstream_status) for e in fault_proxy.requests(method="GET")] == [(status, None)] * 2
    assert len({e.conn for e in fault_proxy.requests()}) == 1


def test_error_answer_to_head_has_no_body(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    fault_proxy.add_rule(Fault.slow_down(), method="HEAD")
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=fault_bucket, Key=key)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.head_object(Bucket=fault_bucket, Key=key)["ContentLength"] == len(DATA)  # connection still in sync


def test_200_instead_of_206_both_variants(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    fault_proxy.add_rule(Fault.full_200(), method="GET", nth=1)
    fault_proxy.add_rule(Fault.partial_200(), method="GET", nth=2)
    full = raw_request(fault_proxy, s3, fault_bucket, key, range_header="bytes=100-199")
    assert (full.status, full.header("Content-Range"), full.body) == (200, None, DATA)
    partial = raw_request(fault_proxy, s3, fault_bucket, key, range_header="bytes=100-199")
    assert (partial.status, partial.header("Content-Range"), partial.body) == (200, None, DATA[100:200])
    assert fault_proxy.wait_idle()
    assert [(e.upstream_status, e.status, e.body_bytes) for e in fault_proxy.requests()] == [
        (200, 200, len(DATA)),
        (206, 200, 100),
    ]


def test_wrong_content_range(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    fault_proxy.add_rule(Fault.wrong_content_range(), method="GET", nth=1)
    fault_proxy.add_rule(Fault.wrong_content_range("bytes 0-99/99999"), method="GET", nth=2)
    shifted = s3.get_object(Bucket=fault_bucket, Key=key, Range="bytes=100-199")
    assert shifted["ContentRange"] == f"bytes 101-200/{len(DATA)}"
    assert shifted["Body"].read() == DATA[100:200]  # the body is the real one
    literal = s3.get_object(Bucket=fault_bucket, Key=key, Range="bytes=100-199")
    assert literal["ContentRange"] == "bytes 0-99/99999"
    assert [e.content_range for e in fault_proxy.requests()] == [f"bytes 101-200/{len(DATA)}", "bytes 0-99/99999"]


# ---- scheduling ------------------------------------------------------------------------


def test_nth_next_n_and_every_request(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    third = fault_proxy.add_rule(Fault.internal_error(), method="GET", key=key, nth=3)
    for _ in range(5):
        with pytest.raises(ClientError) if len(fault_proxy.requests()) == 2 else contextlib.nullcontext():
            s3.get_object(Bucket=fault_bucket, Key=key, Range="bytes=0-9")
    assert fault_proxy.rule_counts(third) == (5, 1)
    assert [e.status for e in fault_proxy.requests()] == [206, 206, 500, 206, 206]

    fault_proxy.clear_rules()
    fault_proxy.clear_log()
    fault_proxy.add_rule(Fault.slow_down(), method="GET", times=2)
    statuses = [_get_status(s3, fault_bucket, key) for _ in range(4)]
    assert statuses == [503, 503, 206, 206]

    fault_proxy.clear_rules()
    always = fault_proxy.add_rule(Fault.internal_error(), key_regex=rf"/{re.escape(key)}$", times=None)
    assert [_get_status(s3, fault_bucket, key) for _ in range(3)] == [500, 500, 500]
    fault_proxy.remove_rule(always)
    assert _get_status(s3, fault_bucket, key) == 206


def test_rules_filter_by_method_key_and_window(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str, fault_upstream_url: str
) -> None:
    plain_s3_client(fault_upstream_url).put_object(Bucket=fault_bucket, Key=key + "-other", Body=DATA)
    fault_proxy.add_rule(Fault.internal_error(), method="GET", key=key + "-other", times=None)
    fault_proxy.add_rule(Fault.slow_down(), window=(5000, 5001), times=None)
    assert _get_status(s3, fault_bucket, key, "bytes=0-4999") == 206
    assert _get_status(s3, fault_bucket, key, "bytes=5000-5999") == 503
    assert _get_status(s3, fault_bucket, key, "bytes=4000-") == 503
    assert _get_status(s3, fault_bucket, key, "bytes=5001-9999") == 206
    assert _get_status(s3, fault_bucket, key + "-other", "bytes=0-9") == 500
    assert s3.head_object(Bucket=fault_bucket, Key=key + "-other")["ContentLength"] == len(DATA)


def test_an_earlier_rule_wins_and_the_later_fires_next_time(
    fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str
) -> None:
    first = fault_proxy.add_rule(Fault.internal_error(), method="GET", nth=1)
    second = fault_proxy.add_rule(Fault.slow_down(), method="GET", nth=1)
    assert [_get_status(s3, fault_bucket, key) for _ in range(3)] == [500, 503, 206]
    assert fault_proxy.rule_counts(first) == (3, 1)
    assert fault_proxy.rule_counts(second) == (2, 1)


def test_rules_change_while_requests_are_in_flight(fault_proxy: FaultProxy, fault_bucket: str, key: str) -> None:
    fault_proxy.add_rule(Fault.drip(1000, 0.01), method="GET", times=None)

    def fetch(_: int) -> int:
        client = plain_s3_client(fault_proxy.endpoint_url)
        try:
            return len(client.get_object(Bucket=fault_bucket, Key=key)["Body"].read())
        except ClientError as exc:
            return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
        finally:
            client.close()

    with ThreadPoolExecutor(4) as pool:
        results = pool.map(fetch, range(8))
        # The first requests have been read (and given the drip) before the rules change.
        assert wait_until(lambda: bool(fault_proxy.requests(method="GET")))
        fault_proxy.add_rule(Fault.slow_down(), method="GET", times=None)
        fault_proxy.clear_rules()
        fault_proxy.add_rule(Fault.internal_error(), method="GET", times=None)
        outcomes = list(results)
    assert set(outcomes) <= {len(DATA), 500, 503}
    assert outcomes.count(len(DATA)) >= 1  # the early ones were dripped through intact
    assert fault_proxy.wait_idle()
    assert len(fault_proxy.requests(method="GET")) == 8


# ---- storm ---------------------------------------------------------------------------


def _storm_run(upstream: str, bucket: str, key: str, seed: int, *, parallel: bool) -> set[tuple[str, str]]:
    with FaultProxy(upstream) as proxy:
        storm = proxy.start_storm(seed, 0.3, default_storm_faults(max_offset=500))
        ranges = [f"bytes={a}-{a + 499}" for a in range(0, 10_000, 500)]

        client = plain_s3_client(proxy.endpoint_url)  # boto3 clients are thread-safe

        def fetch(r: str) -> None:
            try:
                read_all(client.get_object(Bucket=bucket, Key=key, Range=r)["Body"])
            except (ClientError, ConnectionClosedError):
                pass

        if parallel:
            with ThreadPoolExecutor(6) as pool:
                list(pool.map(fetch, ranges))
        else:
            for r in ranges:
                fetch(r)
        client.close()
        assert proxy.wait_idle()
        faulted = {(e.range_header or "", e.fault or "") for e in proxy.requests(faulted=True)}
        assert len(faulted) == storm.injected
        assert all(e.fault_source == "storm" for e in proxy.requests(faulted=True))
        return faulted


def test_storm_is_seeded_and_independent_of_interleaving(fault_upstream_url: str, fault_bucket: str, key: str) -> None:
    sequential = _storm_run(fault_upstream_url, fault_bucket, key, seed=11, parallel=False)
    concurrent = _storm_run(fault_upstream_url, fault_bucket, key, seed=11, parallel=True)
    other_seed = _storm_run(fault_upstream_url, fault_bucket, key, seed=12, parallel=False)
    assert sequential == concurrent
    assert 1 <= len(sequential) <= 14  # 30% of 20 requests
    assert other_seed != sequential


def test_storm_respects_filters_and_cap(fault_proxy: FaultProxy, s3: Any, fault_bucket: str, key: str) -> None:
    storm = fault_proxy.start_storm(3, 1.0, [Fault.slow_down()], method="GET", max_faults=2)
    assert s3.head_object(Bucket=fault_bucket, Key=key)["ContentLength"] == len(DATA)
    assert [_get_status(s3, fault_bucket, key) for _ in range(3)] == [503, 503, 206]
    assert storm.injected == 2
    assert fault_proxy.stop_storm() is storm


# ---- lifecycle ---------------------------------------------------------------------------


def _sockets_on_port(port: int, *, side: str = "local") -> int:
    """Sockets of this process whose ``side`` ("local" or "remote") port is ``port``, from
    /proc. The proxy's own sockets (listener, accepted connections) have the proxy's port
    as their local one; a client's socket to the proxy has it as its remote one, and may
    linger (CLOSE_WAIT) however the client's HTTP stack pools it, so it is never counted
    as the proxy's."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    column = {"local": 1, "remote": 2}[side]
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[9] in inodes and int(fields[column].split(":")[1], 16) == port:
                    count += 1
    return count


def test_stop_closes_idle_and_busy_connections_and_joins_threads(
    fault_upstream_url: str, fault_bucket: str, key: str
) -> None:
    upstream_port = int(fault_upstream_url.rsplit(":", 1)[1])
    to_upstream_before = _sockets_on_port(upstream_port, side="remote")
    proxy = FaultProxy(fault_upstream_url).start()
    idle = plain_s3_client(proxy.endpoint_url)
    assert idle.get_object(Bucket=fault_bucket, Key=key)["Body"].read() == DATA  # leaves a kept-alive connection
    proxy.add_rule(Fault.stall(30, after=100), method="GET")
    stalled = plain_s3_client(proxy.endpoint_url, timeout=30)
    body = stalled.get_object(Bucket=fault_bucket, Key=key)["Body"]
    assert body.read(100) == DATA[:100]
    assert _sockets_on_port(proxy.port) >= 3  # listener, two accepted connections
    assert len([t for t in threading.enumerate() if t.name.startswith(f"faultproxy-{proxy.port}")]) == 3

    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 2.0
    _, exc = read_all(body)
    assert exc is not None  # the stalled client saw its connection go
    idle.close()
    stalled.close()
    assert proxy.open_sockets() == 0
    assert not [t for t in threading.enumerate() if t.name.startswith(f"faultproxy-{proxy.port}")]
    assert _sockets_on_port(proxy.port) == 0
    deadline = time.monotonic() + 2
    while _sockets_on_port(upstream_port, side="remote") > to_upstream_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _sockets_on_port(upstream_port, side="remote") <= to_upstream_before


def test_context_manager_and_stop_twice(fault_upstream_url: str) -> None:
    with FaultProxy(fault_upstream_url) as proxy:
        port = proxy.port
        assert port > 0
        assert proxy.endpoint_url == f"http://127.0.0.1:{port}"
        assert _sockets_on_port(port) == 1
    assert _sockets_on_port(port) == 0
    proxy.stop()


def test_bad_fault_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="byte position"):
        Fault.reset_after(-1)
    with pytest.raises(ValueError, match="bit"):
        Fault.flip_bit(0, bit=8)
    with pytest.raises(ValueError, match="upstream"):
        FaultProxy("no-port-here")


# ---- helpers -------------------------------------------------------------------------


def _get_status(s3: Any, bucket: str, key: str, range_header: str = "bytes=0-9") -> int:
    try:
        response = s3.get_object(Bucket=bucket, Key=key, Range=range_header)
        response["Body"].read()
        return int(response["ResponseMetadata"]["HTTPStatusCode"])
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
