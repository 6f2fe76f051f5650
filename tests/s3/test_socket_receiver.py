"""The socket receiver on its own, against a real local HTTP(S) server through urllib3 (the
version installed: the newest in the main run, the floor in .ci/run's floors venv), with
botocore's StreamingBody around the reply as S3RangeReader gets it: whole bodies, bodies cut
short, stalls (read timeout, abort from another thread), connection reuse, and the copying
path for replies the fast path does not take (chunked)."""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3
import urllib3.exceptions as u3e
from botocore.response import StreamingBody

from tests.servers.tls import Certificates
from tfrecord_s3.storage.faults import ShortBodyError
from tfrecord_s3.storage.socket_receiver import SocketReceiver, receive_into, shutdown_socket

KiB = 1024
DATA = random.Random(5).randbytes(3 * 1024 * KiB + 77)
PATH = "test://object"


class _Handler(BaseHTTPRequestHandler):
    """``/full/N``, ``/short/N/M`` (promise N, send M, close), ``/stall/N/M`` (send M, then
    wait until the test ends), ``/drip/N/P`` (P bytes every 20 ms), ``/chunked/N``."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        kind, *numbers = self.path.strip("/").split("/")
        size = int(numbers[0])
        sent = int(numbers[1]) if len(numbers) > 1 else size
        self.send_response(200)
        if kind == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for at in range(0, size, 100 * KiB):
                piece = DATA[at : min(size, at + 100 * KiB)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if kind == "drip":
            for at in range(0, size, sent):
                self.wfile.write(DATA[at : min(size, at + sent)])
                self.wfile.flush()
                self.server.release.wait(0.02)
            return
        self.wfile.write(DATA[:sent])
        self.wfile.flush()
        if kind == "notify":  # end the TLS session (close_notify), keep the TCP connection
            self.wfile.flush()
            with contextlib.suppress(OSError):
                self.connection.unwrap()  # type: ignore[attr-defined]
            self.server.release.wait(60)
            self.close_connection = True
            return
        if kind == "stall":
            self.server.stalling.set()
            self.server.release.wait(60)
        if sent < size:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stalling = threading.Event()
        self.release = threading.Event()


@dataclass
class Site:
    pool: urllib3.HTTPConnectionPool
    server: _Server
    tls: bool

    def get(self, path: str) -> StreamingBody:
        raw = self.pool.request("GET", path, preload_content=False, retries=False)
        length = raw.headers.get("Content-Length")
        return StreamingBody(raw, int(length) if length is not None else None)


@pytest.fixture(params=["http", "https"])
def site(request: pytest.FixtureRequest, tls_certificates: Certificates) -> Iterator[Site]:
    server = _Server()
    tls = request.param == "https"
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_certificates.cert_file, tls_certificates.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="receiver-test-server", daemon=True)
    thread.start()
    timeout = urllib3.Timeout(connect=5, read=30)
    pool: urllib3.HTTPConnectionPool
    if tls:
        pool = urllib3.HTTPSConnectionPool("127.0.0.1", port, ca_certs=str(tls_certificates.ca_file), timeout=timeout)
    else:
        pool = urllib3.HTTPConnectionPool("127.0.0.1", port, timeout=timeout)
    try:
        yield Site(pool, server, tls)
    finally:
        server.release.set()
        pool.close()
        server.shutdown()
        server.server_close()
        thread.join(10)


def take(body: StreamingBody, size: int, counts: list[int] | None = None) -> memoryview:
    """``receive_into`` a fresh buffer, recording each count in ``counts``."""
    out = memoryview(bytearray(size))
    counts = counts if counts is not None else []
    for count in receive_into(body, out, PATH):
        assert count > 0
        counts.append(count)
    return out


def test_the_fast_path_is_taken_for_a_body_with_a_content_length(site: Site) -> None:
    body = site.get(f"/full/{len(DATA)}")
    assert SocketReceiver.attach(body) is not None  # a urllib3 that changed shape shows here
    body.close()


def test_a_whole_body_arrives_exactly_and_the_connection_is_reused(site: Site) -> None:
    for size in (len(DATA), 1, 2, 70 * KiB):
        counts: list[int] = []
        out = take(site.get(f"/full/{size}"), size, counts)
        assert out.tobytes() == DATA[:size]
        assert sum(counts) == size
    # Every reply was read to its end through urllib3's counts: one connection served all.
    assert site.pool.num_connections == 1


def test_a_body_cut_short_raises_after_every_byte_it_brought(site: Site) -> None:
    counts: list[int] = []
    out = memoryview(bytearray(len(DATA)))
    with pytest.raises((ShortBodyError, u3e.ProtocolError)):
        for count in receive_into(site.get(f"/short/{len(DATA)}/{1000 * KiB + 3}"), out, PATH):
            counts.append(count)
    received = sum(counts)
    assert received == 1000 * KiB + 3  # each byte sent is counted, none invented
    assert out[:received].tobytes() == DATA[:received]


def test_a_stalled_body_times_out_after_the_bytes_before_the_stall(site: Site) -> None:
    site.pool.timeout = urllib3.Timeout(connect=5, read=0.3)
    counts: list[int] = []
    out = memoryview(bytearray(len(DATA)))
    with pytest.raises(u3e.ReadTimeoutError):
        for count in receive_into(site.get(f"/stall/{len(DATA)}/{500 * KiB}"), out, PATH):
            counts.append(count)
    assert sum(counts) == 500 * KiB
    assert out[: 500 * KiB].tobytes() == DATA[: 500 * KiB]


def test_a_stalled_body_ends_at_once_when_aborted_from_another_thread(site: Site) -> None:
    body = site.get(f"/stall/{len(DATA)}/{200 * KiB}")
    counts: list[int] = []

    def abort() -> None:
        site.server.stalling.wait(30)  # all that comes before the stall is sent
        shutdown_socket(body)

    aborter = threading.Thread(target=abort)
    began = time.monotonic()
    aborter.start()
    out = memoryview(bytearray(len(DATA)))
    with pytest.raises((ShortBodyError, u3e.ProtocolError, OSError, ValueError)):
        for count in receive_into(body, out, PATH):
            counts.append(count)
    aborter.join(30)
    assert time.monotonic() - began < 20  # the read timeout is 30 s: only the abort ends it
    # What was counted is what was sent (a piece still in the kernel when the socket was shut
    # may be dropped: the stream asks for it again from the first byte it lacks).
    assert sum(counts) <= 200 * KiB
    assert out[: sum(counts)].tobytes() == DATA[: sum(counts)]


def test_a_tls_session_closed_mid_body_ends_the_body_at_once(site: Site) -> None:
    if not site.tls:
        pytest.skip("a TLS close_notify")
    # The TCP connection stays open: after the last bytes, only the TLS layer knows the
    # body ended. The short read timeout is what a reader that missed it would hit.
    site.pool.timeout = urllib3.Timeout(connect=5, read=1.0)
    body = site.get(f"/notify/{len(DATA)}/{300 * KiB}")
    counts: list[int] = []
    out = memoryview(bytearray(len(DATA)))
    with pytest.raises(ShortBodyError):  # not ReadTimeoutError
        for count in receive_into(body, out, PATH):
            counts.append(count)
    assert sum(counts) == 300 * KiB
    assert out[: 300 * KiB].tobytes() == DATA[: 300 * KiB]
    body.close()


def test_a_chunked_body_takes_the_copying_path_and_arrives_exactly(site: Site) -> None:
    body = site.get(f"/chunked/{len(DATA)}")
    assert SocketReceiver.attach(body) is None
    counts: list[int] = []
    out = take(body, len(DATA), counts)
    assert out.tobytes() == DATA
    assert max(counts) <= 1024 * KiB


def test_a_slow_trickle_is_not_a_stall(site: Site) -> None:
    # Fewer bytes than the low-water mark arrive within the read timeout, but bytes arrive:
    # a 4 KiB piece every 20 ms against a 1 s timeout (a 50x margin).
    site.pool.timeout = urllib3.Timeout(connect=5, read=1.0)
    size = 400 * KiB
    assert take(site.get(f"/drip/{size}/{4 * KiB}"), size).tobytes() == DATA[:size]


@pytest.mark.parametrize("drain", [True, False])
def test_tls_records_are_drained_many_per_read(site: Site, drain: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not site.tls:
        pytest.skip("plain TCP has no records")
    monkeypatch.setattr(SocketReceiver, "drain_tls", drain)
    counts: list[int] = []
    assert take(site.get(f"/full/{len(DATA)}"), len(DATA), counts).tobytes() == DATA
    if drain:
        assert max(counts) > 64 * KiB  # many 16 KiB records per step
        assert len(counts) < len(DATA) // (16 * KiB) // 2
    else:
        assert max(counts) <= 16 * KiB  # one record per read, as http.client reads
    assert site.pool.num_connections == 1


def test_the_low_water_mark_is_used_and_the_socket_restored(site: Site) -> None:
    body = site.get(f"/full/{len(DATA)}")
    receiver = SocketReceiver.attach(body)
    assert receiver is not None
    sock = body._raw_stream._fp.fp.raw._sock
    out = memoryview(bytearray(len(DATA)))
    got, low_waters = 0, []
    while got < len(out) - 1:
        n = receiver.readinto(out[got : len(out) - 1])
        assert n > 0
        got += n
        low_waters.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT))
    assert out[:got].tobytes() == DATA[:got]
    assert max(low_waters) > 1  # woke for big pieces, not every segment
    receiver.finish()
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1  # ready for the next reply
    body.close()
