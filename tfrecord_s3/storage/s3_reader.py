"""S3RangeReader: one HEAD at open, then ranged GETs pinned to that version by If-Match.

Every GET carries ``Range`` and ``If-Match: <ETag from HEAD>`` and its reply must be a 206
whose ``Content-Range`` is exactly the range asked for (or a 200 carrying the whole object
when the range starts at 0); anything else is a ResponseError and its bytes are never used
(RELIABILITY.md invariant 2). Body faults are raised as they come, for BlockStream to resume.
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import urllib3.exceptions as u3e
from botocore.exceptions import ClientError

from ..config import S3Config
from ..errors import ConfigError, ObjectChangedError, ObjectNotFoundError, ResponseError, StorageError
from .retry import Backoff, policy_for
from .s3_client import get_client, refresh_credentials
from .s3_errors import (
    S3_FAULTS,
    CutReplyError,
    Fault,
    ShortBodyError,
    classify,
    http_status,
    reply_was_cut,
    translate,
)
from .s3_path import S3Path

__all__ = ["S3RangeReader", "head_object"]

_CHUNK = 1024 * 1024
#: Bytes a receiving thread waits for per wake-up on plain TCP (SO_RCVLOWAT).
_LOW_WATER = 1024 * 1024


def head_object(location: S3Path, config: S3Config) -> dict[str, Any]:
    """HEAD the object; raises ObjectNotFoundError, AccessDeniedError, StorageError."""
    backoff = Backoff(policy_for(config))
    watch = backoff.stall_watch()
    attempt = 0
    while True:
        attempt += 1
        try:
            response: dict[str, Any] = get_client(config).head_object(Bucket=location.bucket, Key=location.key)
        except Exception as exc:
            # botocore retried what it retries; a known server that does not answer at all
            # (restarting) is waited for within the stall budget, as a GET would be.
            watch.after_fault(exc, progressed=False)
            restarting = config.endpoint_url in _answered_endpoints and not watch.answered
            if restarting and classify(exc) is Fault.TRANSIENT and backoff.try_spend(attempt, watch=watch):
                continue
            raise _missing_bucket(location, config, translate(exc, location.url, "stat")) from exc
        _answered_endpoints.add(config.endpoint_url)
        return response


# Endpoints that answered a HEAD in this process: one that stops answering is restarting and
# is waited for; one never heard from is more likely misconfigured, and fails at once.
_answered_endpoints: set[str | None] = set()


def _missing_bucket(
    location: S3Path, config: S3Config, error: StorageError | ConfigError
) -> StorageError | ConfigError:
    """A HEAD's 404 has no body to tell a missing key from a missing bucket: ask the bucket,
    once, and say "no such bucket" when that is what it is."""
    if not isinstance(error, ObjectNotFoundError) or "no such bucket" in str(error):
        return error
    try:
        get_client(config).head_bucket(Bucket=location.bucket)
    except ClientError as exc:
        if http_status(exc) == 404:
            message = f"stat {location.url}: no such bucket {location.bucket!r}"
            return ObjectNotFoundError(message, path=location.url, operation="stat")
    except Exception:  # the bucket check only improves the message: keep the first error
        pass
    return error


class S3RangeReader:
    """A :class:`~tfrecord_s3.storage.stream.StreamingRangeReader` over one S3 object version.

    Thread-safe: read-ahead threads call :meth:`iter_range` concurrently. Holds no boto3
    client (looked up per request from the per-process cache), so it pickles without one.
    """

    #: How BlockStream understands this reader's exceptions (botocore's and urllib3's).
    faults = S3_FAULTS

    def __init__(self, location: S3Path, config: S3Config, *, head: dict[str, Any] | None = None) -> None:
        self._location = location
        self._config = config
        head = head if head is not None else head_object(location, config)
        self._size = int(head["ContentLength"])
        self._etag: str | None = head.get("ETag")
        self._live: set[Any] = set()
        self._live_lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    @property
    def path(self) -> str:
        return self._location.url

    @property
    def etag(self) -> str | None:
        return self._etag

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)  # a copy: never mutate the live object
        state["_live"] = set()
        state["_live_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._live_lock = threading.Lock()

    def read_range(self, start: int, end: int) -> bytes:
        data = bytearray()
        for chunk in self.iter_range(start, end):
            data += chunk
        if len(data) != end - start:
            raise ShortBodyError(f"{self.path}: {len(data)} of {end - start} bytes at byte {start}")
        return bytes(data)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Chunks of bytes ``[start, end)``; raises botocore/urllib3 errors as they happen and
        ObjectChangedError/ResponseError for replies that must not be used."""
        body, leftover = self._get(start, end)
        remaining = end - start
        try:
            read = _chunk_reader(body)
            while remaining > 0:
                chunk = read(min(_CHUNK, remaining))
                if not chunk:
                    raise ShortBodyError(f"{self.path}: body ended {remaining} bytes early")
                remaining -= len(chunk)
                yield chunk
        finally:
            self._done(body, unread=bool(remaining) or leftover)

    def readinto_range(self, start: int, end: int, out: memoryview) -> Iterator[int]:
        """Write bytes ``[start, end)`` into ``out`` as they arrive, yielding the count of each
        piece written (so after a fault the caller knows exactly which bytes it holds).
        Raises like :meth:`iter_range`. Bytes go from the socket straight into ``out``."""
        if len(out) != end - start:
            raise ValueError(f"buffer of {len(out)} bytes for a {end - start}-byte range")
        body, leftover = self._get(start, end)
        remaining = end - start
        try:
            receiver = _SocketReceiver.attach(body)
            if receiver is None:  # not the urllib3 2 / http.client stack we know: copy
                read = _chunk_reader(body)
                while remaining > 0:
                    chunk = read(min(_CHUNK, remaining))
                    if not chunk:
                        raise ShortBodyError(f"{self.path}: body ended {remaining} bytes early")
                    got = len(chunk)
                    written = end - start - remaining
                    out[written : written + got] = chunk
                    remaining -= got
                    yield got
                return
            try:
                while remaining > 1:
                    written = end - start - remaining
                    # Ask for all that is missing but the last byte: one recv() takes whatever
                    # the socket holds, so a busy consumer thread costs few wake-ups.
                    got = receiver.readinto(out[written : written + remaining - 1])
                    if not got:
                        raise ShortBodyError(f"{self.path}: body ended {remaining} bytes early")
                    remaining -= got
                    yield got
            finally:
                receiver.finish()
            # The last byte through urllib3, which then returns the connection to its pool.
            last = _chunk_reader(body)(1)
            if not last:
                raise ShortBodyError(f"{self.path}: body ended 1 byte early")
            out[-1:] = last
            remaining = 0
            yield 1
        finally:
            self._done(body, unread=bool(remaining) or leftover)

    def _get(self, start: int, end: int) -> tuple[Any, bool]:
        """The body of a checked ranged GET (see the module doc); tracked for :meth:`abort`."""
        if not 0 <= start < end <= self._size:
            raise ValueError(f"range [{start}, {end}) outside {self.path} of {self._size} bytes")
        params: dict[str, Any] = {
            "Bucket": self._location.bucket,
            "Key": self._location.key,
            "Range": f"bytes={start}-{end - 1}",
        }
        if self._etag:
            params["IfMatch"] = self._etag
        try:
            response = get_client(self._config, "data").get_object(**params)
        except ValueError as exc:
            # botocore could not parse a header (a Last-Modified or Content-Length cut short
            # with the connection): a cut reply; a server that always sends one exhausts the
            # retries.
            raise CutReplyError(f"{self.path}: reply with an unreadable header, at byte {start}") from exc
        body = response["Body"]
        with self._live_lock:
            self._live.add(body)
        try:
            # A 200 with the whole object, of which we read a prefix: the rest stays unread.
            leftover = self._check_reply(response, start, end) and end < self._size
        except BaseException as exc:
            cut = isinstance(exc, (ResponseError, ObjectChangedError)) and reply_was_cut(body)
            self._done(body, unread=True)
            if cut:  # not a reply that breaks the protocol: one cut short, worth a retry
                raise CutReplyError(f"{self.path}: reply cut inside its headers, at byte {start}") from exc
            raise
        return body, leftover

    def _done(self, body: Any, *, unread: bool) -> None:
        with self._live_lock:
            self._live.discard(body)
        # A body left unread (a fault, or a 200 with more than asked) cannot go back to the
        # pool; a fully read one was already released by urllib3.
        if unread:
            body.close()

    def _check_reply(self, response: dict[str, Any], start: int, end: int) -> bool:
        """Raise unless the reply carries exactly our range; True for a whole-object 200."""
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        etag = response.get("ETag")
        if self._etag and etag and etag != self._etag:
            # Servers that ignore If-Match (s3rver) still tell us which version they sent.
            raise ObjectChangedError(
                f"read {self.path} at byte {start}: the object changed while it was being read "
                f"(ETag {etag} instead of {self._etag})",
                path=self.path,
                operation="read",
            )
        if status == 206:
            expected = f"bytes {start}-{end - 1}/{self._size}"
            got = response.get("ContentRange")
            if got == expected:
                return False
            problem = f"Content-Range {got!r} instead of {expected!r}"
        elif status == 200:
            if start == 0 and int(response.get("ContentLength", -1)) == self._size:
                return True
            problem = f"HTTP 200 with {response.get('ContentLength')} bytes for range {start}-{end - 1}"
        else:
            problem = f"HTTP {status} for a ranged GET"
        raise ResponseError(f"read {self.path} at byte {start}: {problem}", path=self.path, operation="read")

    def refresh_credentials(self) -> None:
        """Make the next request look its credentials up again (after ExpiredToken)."""
        refresh_credentials()

    def abort(self) -> None:
        """Break the connections of GETs in progress (so a stalled read ends now)."""
        with self._live_lock:
            bodies = list(self._live)
        for body in bodies:
            _shutdown_socket(body)


