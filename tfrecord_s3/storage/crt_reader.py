"""CrtRangeReader: S3RangeReader's contract (one HEAD at open, ranged GETs pinned to that
version by If-Match, replies checked) with the AWS Common Runtime carrying the GETs.

Each range is one CRT meta request: the CRT splits it into parts of at most
:data:`PART_SIZE` fetched over its own connections, and hands the parts over in order;
each is copied into the caller's block buffer as it lands. Faults come out as the
botocore/urllib3 exceptions the urllib3 path raises for the same fault (an S3 error reply
as a ``ClientError`` with its code and status, a refused connection as
``EndpointConnectionError``...), so BlockStream classifies, retries and translates them
(path, byte offset) exactly as it does for boto3's.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import botocore.exceptions as bce
import urllib3.exceptions as u3e

from ..config import S3Config
from ..errors import ObjectChangedError, ResponseError, StorageError
from .crt_client import crt_client, load_awscrt, signing_config
from .request_target import RequestTarget, target_of
from .s3_client import resolved_credentials
from .s3_errors import ShortBodyError
from .s3_path import S3Path
from .s3_reader import S3RangeReader, Stat, head_object

__all__ = ["PART_SIZE", "CrtRangeReader"]

MiB = 1024 * 1024
#: Largest part the CRT fetches a range in (one GET each, in parallel over its connections).
#: The default block in one part: the transfer scheduler keeps the GETs in flight, as for
#: urllib3 (8 MiB parts took twice the GETs and more CPU for no more MB/s, shaped or not).
PART_SIZE = 16 * MiB
_CODE = re.compile(rb"<Code>([^<]{1,128})</Code>")
# CRT error names (codes differ between releases; names do not) -> what boto3's stack raises.
_REFUSED = frozenset(
    {
        "AWS_IO_SOCKET_CONNECTION_REFUSED",
        "AWS_IO_SOCKET_NO_ROUTE_TO_HOST",
        "AWS_IO_SOCKET_NETWORK_DOWN",
        "AWS_IO_DNS_INVALID_NAME",
        "AWS_IO_DNS_QUERY_FAILED",
        "AWS_IO_DNS_NO_ADDRESS_FOR_HOST",
    }
)
_CONNECT_TIMEOUT = frozenset({"AWS_IO_SOCKET_TIMEOUT"})
# Replies the CRT refused for not carrying the range asked for: never retried, as on urllib3.
_WRONG_REPLY = frozenset(
    {
        "AWS_ERROR_S3_MISSING_CONTENT_RANGE_HEADER",
        "AWS_ERROR_S3_INVALID_CONTENT_RANGE_HEADER",
        "AWS_ERROR_S3_MISSING_CONTENT_LENGTH_HEADER",
        "AWS_ERROR_S3_INVALID_CONTENT_LENGTH_HEADER",
        "AWS_ERROR_S3_INVALID_RESPONSE_STATUS",
        "AWS_ERROR_S3_INVALID_RANGE_HEADER",
        "AWS_ERROR_DEST_COPY_TOO_SMALL",  # a body longer than the part (a 200 with the whole object)
    }
)
_TLS = re.compile(r"^AWS_IO_TLS_|^AWS_ERROR_TLS|^S2N_")


class CrtRangeReader(S3RangeReader):
    """A :class:`~tfrecord_s3.storage.stream.IntoRangeReader` over one S3 object version,
    through ``awscrt``. Thread-safe; pickles without a client (looked up per process)."""

    def __init__(
        self, location: S3Path, config: S3Config, *, head: dict[str, Any] | None = None, stat: Stat = head_object
    ) -> None:
        load_awscrt()  # a clear ConfigError now, not at the first read
        # Never lazy: the CRT splits a range into parts by the size it is given, so the size
        # must be known before the first GET.
        super().__init__(location, config, head=head, stat=stat)

    def read_range(self, start: int, end: int) -> bytes:
        out = bytearray(end - start)
        for _ in self.readinto_range(start, end, memoryview(out)):
            pass
        return bytes(out)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Chunks of bytes ``[start, end)`` as they arrive (one per part)."""
        out = bytearray(end - start)
        view = memoryview(out)
        done = 0
        for count in self.readinto_range(start, end, view):
            yield bytes(view[done : done + count])
            done += count

    def readinto_range(self, start: int, end: int, out: memoryview) -> Iterator[int]:
        """Write bytes ``[start, end)`` into ``out`` as parts arrive, yielding each count
        written; raises like :meth:`S3RangeReader.readinto_range`. Nothing is written into
        ``out`` once this generator is closed."""
        if len(out) != end - start:
            raise ValueError(f"buffer of {len(out)} bytes for a {end - start}-byte range")
        if not 0 <= start < end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside {self.path} of {self.size} bytes")
        target = target_of(self._location, self._config)
        transfer = _Transfer(self, out, start, end, target)
        request = self._send(transfer, target)
        with self._live_lock:
            self._live.add(request)
        given = 0
        try:
            while True:
                received, done, error = transfer.wait(given, self._config.read_timeout)
                if received > given:
                    yield received - given
                    given = received
                    continue
                if error is not None:
                    raise error
                if done:
                    if given != end - start:
                        raise ShortBodyError(f"{self.path}: body ended {end - start - given} bytes early")
                    return
                # Not one part within the read timeout: a stall, as urllib3 would say.
                raise bce.ReadTimeoutError(endpoint_url=target.endpoint_url)
        finally:
            transfer.close()
            if not transfer.done:
                request.cancel()
            with self._live_lock:
                self._live.discard(request)

    def _send(self, transfer: _Transfer, target: RequestTarget) -> Any:
        awscrt = load_awscrt()
        credentials = resolved_credentials()
        if credentials is None:
            raise bce.NoCredentialsError()
        headers = awscrt.http.HttpHeaders(
            [("Host", target.host), ("Range", f"bytes={transfer.start}-{transfer.end - 1}")]
        )
        if self.etag:
            headers.add("If-Match", self.etag)
        return crt_client(self._config).make_request(
            type=awscrt.s3.S3RequestType.GET_OBJECT,
            request=awscrt.http.HttpRequest("GET", target.path, headers),
            signing_config=signing_config(self._config, credentials),
            part_size=min(PART_SIZE, transfer.end - transfer.start),
            on_headers=transfer.on_headers,
            on_body=transfer.on_body,
            on_done=transfer.on_done,
        )

    def abort(self) -> None:
        """Cancel the GETs in progress (their reads end now)."""
        with self._live_lock:
            requests = list(self._live)
        for request in requests:
            request.cancel()


