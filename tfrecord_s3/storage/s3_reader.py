"""S3RangeReader: ranged GETs pinned to one object version by If-Match.

The version (size and ETag) comes from a listing or a HEAD at open, or, for a ``lazy``
reader, from the reply to its first GET (``Content-Range: bytes 0-N/<size>`` and ``ETag``):
opening and reading an object then costs no HEAD. Every later GET carries ``Range`` and
``If-Match: <that ETag>`` and its reply must be a 206 whose ``Content-Range`` is exactly the
range asked for (or a 200 carrying the whole object when the range starts at 0); anything
else is a ResponseError and its bytes are never used (RELIABILITY.md invariant 2). Body
faults are raised as they come, for BlockStream to resume.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions as bce
from botocore.exceptions import ClientError

from ..config import S3Config
from ..errors import ConfigError, ObjectChangedError, ObjectNotFoundError, ResponseError, StorageError
from .direct_get import get_object
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

#: What HEADs an object for a reader: :func:`head_object`, or a caller's (which may say more
#: of a key that is not there, e.g. that it is a prefix).
Stat = Callable[[S3Path, S3Config], dict[str, Any]]
_TOTAL = re.compile(r"bytes \d+-\d+/(\d+)")


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

    def __init__(
        self,
        location: S3Path,
        config: S3Config,
        *,
        head: dict[str, Any] | None = None,
        lazy: bool = False,
        stat: Stat = head_object,
    ) -> None:
        """``head``: what a listing said of the object (no HEAD). Else ``stat`` HEADs it now,
        or, ``lazy``, only if the size is asked for before a GET's reply said it (and after a
        first GET refused: 416 for an empty object, or 404/403, whose typed error is the
        HEAD's)."""
        self._location = location
        self._config = config
        self._stat = stat
        if head is None and not lazy:
            head = stat(location, config)
        self._size: int | None = None if head is None else int(head["ContentLength"])
        self._etag: str | None = None if head is None else head.get("ETag")
        self._live: set[Any] = set()
        self._live_lock = threading.Lock()

    @property
    def size(self) -> int:
        """The object's size: a lazy reader not yet told it by a reply HEADs for it."""
        size = self._size
        return size if size is not None else self._head()

    @property
    def known_size(self) -> int | None:
        """The size if known without a request (None for a lazy reader before its first reply)."""
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
        ObjectChangedError/ResponseError for replies that must not be used. While the size
        is unknown, ``end`` may pass the object's end: the chunks stop there."""
        reply = self._get(start, end)
        if reply is None:
            return
        body, end, leftover = reply
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
        reply = self._get(start, end)
        if reply is None:
            return
        body, end, leftover = reply
        out = out[: end - start]
        got = 0
        try:
            for count in receive_into(body, out, self.path):
                got += count
                yield count
        finally:
            self._done(body, unread=got < len(out) or leftover)

    def _get(self, start: int, end: int) -> tuple[Any, int, bool] | None:
        """(the body of a checked ranged GET, where its range ends, whether a whole-object
        200 leaves bytes unread); tracked for :meth:`abort`. While the size is unknown the
        range may pass the object's end, and None says ``start`` is at or past it."""
        size = self._size
        if not 0 <= start < end <= (end if size is None else size):
            raise ValueError(f"range [{start}, {end}) outside {self.path} of {size} bytes")
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if self._etag:
            headers["If-Match"] = self._etag
        client = get_client(self._config, "data")  # a ConfigError (say, no such profile) is no cut reply
        try:
            response = get_object(client, self._location, self._config, headers)
        except ClientError as exc:
            _answered_endpoints.add(self._config.endpoint_url)
            if size is not None or not self._refused_first(exc):
                raise
            # The first GET was refused: the HEAD says why in its typed error (the same as
            # a HEAD at open), or gives the size (an empty object, or ``start`` past its end).
            return self._after_head(start, end)
        except ValueError as exc:
            # botocore could not parse a header (a Last-Modified or Content-Length cut short
            # with the connection): a cut reply; a server that always sends one exhausts the
            # retries.
            raise CutReplyError(f"{self.path}: reply with an unreadable header, at byte {start}") from exc
        except bce.ConnectionError:  # no connection at all (refused, timed out, TLS)
            if size is not None or self._config.endpoint_url in _answered_endpoints:
                raise  # BlockStream retries: the server answered before
            # An endpoint never heard from is more likely misconfigured: the HEAD says so at
            # once, as it did at open (or it answers now, and says the size).
            return self._after_head(start, end)
        _answered_endpoints.add(self._config.endpoint_url)
        body = response["Body"]
        with self._live_lock:
            self._live.add(body)
        try:
            if size is None:
                end = self._learn(response, start, end)
            # A 200 with the whole object, of which we read a prefix: the rest stays unread.
            leftover = self._check_reply(response, start, end) and end < self.size
        except BaseException as exc:
            cut = isinstance(exc, (ResponseError, ObjectChangedError)) and reply_was_cut(body)
            self._done(body, unread=True)
            if cut:  # not a reply that breaks the protocol: one cut short, worth a retry
                raise CutReplyError(f"{self.path}: reply cut inside its headers, at byte {start}") from exc
            raise
        return body, end, leftover

    @staticmethod
    def _refused_first(exc: ClientError) -> bool:
        """Whether a first GET's refusal is one a HEAD explains: 416 (an empty object, or a
        range past the end) and the fatal ones (404, 403); not throttles, 5xx, expired tokens."""
        return http_status(exc) == 416 or classify(exc) is Fault.FATAL

    def _after_head(self, start: int, end: int) -> tuple[Any, int, bool] | None:
        """A first GET that failed: HEAD (raising its typed error), then GET again knowing
        the size, or None when ``start`` is at or past the end."""
        size = self._head()
        return self._get(start, min(end, size)) if start < size else None

    def _head(self) -> int:
        """HEAD the object (``stat``) and keep what a reply has not said yet; its size."""
        head = self._stat(self._location, self._config)
        with self._live_lock:
            if self._size is None:
                self._size, self._etag = int(head["ContentLength"]), head.get("ETag")
            return self._size

    def _learn(self, response: dict[str, Any], start: int, end: int) -> int:
        """Take the size and ETag from the first reply (a 206's ``Content-Range`` total, a
        whole-object 200's length); where the range asked for ends in the object."""
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        total: int | None = None
        if status == 206:
            found = _TOTAL.fullmatch(str(response.get("ContentRange", "")))
            total = int(found.group(1)) if found else None
        elif status == 200 and start == 0:
            total = int(response.get("ContentLength", -1))
        if total is None or total < 0:
            problem = f"HTTP {status} with Content-Range {response.get('ContentRange')!r}"
            raise ResponseError(
                f"read {self.path} at byte {start}: {problem}, which does not say the object's size",
                path=self.path,
                operation="read",
            )
        with self._live_lock:
            if self._size is None:  # a hedged twin's reply may have said it first
                self._size, self._etag = total, response.get("ETag")
            return min(end, self._size)

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
            expected = f"bytes {start}-{end - 1}/{self.size}"
            got = response.get("ContentRange")
            if got == expected:
                return False
            problem = f"Content-Range {got!r} instead of {expected!r}"
        elif status == 200:
            if start == 0 and int(response.get("ContentLength", -1)) == self.size:
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