def _chunk_reader(body: Any) -> Callable[[int], bytes]:
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


class _SocketReceiver:
    """Receives a body straight into the caller's buffer: like :func:`_chunk_reader`
    (whatever has arrived, up to ``len(view)``; a fault loses nothing received) with no bytes
    object in between. Works one level below urllib3, on http.client's buffered socket file,
    keeping both layers' length counts in step. Build it with :meth:`attach`."""

    def __init__(self, raw: Any, response: http.client.HTTPResponse, file: io.BufferedReader, left: int) -> None:
        self._raw = raw
        self._response = response
        self._file = file
        self._left = left
        self._drained = False
        # On plain TCP, a low-water mark makes each wake-up take _LOW_WATER bytes instead
        # of every 64 KiB segment: a few hundred Python steps per GB instead of thousands.
        sock = getattr(file.raw, "_sock", None)  # the socket under socket.makefile()
        self._sock: socket.socket | None = None  # None: no low-water mark
        self._poller: select.poll | None = None
        if isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket) and hasattr(select, "poll"):
            self._sock = sock
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)
        self._low_water = 1
        self._patient = True  # False once a low-water wait outlasted the read timeout

    @classmethod
    def attach(cls, body: Any) -> _SocketReceiver | None:
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
                    self._set_low_water(min(_LOW_WATER, len(view)))
                got = self._receive(view)
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
            # Wait here, not in recv(): a timed-out socket file refuses all further reads.
            timeout = self._sock.gettimeout()
            if not self._ready(timeout):
                # Fewer bytes than the low-water mark within the read timeout: a stall only
                # if not one came. Wake on every byte from now on.
                self._patient = False
                self._set_low_water(1)
                if not self._ready(0):
                    raise TimeoutError("no byte within the read timeout")
        return self._file.readinto1(view)

    def _ready(self, timeout: float | None) -> bool:
        assert self._poller is not None
        return bool(self._poller.poll(None if timeout is None else timeout * 1000))

    def _set_low_water(self, count: int) -> None:
        if self._sock is None or count == self._low_water:
            return
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, count)
        except OSError:  # not supported here, or the socket is gone: wake on every segment
            self._sock = None
            return
        self._low_water = count


def _shutdown_socket(body: Any) -> None:
    # close() alone does not wake a thread blocked in recv() on Linux; shutdown() does.
    raw = getattr(body, "_raw_stream", None)
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
