"""An S3-like network on loopback: a shaping HTTP/1.1 proxy in front of a local S3 server.

Real S3 makes every request wait a first-byte latency (in region ~15-30 ms median, a tail past
100 ms), carries ~85-90 MB/s per connection, shares a NIC, and answers 503 SlowDown past a
request rate. Loopback has none of that, so readers that keep few requests in flight look as
fast as any. This proxy adds it back, per profile::

    python -m benchmarks.shaper --upstream 127.0.0.1:PORT --profile s3-region

It prints ``listening <port>`` and serves until killed (by PID). It runs in its own process,
so its own work never competes with a client's interpreter lock. ``GET /__shaper__/stats``
answers its counters as JSON (requests, 503s, connections opened, peak connections and
requests in flight since the last ``GET /__shaper__/reset``), without going upstream.

Each request waits a first-byte time drawn from a log-normal distribution (median and
shape ``sigma`` of the profile, capped) counted from when its head arrived, then the body
is paced per connection and through one shared NIC budget. Request bodies (uploads) are
forwarded unshaped; benchmarks upload straight to the server anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace

__all__ = ["PROFILES", "NetworkProfile", "Shaper"]

_CHUNK = 256 * 1024
_HEAD_LIMIT = 64 * 1024
_CONTROL = b"/__shaper__/"


@dataclass(frozen=True)
class NetworkProfile:
    """What one profile of the network costs a request."""

    name: str
    #: Median seconds from a request's head to its response's head.
    ttfb_median: float = 0.0
    #: Log-normal shape of the first-byte time: 0.6 puts p99 at ~4x the median.
    ttfb_sigma: float = 0.0
    ttfb_max: float = 1.0
    #: Bytes per second one connection carries (None: unpaced).
    connection_rate: float | None = None
    #: Bytes per second all connections together carry (None: unpaced).
    nic_rate: float | None = None
    #: Requests per second before 503 SlowDown (None: no limit); bursts up to one second's worth.
    max_requests_per_s: float | None = None
    #: Stragglers: this share of responses waits ``straggler_delay`` seconds more before its
    #: head (past ``ttfb_max``), as an overloaded server or a lost packet makes a few do.
    straggler_fraction: float = 0.0
    straggler_delay: float = 0.0

    @property
    def shaped(self) -> bool:
        return self.name != "loopback" or self.straggler_fraction > 0

    def describe(self) -> str:
        if not self.shaped:
            return "loopback (no shaping)"
        parts = [f"first byte {self.ttfb_median * 1e3:.0f} ms median (log-normal sigma {self.ttfb_sigma:g})"]
        if self.connection_rate:
            parts.append(f"{self.connection_rate / 1e6:.0f} MB/s per connection")
        if self.nic_rate:
            parts.append(f"{self.nic_rate / 1e9:.2f} GB/s NIC")
        if self.max_requests_per_s:
            parts.append(f"503 SlowDown past {self.max_requests_per_s:,.0f} requests/s")
        if self.straggler_fraction:
            parts.append(f"{self.straggler_fraction:.0%} of responses {self.straggler_delay:g} s late")
        return ", ".join(parts)

    def with_stragglers(self, spec: str) -> NetworkProfile:
        """This profile with stragglers from ``FRACTION:SECONDS`` (e.g. ``0.01:2``)."""
        fraction, _, delay = spec.partition(":")
        return replace(self, straggler_fraction=float(fraction), straggler_delay=float(delay or 0))


PROFILES = {
    "loopback": NetworkProfile("loopback"),
    # S3 in region: AWS's guidance of ~85-90 MB/s per connection and ~5,500 GET/s per prefix.
    "s3-region": NetworkProfile("s3-region", 0.025, 0.6, 1.0, 85e6, 1.25e9, 5500.0),
    "s3-far": NetworkProfile("s3-far", 0.080, 0.5, 2.0, 40e6, 1.25e9, 5500.0),
}


class _UpstreamGone(ConnectionError):
    """The upstream connection ended before its response's head: safe to ask again."""


