"""S3RangeReader: one HEAD at open, then ranged GETs pinned to that version by If-Match.

Every GET carries ``Range`` and ``If-Match: <ETag from HEAD>`` and its reply must be a 206
whose ``Content-Range`` is exactly the range asked for (or a 200 carrying the whole object
when the range starts at 0); anything else is a ResponseError and its bytes are never used
(RELIABILITY.md invariant 2). Body faults are raised as they come, for BlockStream to resume.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

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
        remaining = end - start
        whole_object = False
        try:
            whole_object = self._check_reply(response, start, end)
            read = _chunk_reader(body)
            while remaining > 0:
                chunk = read(min(_CHUNK, remaining))
                if not chunk:
                    raise ShortBodyError(f"{self.path}: body ended {remaining} bytes early")
                remaining -= len(chunk)
                yield chunk
        finally:
            with self._live_lock:
                self._live.discard(body)
            # A body left unread (a fault, or a 200 with more than asked) cannot go back to
            # the pool; a fully read one was already released by urllib3.
            if remaining or (whole_object and end < self._size):
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
