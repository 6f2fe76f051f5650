"""BlockStream: a seekable binary stream over any RangeReader, in block-sized reads.

The object is read in aligned blocks of ``block_size`` bytes; while the consumer reads one
block, the next ``read_ahead`` blocks are fetched on a small per-stream thread pool, so a
single large object streams with the network kept busy. A fault while a body streams is
resumed from the next unconsumed byte (never from the block start: no byte is fetched
twice, none skipped), with jittered backoff within the retry budget (RELIABILITY.md
invariant 3). A block's error is raised when the consumer reaches that block, after every
byte before it.

Readers that can stream a range get resumed mid-block: best those that write it into our
block buffer (``readinto_range``: no copy, no bytes object per chunk), else those yielding
chunks (``iter_range``); plain :class:`~tfrecord_s3.storage.base.RangeReader`\\ s are retried
whole. Block buffers are recycled once the consumer has moved past them.
"""

from __future__ import annotations

import io
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import ResponseError, RetriesExhaustedError, StorageError
from .base import RangeReader
from .retry import Backoff, RetryPolicy
from .s3_errors import Fault, ShortBodyError, classify, connection_detail, translate

__all__ = ["DEFAULT_BLOCK_SIZE", "BlockStream", "IntoRangeReader", "StreamCounters", "StreamingRangeReader"]

DEFAULT_BLOCK_SIZE = 16 * 1024 * 1024
_log = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    # The exception's type and, for S3 replies, code and status: never its text, which may
    # echo request details.
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code", "")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode", "")
        return f"{type(exc).__name__} {code} (HTTP {status})"
    return connection_detail(exc) or type(exc).__name__


@runtime_checkable
class StreamingRangeReader(RangeReader, Protocol):
    """A RangeReader that can also hand out a range as it arrives, chunk by chunk."""

    def iter_range(self, start: int, end: int) -> Iterator[bytes]: ...


@runtime_checkable
class IntoRangeReader(RangeReader, Protocol):
    """A RangeReader that writes a range into the caller's buffer as it arrives."""

    def readinto_range(self, start: int, end: int, out: memoryview) -> Iterator[int]:
        """Fill ``out`` (``end - start`` bytes) from its start, yielding each count written."""
        ...


@dataclass(frozen=True)
class StreamCounters:
    """What a stream has cost so far."""

    requests: int  # range requests issued (each GET try counts)
    bytes_requested: int  # sum of the lengths of those ranges
    bytes_received: int  # body bytes actually delivered
    retries: int  # tries after a fault (throttles included)
    throttles: int  # retries caused by 503 SlowDown and the like


class _Progress:
    """Bytes of the current block received so far: where a retry resumes."""

    __slots__ = ("received",)

    def __init__(self) -> None:
        self.received = 0


class _Closed(Exception):
    """Internal: the stream was closed while a block was being fetched."""