class _Pacer:
    """A byte budget at ``rate`` bytes/s: :meth:`take` sleeps until ``count`` bytes may go."""

    def __init__(self, rate: float | None) -> None:
        self._rate = rate
        self._lock = threading.Lock()
        self._free_at = 0.0

    def restart(self) -> None:
        with self._lock:
            self._free_at = time.monotonic()

    def take(self, count: int) -> None:
        if not self._rate:
            return
        with self._lock:
            now = time.monotonic()
            self._free_at = max(self._free_at, now - 0.005) + count / self._rate  # 5 ms of burst
            wait = self._free_at - now
        if wait > 0:
            time.sleep(wait)


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.gets = 0
        self.heads = 0
        self.lists = 0
        self.slowdowns = 0
        self.stragglers = 0
        self.connections = 0
        self.open_connections = 0
        self.in_flight = 0
        self.peak_connections = 0
        self.peak_in_flight = 0
        self.body_bytes = 0

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {k: v for k, v in vars(self).items() if isinstance(v, int)}

    def reset_peaks(self) -> None:
        with self.lock:
            self.peak_connections = self.open_connections
            self.peak_in_flight = self.in_flight


class Shaper:
    """The proxy: ``start()`` binds 127.0.0.1 (port 0: any free port), ``port`` is where to connect."""

    def __init__(self, upstream: tuple[str, int], profile: NetworkProfile, *, seed: int = 0) -> None:
        self.upstream = upstream
        self.profile = profile
        self.stats = _Stats()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._nic = _Pacer(profile.nic_rate)
        self._tokens = profile.max_requests_per_s or 0.0
        self._tokens_at = time.monotonic()
        self._token_lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port: int = self._listener.getsockname()[1]

    def serve_forever(self) -> None:
        while True:
            client, _ = self._listener.accept()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    # -- shaping decisions --------------------------------------------------------------

    def _first_byte_delay(self) -> float:
        p = self.profile
        with self._rng_lock:
            draw = self._rng.gauss(0.0, p.ttfb_sigma) if p.ttfb_sigma > 0 else 0.0
            late = p.straggler_delay if p.straggler_fraction and self._rng.random() < p.straggler_fraction else 0.0
        if late:
            with self.stats.lock:
                self.stats.stragglers += 1
        return min(p.ttfb_max, p.ttfb_median * math.exp(draw)) + late

    def _admit(self) -> bool:
        rate = self.profile.max_requests_per_s
        if not rate:
            return True
        with self._token_lock:
            now = time.monotonic()
            self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    # -- one client connection ----------------------------------------------------------

    def _serve(self, client: socket.socket) -> None:
        stats = self.stats
        with stats.lock:
            stats.connections += 1
            stats.open_connections += 1
            stats.peak_connections = max(stats.peak_connections, stats.open_connections)
        upstream: socket.socket | None = None
        pacer = _Pacer(self.profile.connection_rate)
        buffered = b""
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                head, buffered = _read_head(client, buffered)
                if head is None:
                    return
                arrived = time.monotonic()
                method, target = _request_line(head)
                length = _content_length(head)
                head, expects = _without_expect(head)
                if expects:
                    # botocore asks before an upload body and waits ~1 s for the answer; the
                    # proxy answers itself and forwards without the header, so that upstream's
                    # own "100 Continue" never reaches _respond as if it were the response.
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, buffered = _read_exact(client, buffered, length)
                if target.startswith(_CONTROL):
                    client.sendall(self._control(target))
                    continue
                self._count(method, target)
                if not self._admit():
                    with stats.lock:
                        stats.slowdowns += 1
                    client.sendall(_slow_down())
                    continue
                with stats.lock:
                    stats.in_flight += 1
                    stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
                try:
                    for fresh in (False, True):
                        if upstream is None:
                            upstream = socket.create_connection(self.upstream)
                            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        try:
                            try:
                                upstream.sendall(head + body)
                            except OSError as exc:
                                raise _UpstreamGone from exc
                            keep = self._respond(upstream, client, method, arrived, pacer)
                            break
                        except _UpstreamGone:
                            # The server closed an idle kept-alive connection (Node does after
                            # 5 s): nothing reached the client yet, so ask again on a new one.
                            upstream.close()
                            upstream = None
                            if fresh:
                                raise
                finally:
                    with stats.lock:
                        stats.in_flight -= 1
                if not keep and upstream is not None:
                    upstream.close()
                    upstream = None
        except OSError:
            return
        finally:
            with stats.lock:
                stats.open_connections -= 1
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _count(self, method: bytes, target: bytes) -> None:
        with self.stats.lock:
            self.stats.requests += 1
            if method == b"GET" and b"list-type" in target:
                self.stats.lists += 1
            elif method == b"GET":
                self.stats.gets += 1
            elif method == b"HEAD":
                self.stats.heads += 1

    def _respond(
        self, upstream: socket.socket, client: socket.socket, method: bytes, arrived: float, pacer: _Pacer
    ) -> bool:
        """Relay one response, shaped; False when the upstream connection cannot be reused."""
        try:
            head, early = _read_head(upstream, b"")
        except OSError as exc:
            raise _UpstreamGone from exc
        if head is None:
            raise _UpstreamGone
        status = int(head.split(b" ", 2)[1])
        length = 0 if method == b"HEAD" or status in (204, 304) else _content_length(head, missing=-1)
        if length < 0:
            raise ConnectionError("upstream answered without Content-Length (chunked is not supported here)")
        wait = self._first_byte_delay() - (time.monotonic() - arrived)
        if wait > 0:
            time.sleep(wait)
        pacer.restart()
        client.sendall(head)
        left = length
        if early:
            piece = early[:left]
            self._send(client, piece, pacer)
            left -= len(piece)
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        while left > 0:
            got = upstream.recv_into(view[: min(_CHUNK, left)])
            if not got:
                raise ConnectionError("upstream body ended early")
            self._send(client, view[:got], pacer)
            left -= got
        return b"connection: close" not in head.lower()

    def _send(self, client: socket.socket, data: bytes | memoryview, pacer: _Pacer) -> None:
        pacer.take(len(data))
        self._nic.take(len(data))
        client.sendall(data)
        with self.stats.lock:
            self.stats.body_bytes += len(data)

    def _control(self, target: bytes) -> bytes:
        if target.startswith(_CONTROL + b"reset"):
            self.stats.reset_peaks()
        payload = json.dumps({"profile": asdict(self.profile), **self.stats.snapshot()}).encode()
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )


