"""S3RangeReader: one HEAD at open, then ranged GETs pinned to that version by If-Match.

Every GET carries ``Range`` and ``If-Match: <ETag from HEAD>`` and its reply must be a 206
whose ``Content-Range`` is exactly the range asked for (or a 200 carrying the whole object
when the range starts at 0); anything else is a ResponseError and its bytes are never used
(RELIABILITY.md invariant 2). Body faults are raised as they come, for BlockStream to resume.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import urllib3.exceptions as u3e

from ..config import S3Config
from ..errors import ObjectChangedError, ResponseError
from .s3_client import get_client
from .s3_errors import ShortBodyError, translate
from .s3_path import S3Path

__all__ = ["S3RangeReader", "head_object"]

_CHUNK = 1024 * 1024


def head_object(location: S3Path, config: S3Config) -> dict[str, Any]:
    """HEAD the object; raises ObjectNotFoundError, AccessDeniedError, StorageError."""
    try:
        response: dict[str, Any] = get_client(config).head_object(Bucket=location.bucket, Key=location.key)
    except Exception as exc:
        raise translate(exc, location.url, "stat") from exc
    return response


class S3RangeReader:
    """A :class:`~tfrecord_s3.storage.stream.StreamingRangeReader` over one S3 object version.

    Thread-safe: read-ahead threads call :meth:`iter_range` concurrently. Holds no boto3
    client (looked up per request from the per-process cache), so it pickles without one.
    """

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
            readinto = _socket_readinto(body)
            if readinto is None:  # not the urllib3 2 / http.client stack we know: copy
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
            read_last = _chunk_reader(body)
            while remaining > 1:
                written = end - start - remaining
                # Ask for all that is missing but the last byte: one recv() takes whatever
                # the socket holds, so a slow consumer thread costs few wake-ups.
                got = readinto(out[written : written + remaining - 1])
                if not got:
                    raise ShortBodyError(f"{self.path}: body ended {remaining} bytes early")
                remaining -= got
                yield got
            # The last byte through urllib3, which then returns the connection to its pool.
            last = read_last(1)
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
        response = get_client(self._config, "data").get_object(**params)
        body = response["Body"]
        with self._live_lock:
            self._live.add(body)
        try:
            # A 200 with the whole object, of which we read a prefix: the rest stays unread.
            leftover = self._check_reply(response, start, end) and end < self._size
        except BaseException:
            self._done(body, unread=True)
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


def _socket_readinto(body: Any) -> Callable[[memoryview], int] | None:
    """``readinto(view)``: like :func:`_chunk_reader` (whatever has arrived, up to
    ``len(view)``; nothing received is lost to a fault) but into ``view``, with no bytes
    object in between. It works one level below urllib3, on http.client's buffered socket
    file, keeping both layers' length counts in step; None for any other stack (urllib3 1.x,
    chunked bodies), where the caller copies."""
    raw = getattr(body, "_raw_stream", None)
    response = getattr(raw, "_fp", None)
    file = getattr(response, "fp", None)
    if not (
        isinstance(response, http.client.HTTPResponse)
        and not response.chunked
        and isinstance(file, io.BufferedReader)
        and isinstance(getattr(raw, "length_remaining", None), int)
        and isinstance(getattr(raw, "_fp_bytes_read", None), int)
    ):
        return None
    http_response: http.client.HTTPResponse = response
    buffered: io.BufferedReader = file
    urllib3_response: Any = raw
    left = http_response.length
    if left is None:
        return None
    drained = False

    def readinto(view: memoryview) -> int:
        nonlocal drained, left
        view = view[:left]  # never past Content-Length
        try:
            if drained:
                got = buffered.readinto1(view)
            else:
                # Body bytes the header parser already buffered come alone: readinto1 would
                # copy them and then recv(), and a failing recv() loses their count.
                chunk = buffered.read1(len(view))
                got = len(chunk)
                view[:got] = chunk
                drained = True
        except TimeoutError as exc:  # what urllib3 would raise, for the same retry and log
            raise u3e.ReadTimeoutError(None, None, "Read timed out.") from exc  # type: ignore[arg-type]
        except OSError as exc:
            raise u3e.ProtocolError(f"Connection broken: {exc!r}", exc) from exc
        left -= got
        http_response.length = left
        urllib3_response.length_remaining -= got
        urllib3_response._fp_bytes_read += got
        return got

    return readinto


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