class _Transfer:
    """One range's progress, written by the CRT's threads and read by the reader's."""

    def __init__(self, reader: CrtRangeReader, out: memoryview, start: int, end: int, target: RequestTarget) -> None:
        self._reader = reader
        self._out = out
        self.start = start
        self.end = end
        self._target = target
        self._changed = threading.Condition()
        self._received = 0
        self._error: BaseException | None = None
        self._closed = False
        self._headers = False
        self.done = False

    def wait(self, given: int, timeout: float) -> tuple[int, bool, BaseException | None]:
        """(bytes written so far, whether the request ended, its fault), read together once
        there are more than ``given`` bytes, or the request ended, or ``timeout`` passed."""
        with self._changed:
            self._changed.wait_for(lambda: self._received > given or self.done, timeout)
            return self._received, self.done, self._error

    def close(self) -> None:
        with self._changed:
            self._closed = True

    def on_headers(self, status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
        values = {name.lower(): value for name, value in headers}
        if not 200 <= status_code < 300:
            return  # an error reply: on_done has its code
        length = values.get("content-length", "")
        response = {
            "ResponseMetadata": {"HTTPStatusCode": status_code},
            "ETag": values.get("etag"),
            "ContentRange": values.get("content-range"),
            "ContentLength": int(length) if length.isdigit() else -1,
        }
        # A 200 carrying the whole object is fine for a range from 0 to the end only: the
        # CRT would pass on the bytes past what was asked.
        whole = self._reader._check_reply(response, self.start, self.end)
        if whole and self.end < self._reader.size:
            raise ResponseError(
                f"read {self._reader.path} at byte {self.start}: HTTP 200 with the whole object for a range",
                path=self._reader.path,
                operation="read",
            )
        self._headers = True

    def on_body(self, chunk: bytes, offset: int, **_: Any) -> None:
        with self._changed:
            if self._closed:
                return  # the reader gave up on this range; its buffer is no longer ours
            at = offset - self.start
            if at != self._received or at + len(chunk) > len(self._out):
                raise ResponseError(
                    f"read {self._reader.path} at byte {self.start + self._received}: "
                    f"{len(chunk)} bytes for offset {offset}",
                    path=self._reader.path,
                    operation="read",
                )
            self._out[at : at + len(chunk)] = chunk
            self._received += len(chunk)
            self._changed.notify_all()

    def on_done(self, error: BaseException | None, status_code: int | None = None, **_: Any) -> None:
        with self._changed:
            self._error = None if error is None else self._fault(error, status_code)
            self.done = True
            self._changed.notify_all()

    def _fault(self, error: BaseException, status_code: int | None) -> BaseException:
        """The exception boto3's stack raises for the same fault (see the module doc)."""
        if isinstance(error, (StorageError, ShortBodyError)):
            return error  # raised by our own callbacks
        body = getattr(error, "body", None)
        headers = getattr(error, "headers", None)
        if status_code and headers is not None:
            found = _CODE.search(body) if isinstance(body, bytes) else None
            code = found.group(1).decode("ascii", "replace") if found else str(status_code)
            reply: Any = {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status_code}}
            return bce.ClientError(reply, "GetObject")
        name = str(getattr(error, "name", type(error).__name__))
        url = self._target.endpoint_url
        path, offset = self._reader.path, self.start + self._received
        if name in _WRONG_REPLY:
            return ResponseError(
                f"read {path} at byte {offset}: a reply that does not carry the range asked for ({name})",
                path=path,
                operation="read",
            )
        if name == "AWS_ERROR_S3_OBJECT_MODIFIED":
            return ObjectChangedError(
                f"read {path} at byte {offset}: the object changed while it was being read (its ETag changed)",
                path=path,
                operation="read",
            )
        if name in _REFUSED:
            refused = ConnectionRefusedError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED))
            return bce.EndpointConnectionError(endpoint_url=url, error=refused)
        if name in _CONNECT_TIMEOUT and not self._headers:
            return bce.ConnectTimeoutError(endpoint_url=url)
        if _TLS.match(name):
            return StorageError(
                f"read {path} at byte {offset}: the TLS handshake with {url} failed ({name}): "
                "if its certificate is signed by a private CA set S3_CA_FILE to that CA; if it speaks plain "
                "HTTP set S3_USE_HTTPS=0",
                path=path,
                operation="read",
            )
        if name == "AWS_ERROR_S3_CANCELED":
            return ConnectionAbortedError(errno.ECONNABORTED, "the GET was cancelled")
        if not self._headers and self._received == 0:
            return bce.ConnectionClosedError(endpoint_url=url)
        return u3e.ProtocolError(f"Connection broken: {name}", error)
