"""S3RangeReader: one HEAD at open, then ranged GETs pinned to that version by If-Match.

Every GET carries ``Range`` and ``If-Match: <ETag from HEAD>`` and its reply must be a 206
whose ``Content-Range`` is exactly the range asked for (or a 200 carrying the whole object
when the range starts at 0); anything else is a ResponseError and its bytes are never used
(RELIABILITY.md invariant 2). Body faults are raised as they come, for BlockStream to resume.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

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
from .socket_receiver import CHUNK, chunk_reader, receive_into, shutdown_socket

__all__ = ["S3RangeReader", "head_object"]


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
            watch.after_fault(answered=S3_FAULTS.answered(exc), timed_out=False, progressed=False)
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
            read = chunk_reader(body)
            while remaining > 0:
                chunk = read(min(CHUNK, remaining))
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
        got = 0
        try:
            for count in receive_into(body, out, self.path):
                got += count
                yield count
        finally:
            self._done(body, unread=got < len(out) or leftover)

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
            shutdown_socket(body)
