"""Socket bookkeeping for the fault proxy: every socket it opens is registered, so stop()
can unblock and close them all, and a client connection paired with its upstream one."""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import termios
import threading
import time

from tests.faults.wire import SocketReader

UPSTREAM_TIMEOUT = 30.0
DRAIN_TIMEOUT = 2.0


class SocketRegistry:
    """The proxy's open sockets (listener excluded), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closing = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            closing = self._closing
        if closing:  # raced with shutdown_all(): do not leave it blocking
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()

    def shutdown_all(self) -> None:
        """Wake every thread blocked in recv/send on a registered socket (they then close
        it); sockets registered from now on are shut down at once."""
        with self._lock:
            self._closing = True
            live = list(self._sockets)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close_all(self) -> None:
        with self._lock:
            live = list(self._sockets)
        for sock in live:
            self.close(sock)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sockets)


class ClientConnection:
    """One client connection and the upstream connection paired with it (opened lazily,
    replaced whenever the server closes it)."""

    def __init__(self, registry: SocketRegistry, upstream: tuple[str, int], client: socket.socket, number: int) -> None:
        self.registry = registry
        self.upstream_address = upstream
        self.number = number
        self.client = client
        self.client_in = SocketReader(client)
        self.upstream: socket.socket | None = None
        self.upstream_in: SocketReader | None = None

    def connect_upstream(self) -> tuple[socket.socket, SocketReader]:
        if self.upstream is None or self.upstream_in is None:
            sock = socket.create_connection(self.upstream_address, timeout=UPSTREAM_TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.registry.add(sock)
            self.upstream, self.upstream_in = sock, SocketReader(sock)
        return self.upstream, self.upstream_in

    def drop_upstream(self) -> None:
        if self.upstream is not None:
            self.registry.close(self.upstream)
        self.upstream = self.upstream_in = None

    def close(self) -> None:
        self.drop_upstream()
        self.registry.close(self.client)

    def reset_client(self) -> None:
        """RST: wait until the client acknowledged what was sent, then close with linger 0."""
        wait_drained(self.client)
        with contextlib.suppress(OSError):
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.registry.close(self.client)

    def close_client_cleanly(self) -> None:
        """FIN after the bytes sent so far."""
        with contextlib.suppress(OSError):
            self.client.shutdown(socket.SHUT_WR)
        wait_drained(self.client)
        self.registry.close(self.client)


def wait_drained(sock: socket.socket) -> None:
    """Until the peer has acknowledged every byte sent (Linux SIOCOUTQ), so a following RST
    cannot discard data still queued: the client sees exactly the bytes the log counts."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    buf = bytearray(4)
    while time.monotonic() < deadline:
        try:
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
        except (OSError, ValueError):
            return
        if struct.unpack("i", buf)[0] == 0:
            return
        time.sleep(0.001)