def _read_head(sock: socket.socket, buffered: bytes) -> tuple[bytes | None, bytes]:
    """(the head up to and including the blank line, bytes after it); None at a clean EOF."""
    data = buffered
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return data[: end + 4], data[end + 4 :]
        if len(data) > _HEAD_LIMIT:
            raise ConnectionError("head too long")
        more = sock.recv(65536)
        if not more:
            if data:
                raise ConnectionError("connection closed inside a head")
            return None, b""
        data += more


def _read_exact(sock: socket.socket, buffered: bytes, count: int) -> tuple[bytes, bytes]:
    data = buffered
    while len(data) < count:
        more = sock.recv(max(65536, count - len(data)))
        if not more:
            raise ConnectionError("connection closed inside a body")
        data += more
    return data[:count], data[count:]


def _request_line(head: bytes) -> tuple[bytes, bytes]:
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) < 2:
        raise ConnectionError("bad request line")
    return parts[0], parts[1]


def _content_length(head: bytes, *, missing: int = 0) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            return -1
    return missing


def _without_expect(head: bytes) -> tuple[bytes, bool]:
    """(``head`` without its ``Expect: 100-continue`` line, whether it had one)."""
    lines = head.split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"expect:")]
    return b"\r\n".join(kept), len(kept) != len(lines)


def _slow_down() -> bytes:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
        b"<Message>Please reduce your request rate.</Message></Error>"
    )
    return (
        b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="s3-region")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stragglers", default="", help="FRACTION:SECONDS, e.g. 0.01:2 (1%% of responses 2 s late)")
    args = parser.parse_args(argv)
    host, _, port = str(args.upstream).rpartition(":")
    profile = PROFILES[args.profile]
    if args.stragglers:
        profile = profile.with_stragglers(args.stragglers)
    shaper = Shaper((host, int(port)), profile, seed=args.seed)
    sys.stdout.write(f"listening {shaper.port}\n")
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        shaper.serve_forever()
    os._exit(0)


if __name__ == "__main__":
    main()
