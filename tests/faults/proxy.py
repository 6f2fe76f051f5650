"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, between an S3 client and a local S3 server.

Requests are forwarded byte for byte (the client signed them for the proxy's Host, and
moto accepts any host); responses come back through a fault chosen per request by the
rules (in the order added), or else by the seeded storm. One thread per client
connection, each with its own upstream connection, so keep-alive works on both sides.

    with FaultProxy(moto_endpoint) as proxy:
        proxy.add_rule(Fault.reset_after(100), method="GET", key="data.tfrecord")
        s3 = boto3.client("s3", endpoint_url=proxy.endpoint_url, ...)
        ...
        assert proxy.requests(method="GET")[0].body_bytes == 100
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from urllib.parse import urlsplit

from tests.faults.schedule import (
    ANSWERED_BY_PROXY,
    Fault,
    FaultKind,
    RequestInfo,
    RequestLog,
    Rule,
    Storm,
    StormFault,
)
from tests.faults.shaping import BodyPlan, error_response, plan_body, shifted_range
from tests.faults.sockets import ClientConnection, SocketRegistry
from tests.faults.wire import Head, SocketReader, WireError, parse_content_range, without_header


class _Stopped(Exception):
    """The proxy is stopping: abandon the connection."""


@dataclass
class _Request:
    head: Head
    body: bytes  # raw, as framed by the client (chunked framing kept)
    info: RequestInfo


