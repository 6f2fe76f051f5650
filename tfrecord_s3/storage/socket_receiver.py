"""Receiving a response body straight into the caller's buffer, below urllib3.

:func:`receive_into` fills a buffer from the body of a botocore reply (urllib3 2 over
http.client) with no bytes object per piece: :class:`SocketReceiver` reads from the socket
itself and keeps urllib3's and http.client's length counts in step, so the connection goes
back to the pool as if urllib3 had read it. Any other stack (urllib3 1.x, a chunked body, no
Content-Length) is copied from ``read1`` chunks instead. Either way a fault loses nothing
received: every piece is counted as it lands. :func:`shutdown_socket` wakes a thread blocked
in a body's ``recv()`` (abort).
"""

from __future__ import annotations

import functools
import http.client
import io
import select
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import urllib3.exceptions as u3e

from .faults import ShortBodyError

__all__ = ["CHUNK", "SocketReceiver", "chunk_reader", "receive_into", "shutdown_socket"]

#: Bytes asked of urllib3 per read when copying.
CHUNK = 1024 * 1024
#: Bytes a receiving thread waits for per wake-up (SO_RCVLOWAT).
_LOW_WATER = 1024 * 1024
#: The most plaintext one TLS record carries.
_TLS_RECORD = 16 * 1024


def receive_into(body: Any, out: memoryview, path: str) -> Iterator[int]:
    """Fill ``out`` from botocore ``body`` (a reply of exactly ``len(out)`` bytes), yielding
    the count of each piece written; ShortBodyError naming ``path`` when the body ends early,
    urllib3's errors for the rest. The caller closes ``body`` unless every byte was taken."""
    size = remaining = len(out)
    receiver = SocketReceiver.attach(body)
    if receiver is None:  # not the urllib3 2 / http.client stack we know: copy
        read = chunk_reader(body)
        while remaining > 0:
            chunk = read(min(CHUNK, remaining))
            if not chunk:
                raise ShortBodyError(f"{path}: body ended {remaining} bytes early")
            got = len(chunk)
            written = size - remaining
            out[written : written + got] = chunk
            remaining -= got
            yield got
        return
    try:
        while remaining > 1:
            written = size - remaining
            # Ask for all that is missing but the last byte: one recv() takes whatever the
            # socket holds, so a busy consumer thread costs few wake-ups.
            got = receiver.readinto(out[written : written + remaining - 1])
            if not got:
                raise ShortBodyError(f"{path}: body ended {remaining} bytes early")
            remaining -= got
            yield got
    finally:
        receiver.finish()
    # The last byte through urllib3, which then returns the connection to its pool.
    last = chunk_reader(body)(1)
    if not last:
        raise ShortBodyError(f"{path}: body ended 1 byte early")
    out[-1:] = last
    yield 1


def chunk_reader(body: Any) -> Callable[[int], bytes]:
    """``read(n)``: whatever bytes have arrived (up to n), so a fault loses nothing that was
    received. botocore's ``StreamingBody.read(n)`` waits for all n bytes and drops them all
    on a timeout; urllib3's ``read1`` returns as soon as there are some. Undecoded always:
    the bytes of a range are the stored bytes, whatever Content-Encoding says."""
    raw = getattr(body, "_raw_stream", None)
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # urllib3 1.x
        return body.read  # type: ignore[no-any-return]

    def read(amount: int) -> bytes:
        return read1(amount, decode_content=False)  # type: ignore[no-any-return]

    return read