class BlockStream(io.RawIOBase):
    """Seekable raw binary stream over ``reader``; wrap it in :class:`io.BufferedReader`.

    Raises (from ``read``/``readinto``) ObjectChangedError, ObjectNotFoundError,
    AccessDeniedError, ResponseError, or RetriesExhaustedError (``.offset`` = the first byte
    not delivered, ``.attempts``). ``close()`` is idempotent, interrupts backoffs and joins
    every read-ahead thread.
    """

    def __init__(
        self,
        reader: RangeReader,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        read_ahead: int = 2,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        classify_fault: Callable[[BaseException], Fault] = classify,
    ) -> None:
        super().__init__()
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, not {block_size}")
        if read_ahead < 0:
            raise ValueError(f"read_ahead must be >= 0, not {read_ahead}")
        self._reader = reader
        self._size = reader.size
        self._path = reader.path
        self._block_size = block_size
        self._read_ahead = read_ahead
        self._classify = classify_fault
        self._cancel = threading.Event()
        self._backoff = Backoff(policy or RetryPolicy(), sleep=sleep, rng=rng, cancel=self._cancel)
        self._into = isinstance(reader, IntoRangeReader)
        self._streaming = isinstance(reader, StreamingRangeReader)
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes_requested = 0
        self._bytes_received = 0
        self._pos = 0
        self._block_index = -1
        self._block: memoryview = memoryview(b"")
        self._pending: dict[int, Future[memoryview]] = {}
        # Buffers of blocks the consumer has left, for the next fetches (deque: thread-safe).
        self._spare: deque[bytearray] = deque()
        self._executor: ThreadPoolExecutor | None = None

    # -- what callers and benchmarks read ---------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    @property
    def path(self) -> str:
        return self._path

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def requests(self) -> int:
        return self._requests

    @property
    def bytes_requested(self) -> int:
        return self._bytes_requested

    @property
    def retries(self) -> int:
        return self._backoff.retries

    @property
    def throttles(self) -> int:
        return self._backoff.throttles

    def counters(self) -> StreamCounters:
        with self._lock:
            return StreamCounters(
                requests=self._requests,
                bytes_requested=self._bytes_requested,
                bytes_received=self._bytes_received,
                retries=self._backoff.retries,
                throttles=self._backoff.throttles,
            )

    # -- io.RawIOBase -----------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target} in {self._path}")
        self._pos = target
        return target

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._check_open()
        pos = self._pos
        if pos >= self._size or len(buffer) == 0:
            return 0
        index = pos // self._block_size
        block = self._block if index == self._block_index else self._block_at(index)
        inner = pos - index * self._block_size
        count = min(len(buffer), len(block) - inner)
        with memoryview(buffer) as out:
            out[:count] = block[inner : inner + count]
        self._pos = pos + count
        return count

    def readall(self) -> bytes:
        self._check_open()
        parts = []
        while self._pos < self._size:
            index = self._pos // self._block_size
            block = self._block_at(index)
            inner = self._pos - index * self._block_size
            parts.append(block[inner:].tobytes())
            self._pos += len(block) - inner
        return b"".join(parts)

    def abort(self) -> None:
        """From any thread: end every fetch in progress now (a stalled GET included) and
        make further reads fail; the thread that owns the stream still calls ``close()``."""
        self._cancel.set()
        abort = getattr(self._reader, "abort", None)
        if abort is not None:
            abort()  # unblock a GET stalled in recv()

    def close(self) -> None:
        if self.closed:
            return
        self.abort()  # so the join below is prompt
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        self._spare.clear()
        self._block = memoryview(b"")
        closer = getattr(self._reader, "close", None)
        if closer is not None:
            closer()
        super().close()

    def __getstate__(self) -> object:
        raise TypeError(f"cannot pickle an open stream of {self._path}; pickle its path and config")

    # -- blocks -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed stream {self._path}")

    def _block_at(self, index: int) -> memoryview:
        if index == self._block_index:
            return self._block
        sequential = index == self._block_index + 1
        future = self._pending.pop(index, None)
        # Drop read-ahead the reader has moved past (or away from, after a seek).
        window = range(index + 1, index + 1 + self._read_ahead)
        for stale in [i for i in self._pending if i not in window]:
            self._pending.pop(stale).cancel()
        if sequential and self._read_ahead:
            for ahead in window:
                if ahead * self._block_size >= self._size:
                    break
                if ahead not in self._pending:
                    self._pending[ahead] = self._pool().submit(self._fetch_block, ahead)
        # The block being left is no longer read: its buffer can take a later block.
        self._recycle(self._block)
        self._block, self._block_index = memoryview(b""), -1
        # The block wanted now is fetched on the caller's thread unless already under way.
        block = future.result() if future is not None else self._fetch_block(index)
        self._block, self._block_index = block, index
        return block

    def _recycle(self, block: memoryview) -> None:
        buffer = block.obj
        if isinstance(buffer, bytearray) and len(buffer) == self._block_size and len(self._spare) <= self._read_ahead:
            self._spare.append(buffer)

    def _buffer(self, length: int) -> memoryview:
        """A writable view of ``length`` bytes: a recycled block buffer when there is one."""
        if length < self._block_size:
            return memoryview(bytearray(length))  # the last block, or a small object
        try:
            buffer = self._spare.pop()
        except IndexError:
            buffer = bytearray(self._block_size)
        return memoryview(buffer)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._read_ahead, thread_name_prefix="tfrecord-s3-readahead")
        return self._executor

    def _fetch_block(self, index: int) -> memoryview:
        start = index * self._block_size
        return self._fetch(start, min(start + self._block_size, self._size))

    def _fetch(self, start: int, end: int) -> memoryview:
        """Bytes ``[start, end)``, resuming after faults from the first byte not yet received."""
        want = end - start
        out = self._buffer(want)
        progress = _Progress()
        attempt = 0
        refreshed = False
        while True:
            if self._cancel.is_set():
                raise _Closed
            attempt += 1
            here = start + progress.received
            before = progress.received
            self._count_request(end - here)
            try:
                self._receive(here, end, out, progress)
            except _Closed:
                raise
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise
                if self._cancel.is_set():
                    raise _Closed from exc
                if progress.received == want and not isinstance(exc, StorageError):
                    return out  # every byte arrived; the fault came after the last one
                fault = self._classify(exc)
                if fault is Fault.REFRESH:
                    # Once per block: a token that is still expired after a refresh is denied.
                    refresh = getattr(self._reader, "refresh_credentials", None)
                    if refreshed or refresh is None:
                        fault = Fault.FATAL
                    else:
                        refreshed = True
                        _log.warning(
                            "tfrecord_s3: %s at byte %d: %s; fetching fresh credentials and retrying",
                            self._path,
                            start + progress.received,
                            _describe(exc),
                        )
                        refresh()
                        continue
                if fault is Fault.FATAL:
                    if isinstance(exc, StorageError):
                        raise
                    raise translate(exc, self._path, "read", start + progress.received) from exc
                progressed = progress.received > before
                if progressed:
                    attempt = 1  # the budget still bounds a connection that always breaks
                _log.warning(
                    "tfrecord_s3: %s at byte %d: %s on try %d%s; retrying from that byte",
                    self._path,
                    start + progress.received,
                    _describe(exc),
                    attempt,
                    " (throttled)" if fault is Fault.THROTTLE else "",
                )
                if not self._backoff.try_spend(attempt, throttled=fault is Fault.THROTTLE):
                    if self._cancel.is_set():
                        raise _Closed from exc
                    offset = start + progress.received
                    raise RetriesExhaustedError(
                        f"read {self._path} at byte {offset}: gave up after {attempt} tries "
                        f"({self._backoff.retries} retries on this stream): {_describe(exc)}",
                        path=self._path,
                        operation="read",
                        attempts=attempt,
                        offset=offset,
                    ) from exc
                continue
            finally:
                self._count_received(progress.received - before)
            if progress.received != want:  # pragma: no cover - _receive guarantees it
                raise ResponseError(f"read {self._path}: got {progress.received} of {want} bytes at byte {start}")
            return out

    def _receive(self, start: int, end: int, out: memoryview, progress: _Progress) -> None:
        """Write bytes ``[start, end)`` into ``out`` from ``progress.received`` on, counting
        there every byte as it lands; raise on any fault."""
        want = end - start
        at = progress.received
        reader = self._reader
        if self._into:
            assert isinstance(reader, IntoRangeReader)
            counts = reader.readinto_range(start, end, out[at:])
            try:
                for count in counts:
                    progress.received += count
                    if self._cancel.is_set():
                        raise _Closed
            finally:
                counts.close()  # type: ignore[attr-defined]
            got = progress.received - at
        elif self._streaming:
            assert isinstance(reader, StreamingRangeReader)
            chunks = reader.iter_range(start, end)
            got = 0
            try:
                for chunk in chunks:
                    if got + len(chunk) > want:
                        self._check_length(start, got + len(chunk), want)
                    out[at + got : at + got + len(chunk)] = chunk
                    got += len(chunk)
                    progress.received += len(chunk)
                    if self._cancel.is_set():
                        raise _Closed
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        else:
            chunk = reader.read_range(start, end)
            self._check_length(start, len(chunk), want)
            out[at:] = chunk
            progress.received += want
            return
        if got < want:
            raise ShortBodyError(f"{self._path}: body ended after {got} of {want} bytes at byte {start}")

    def _check_length(self, start: int, got: int, want: int) -> None:
        if got > want:
            raise ResponseError(
                f"read {self._path} at byte {start}: server sent {got} bytes for a {want}-byte range",
                path=self._path,
                operation="read",
            )
        if got < want:
            raise ShortBodyError(f"{self._path}: {got} of {want} bytes at byte {start}")

    def _count_request(self, length: int) -> None:
        with self._lock:
            self._requests += 1
            self._bytes_requested += length

    def _count_received(self, length: int) -> None:
        with self._lock:
            self._bytes_received += length