class FaultProxy:
    """Forward HTTP/1.1 from ``host:port`` (port 0: any free port) to ``upstream``
    (``"http://127.0.0.1:5000"``, ``"127.0.0.1:5000"`` or ``(host, port)``), with faults.

    All methods are thread-safe and may be called while requests are in flight."""

    def __init__(self, upstream: str | tuple[str, int], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = _parse_upstream(upstream)
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._rules: list[Rule] = []
        self._storm: Storm | None = None
        self._log: list[RequestLog] = []
        self._sockets = SocketRegistry()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections = 0
        self.address: tuple[str, int] = ("", 0)

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._listener is not None:
            raise RuntimeError("proxy already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(self._bind)
        listener.listen(64)
        self._listener = listener
        self._wakeup = socket.socketpair()
        host, port = listener.getsockname()[:2]
        self.address = (str(host), int(port))
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"faultproxy-{port}-accept", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, abort every connection, join every thread, close every socket.
        Raises RuntimeError if a thread did not finish within ``timeout``."""
        if self._listener is None or self._stopping.is_set():
            return
        self._stopping.set()
        assert self._wakeup is not None
        assert self._accept_thread is not None
        with contextlib.suppress(OSError):
            self._wakeup[1].send(b"x")
        self._accept_thread.join(timeout)
        with self._lock:
            threads = list(self._threads)
        self._sockets.shutdown_all()  # unblocks recv/send in the connection threads; they close them
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._sockets.close_all()
        for sock in [self._listener, *self._wakeup]:
            sock.close()
        stuck = [t.name for t in [self._accept_thread, *threads] if t.is_alive()]
        if stuck:
            raise RuntimeError(f"fault proxy threads did not stop: {stuck}")

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def open_sockets(self) -> int:
        """Sockets the proxy holds now: listener and wakeup pair excluded."""
        return len(self._sockets)

    # ---- schedule ----------------------------------------------------------------------

    def add_rule(
        self,
        fault: Fault,
        *,
        method: str | None = None,
        key: str | None = None,
        key_regex: str | None = None,
        window: tuple[int, int] | None = None,
        nth: int | None = None,
        skip: int = 0,
        times: int | None = 1,
    ) -> Rule:
        """Fault matching requests; see ``Rule``. ``nth=k`` is ``skip=k-1, times=1``."""
        if nth is not None:
            if nth < 1:
                raise ValueError("nth counts from 1")
            skip, times = nth - 1, 1
        rule = Rule(fault, method=method, key=key, key_regex=key_regex, window=window, skip=skip, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove_rule(self, rule: Rule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear_rules(self) -> None:
        with self._lock:
            self._rules = []

    def rule_counts(self, rule: Rule) -> tuple[int, int]:
        """(matched, fired) of ``rule``, read under the lock."""
        with self._lock:
            return rule.matched, rule.fired

    def start_storm(
        self,
        seed: int,
        fraction: float,
        faults: Sequence[StormFault],
        *,
        method: str | None = "GET",
        key: str | None = None,
        max_faults: int | None = None,
    ) -> Storm:
        """From now on, a random fault from ``faults`` on ~``fraction`` of matching requests
        that no rule faulted. See ``Storm`` for the seeding."""
        if not 0.0 <= fraction <= 1.0 or not faults:
            raise ValueError("storm needs 0 <= fraction <= 1 and at least one fault")
        storm = Storm(seed, fraction, list(faults), method=method, key=key, max_faults=max_faults)
        with self._lock:
            self._storm = storm
        return storm

    def stop_storm(self) -> Storm | None:
        """End the storm; returns it (``.injected`` counts its faults)."""
        with self._lock:
            storm, self._storm = self._storm, None
        return storm

    def _choose_fault(self, info: RequestInfo) -> tuple[Fault | None, str | None]:
        with self._lock:
            chosen: Rule | None = None
            for rule in self._rules:
                if not rule.criteria_match(info):
                    continue
                rule.matched += 1
                if rule.due():
                    if chosen is None:
                        chosen = rule
                    else:  # its turn is taken: it fires on its next match instead
                        rule.matched -= 1
            if chosen is not None:
                chosen.fired += 1
                return chosen.fault, "rule"
            if self._storm is not None:
                fault = self._storm.draw(info)
                if fault is not None:
                    return fault, "storm"
        return None, None

    # ---- log -------------------------------------------------------------------------

    def requests(
        self, *, method: str | None = None, key: str | None = None, faulted: bool | None = None
    ) -> list[RequestLog]:
        """Copies of the log entries, oldest first, filtered by method, path substring, and
        whether a fault was applied. Entries appear when a request is read and are final
        once ``finished`` is set."""
        with self._lock:
            return [
                replace(e)
                for e in self._log
                if (method is None or e.method.upper() == method.upper())
                and (key is None or key in e.path)
                and (faulted is None or (e.fault is not None and not e.fault_skipped) == faulted)
            ]

    def bytes_sent(self, *, method: str | None = "GET", key: str | None = None) -> int:
        """Response body bytes written to clients, e.g. to measure re-downloading."""
        return sum(e.body_bytes for e in self.requests(method=method, key=key))

    def clear_log(self) -> None:
        with self._lock:
            self._log = []

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Until every logged request is finished; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(e.finished is not None for e in self._log):
                    return True
            time.sleep(0.005)
        return False

    def _update(self, entry: RequestLog, **fields: object) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(entry, name, value)

    # ---- accepting and serving ------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        assert self._wakeup is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wakeup[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wakeup[0] in ready or self._stopping.is_set():
                    return
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    continue
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sockets.add(client)
                with self._lock:
                    self._connections += 1
                    number = self._connections
                    self._threads = [t for t in self._threads if t.is_alive()]
                    thread = threading.Thread(
                        target=self._serve,
                        args=(ClientConnection(self._sockets, self.upstream, client, number),),
                        name=f"faultproxy-{self.port}-conn{number}",
                        daemon=True,
                    )
                    self._threads.append(thread)
                thread.start()

    def _serve(self, conn: ClientConnection) -> None:
        entry: RequestLog | None = None
        try:
            while not self._stopping.is_set():
                request = self._read_request(conn)
                if request is None:
                    return
                fault, source = self._choose_fault(request.info)
                with self._lock:
                    entry = RequestLog(
                        seq=len(self._log),
                        conn=conn.number,
                        method=request.info.method,
                        path=request.info.path,
                        query=request.info.query,
                        range_header=request.info.range_header,
                        fault=fault.describe() if fault else None,
                        fault_kind=fault.kind if fault else None,
                        fault_source=source,
                        started=time.monotonic(),
                    )
                    self._log.append(entry)
                keep_alive = self._handle(conn, request, fault, entry)
                self._update(entry, finished=time.monotonic())
                entry = None
                if not keep_alive:
                    return
        except (OSError, WireError, _Stopped):
            return
        finally:
            if entry is not None:
                self._update(entry, finished=time.monotonic())
            conn.close()

    def _read_request(self, conn: ClientConnection) -> _Request | None:
        raw = conn.client_in.read_head()
        if raw is None:
            return None
        head = Head.parse(raw)
        if head.has_token("Expect", "100-continue"):
            conn.client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if head.has_token("Transfer-Encoding", "chunked"):
            body, _ = conn.client_in.read_chunked()
        else:
            body = conn.client_in.read_exact(int(head.get("Content-Length") or 0))
        method, target = [*head.start_line.split(" "), "", ""][:2]
        path, _, query = target.partition("?")
        return _Request(head, body, RequestInfo(method.upper(), path, query, head.get("Range")))

    def _handle(self, conn: ClientConnection, request: _Request, fault: Fault | None, entry: RequestLog) -> bool:
        """Answer one request; returns whether the client connection stays open."""
        info = request.info
        keep_alive = not request.head.has_token("Connection", "close")
        kind = fault.kind if fault else None
        if fault is not None and fault.kind in ANSWERED_BY_PROXY:
            if fault.kind is FaultKind.RESET_BEFORE_HEADERS:
                conn.reset_client()
                return False
            error_head, error_body = error_response(fault, info, f"FAULTPROXY{entry.seq:08d}")
            self._update(entry, status=fault.status, content_length=len(error_body), body_bytes=len(error_body))
            conn.client.sendall(error_head + error_body)
            self._update(entry, complete=True)
            return keep_alive
        if fault is not None and kind is FaultKind.STALL and fault.at is None:
            self._sleep(fault.seconds)

        raw_head = request.head.raw
        if kind is FaultKind.FULL_200:
            raw_head = without_header(raw_head, "Range")
        response, body, body_len, close_delimited = self._forward(conn, raw_head + request.body, info.method)
        status = response.status()
        content_range = response.get("Content-Range")
        upstream_closes = close_delimited or response.has_token("Connection", "close")
        out_status = status
        start_line: str | None = None
        drop: list[str] = []
        if close_delimited:
            keep_alive = False
        elif upstream_closes and keep_alive:  # moto closes every connection; S3 keeps them alive
            drop.append("Connection")
        set_headers: list[tuple[str, str]] = []
        if response.has_token("Transfer-Encoding", "chunked"):  # re-framed with a length
            drop.append("Transfer-Encoding")
            set_headers.append(("Content-Length", str(body_len)))
        if kind is FaultKind.PARTIAL_200 and status == 206:
            out_status, start_line = 200, f"{response.start_line.split(' ', 1)[0]} 200 OK"
            drop.append("Content-Range")
            content_range = None
        if fault is not None and kind is FaultKind.WRONG_CONTENT_RANGE:
            content_range = fault.content_range or shifted_range(content_range, body_len, fault.shift)
            set_headers.append(("Content-Range", content_range))
        head_out = (
            response.edited(start_line=start_line, drop=drop, set_headers=set_headers)
            if start_line or drop or set_headers
            else response.raw
        )

        parsed = parse_content_range(response.get("Content-Range"))
        body_start = parsed[0] if parsed and status == 206 else 0
        plan, skipped = plan_body(fault, body_start, body_len)
        announced = dict(set_headers).get("Content-Length") or response.get("Content-Length")
        self._update(
            entry,
            upstream_status=status,
            status=out_status,
            content_range=content_range,
            content_length=int(announced) if announced else None,
            fault_skipped=skipped,
        )

        if kind is FaultKind.CUT_HEAD and fault is not None and fault.at is not None:
            conn.client.sendall(head_out[: fault.at])
            self._update(entry, status=None)
            conn.drop_upstream()
            conn.close_client_cleanly()
            return False
        conn.client.sendall(head_out)
        whole = self._pump(conn, body, plan, entry)
        if not whole:
            conn.drop_upstream()  # its body was not read to the end
            if plan.cut_reset:
                conn.reset_client()
            else:
                conn.close_client_cleanly()
            return False
        self._update(entry, complete=True)
        if upstream_closes:
            conn.drop_upstream()
        return keep_alive

    def _forward(self, conn: ClientConnection, data: bytes, method: str) -> tuple[Head, Iterator[bytes], int, bool]:
        """Send ``data`` upstream and read the response head. Returns the head, the body
        chunks, the body length (-1 when delimited by close) and whether it is."""
        head, reader = self._exchange(conn, data)
        status = head.status()
        if method == "HEAD" or status in (204, 304):
            return head, iter(()), 0, False
        if head.has_token("Transfer-Encoding", "chunked"):
            _, payload = reader.read_chunked()
            return head, iter((payload,)), len(payload), False
        length = head.get("Content-Length")
        if length is not None:
            return head, reader.iter_exact(int(length)), int(length), False
        return head, reader.iter_to_eof(), -1, True

    def _exchange(self, conn: ClientConnection, data: bytes) -> tuple[Head, SocketReader]:
        """Send ``data`` upstream and read the final response head (1xx skipped). A kept
        upstream connection the server closed meanwhile is replaced once."""
        for _ in (0, 1):
            reused = conn.upstream is not None
            sock, reader = conn.connect_upstream()
            try:
                sock.sendall(data)
                raw = reader.read_head()
                while raw is not None and 100 <= Head.parse(raw).status() < 200:
                    raw = reader.read_head()
            except (OSError, WireError):
                raw = None
            if raw is not None:
                return Head.parse(raw), reader
            conn.drop_upstream()
            if not reused:
                break
        raise WireError("upstream closed the connection before answering")

    def _pump(self, conn: ClientConnection, chunks: Iterator[bytes], plan: BodyPlan, entry: RequestLog) -> bool:
        """Send the body with the plan's flip/stall/drip applied; False if cut at ``cut_at``."""
        pos = 0
        for chunk in chunks:
            data = chunk
            if plan.flip_at is not None and pos <= plan.flip_at < pos + len(data):
                flipped = bytearray(data)
                flipped[plan.flip_at - pos] ^= plan.flip_mask
                data = bytes(flipped)
            i = 0
            while i < len(data):
                if not self._before_byte(plan, pos):
                    return False
                n = len(data) - i
                for boundary in (plan.cut_at, plan.stall_at, plan.drip_from):
                    if boundary is not None and boundary > pos:
                        n = min(n, boundary - pos)
                dripping = plan.drip_from is not None and pos >= plan.drip_from
                if dripping:
                    n = min(n, plan.drip_chunk)
                conn.client.sendall(data[i : i + n])
                pos += n
                i += n
                self._update(entry, body_bytes=pos)
                if dripping:
                    self._sleep(plan.drip_interval)
        # Positions at or past the end act after the whole body.
        if plan.stall_at is not None:
            plan.stall_at = pos
        return plan.cut_at is None and self._before_byte(plan, pos)

    def _before_byte(self, plan: BodyPlan, pos: int) -> bool:
        if plan.stall_at == pos:
            plan.stall_at = None
            self._sleep(plan.stall_seconds)
        return plan.cut_at != pos

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Stopped


def _parse_upstream(upstream: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(upstream, tuple):
        return upstream
    split = urlsplit(upstream if "//" in upstream else f"//{upstream}")
    if split.hostname is None or split.port is None:
        raise ValueError(f"upstream must be host:port or http://host:port, got {upstream!r}")
    return split.hostname, split.port