class SocketReceiver:
    """Receives a body straight into the caller's buffer: like :func:`chunk_reader`
    (whatever has arrived, up to ``len(view)``; a fault loses nothing received) with no bytes
    object in between. Works one level below urllib3, on http.client's buffered socket file,
    keeping both layers' length counts in step. Build it with :meth:`attach`.

    Plain TCP: one ``recv_into`` per wake-up, with a low-water mark so a wake-up finds about
    ``_LOW_WATER`` bytes. TLS: ``SSLSocket.recv_into`` returns one 16 KiB record per call, so
    after the same low-water wait every record already in the kernel is decrypted into the
    buffer in one loop (non-blocking), one Python step per MiB instead of per record."""

    #: Drain TLS records in a loop (False: one record per read, as http.client reads them;
    #: the benchmarks compare the two).
    drain_tls = True

    def __init__(self, raw: Any, response: http.client.HTTPResponse, file: io.BufferedReader, left: int) -> None:
        self._raw = raw
        self._response = response
        self._file = file
        self._left = left
        self._drained = False
        # A low-water mark makes each wake-up take _LOW_WATER bytes instead of every 64 KiB
        # segment: a few hundred Python steps per GB instead of thousands.
        sock = getattr(file.raw, "_sock", None)  # the socket under socket.makefile()
        self._sock: socket.socket | None = None  # None: no low-water mark
        self._tls: ssl.SSLSocket | None = None  # the TLS socket whose records are drained
        self._poller: select.poll | None = None
        if isinstance(sock, socket.socket) and hasattr(select, "poll"):
            if isinstance(sock, ssl.SSLSocket):
                if self.drain_tls:
                    self._tls = sock
                    self._sock = sock
            else:
                self._sock = sock
        if self._sock is not None:
            self._poller = select.poll()
            self._poller.register(self._sock, select.POLLIN)
        self._low_water = 1
        self._patient = True  # False once a low-water wait outlasted the read timeout
        self._ended = False  # TLS: the connection ended after the last bytes drained

    @classmethod
    def attach(cls, body: Any) -> SocketReceiver | None:
        """A receiver for botocore ``body``; None for any other stack than urllib3 2 over
        http.client with a Content-Length (the caller then copies read1 chunks)."""
        raw = getattr(body, "_raw_stream", None)
        response = getattr(raw, "_fp", None)
        file = getattr(response, "fp", None)
        if not (
            isinstance(response, http.client.HTTPResponse)
            and not response.chunked
            and response.length is not None
            and isinstance(file, io.BufferedReader)
            and isinstance(getattr(raw, "length_remaining", None), int)
            and isinstance(getattr(raw, "_fp_bytes_read", None), int)
        ):
            return None
        return cls(raw, response, file, response.length)

    def readinto(self, view: memoryview) -> int:
        view = view[: self._left]  # never past Content-Length
        try:
            if self._drained:
                if self._patient:
                    # TLS: the mark counts encrypted bytes in the kernel, and up to a record of
                    # this body may already sit inside the TLS layer, so wait for that much less.
                    wanted = len(view) - (_TLS_RECORD if self._tls is not None else 0)
                    self._set_low_water(max(1, min(_LOW_WATER, wanted)))
                got = self._receive_tls(view, self._tls) if self._tls is not None else self._receive(view)
            else:
                # Body bytes the header parser already buffered come alone: readinto1 would
                # copy them and then recv(), and a failing recv() loses their count.
                chunk = self._file.read1(len(view))
                got = len(chunk)
                view[:got] = chunk
                self._drained = True
        except TimeoutError as exc:  # what urllib3 would raise, for the same retry and log
            raise u3e.ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
        except OSError as exc:
            raise u3e.ProtocolError(f"Connection broken: {exc!r}", exc) from exc
        self._left -= got
        self._response.length = self._left
        self._raw.length_remaining -= got
        self._raw._fp_bytes_read += got
        return got

    def finish(self) -> None:
        """Restore the socket for its next use (urllib3 may pool the connection)."""
        self._set_low_water(1)

    def _receive(self, view: memoryview) -> int:
        if self._sock is not None and self._low_water > 1:
            self._wait()
        return self._file.readinto1(view)

    def _wait(self) -> None:
        """Until the low-water mark is reached, or (a slow body) at least one byte within the
        read timeout; TimeoutError when not even one came. Waits here, not in recv(): a
        timed-out socket file refuses all further reads."""
        assert self._sock is not None
        timeout = self._sock.gettimeout()
        if self._ready(timeout):
            return
        # Fewer bytes than the mark within the read timeout: a stall only if not one came.
        # Wake on every byte from now on.
        self._patient = False
        self._set_low_water(1)
        if not self._ready(0):
            raise TimeoutError("no byte within the read timeout")

    def _receive_tls(self, view: memoryview, sock: ssl.SSLSocket) -> int:
        while True:
            if self._ended:  # the TLS session was closed (close_notify): nothing more comes
                return 0
            if not sock.pending():  # no decrypted bytes waiting inside the TLS layer
                self._wait()
            got, self._ended = self._drain(view, sock)
            if got or self._ended:
                return got
            # Part of a record came: wait for its rest, waking on every byte.
            self._set_low_water(1)

    @staticmethod
    def _drain(view: memoryview, sock: ssl.SSLSocket) -> tuple[int, bool]:
        """Every whole record that has arrived, into ``view``, without blocking: (bytes
        written, whether the connection ended)."""
        timeout = sock.gettimeout()
        sock.settimeout(0.0)
        got = 0
        try:
            while got < len(view):
                try:
                    count = sock.recv_into(view[got:])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    return got, False
                if not count:
                    return got, True
                got += count
            return got, False
        finally:
            sock.settimeout(timeout)

    def _ready(self, timeout: float | None) -> bool:
        assert self._poller is not None
        return bool(self._poller.poll(None if timeout is None else timeout * 1000))

    def _set_low_water(self, count: int) -> None:
        if self._sock is None or count == self._low_water:
            return
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, count)
        except OSError:  # not supported here, or the socket is gone: wake on every byte
            if self._tls is None:
                self._sock = None
            self._patient = False
            return
        self._low_water = count


def shutdown_socket(body: Any) -> None:
    """Shut the connection under botocore ``body`` (from any thread): a read blocked in it
    ends now, with an error or an early end, never with bytes that are not the body's."""
    # close() alone does not wake a thread blocked in recv() on Linux; shutdown() does.
    raw = getattr(body, "_raw_stream", None)
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # The socket's own shutdown, even for TLS: SSLSocket.shutdown() drops the TLS state
    # first, so a read racing with it would take raw TLS records as body bytes.
    shutdown = functools.partial(socket.socket.shutdown, sock) if isinstance(sock, socket.socket) else sock.shutdown
    try:
        shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
