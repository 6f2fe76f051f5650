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
whole. Block buffers are recycled once the consumer has moved past them. With ``hedge``, a
try of a reader that resumes mid-block runs on a thread of its own and is raced by a second
GET when it is far slower than its peers (see :mod:`~tfrecord_s3.storage.hedging`).

What a fault means (retry, back off, refresh credentials, or raise which typed error) is
the transport's to say: the reader hands in its
:class:`~tfrecord_s3.storage.faults.TransportFaults` as ``reader.faults`` (S3's for
:class:`~tfrecord_s3.storage.s3_reader.S3RangeReader`); readers without one get the
neutral builtin-exception rules. Nothing here knows botocore.

A reader that learns its size from its first reply (a :class:`ProbingRangeReader` whose
``known_size`` is None, e.g. an S3 object opened without a HEAD) gets its first block asked
for at the size it would have without knowing the object's end; the reply may be shorter
(a small object) or empty (``start`` at or past the end). Read-ahead starts once the size
is known. Asking for ``size`` before that costs the reader a HEAD.
"""

from __future__ import annotations

import io
import logging
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from ..errors import ResponseError, RetriesExhaustedError, StorageError
from . import exit_safety
from .base import RangeReader
from .buffers import process_buffers
from .faults import Fault, ShortBodyError, TransportFaults, faults_of
from .hedging import Closed, HedgePolicy, LatencyTracker, Leg, Progress, join, process_tracker, race
from .retry import Backoff, RetryPolicy
from .scheduler import TransferScheduler

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "BlockStream",
    "IntoRangeReader",
    "ProbingRangeReader",
    "StreamCounters",
    "StreamingRangeReader",
]

DEFAULT_BLOCK_SIZE = 16 * 1024 * 1024
#: Growing blocks: an object (or the rest of one, after a seek) within this many first blocks
#: is fetched in one GET; the round trip saved is worth more than the earlier first byte.
_WHOLE_OBJECT_BLOCKS = 4
_log = logging.getLogger(__name__)
_UNSAID = object()  # a reader without ``known_size``: its ``size`` is always known


def _offers(reader: object, method: str) -> bool:
    # Not isinstance() against the protocols: that reads every member, ``size`` too, which
    # costs a probing reader a HEAD.
    return callable(getattr(reader, method, None))


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


@runtime_checkable
class ProbingRangeReader(RangeReader, Protocol):
    """A RangeReader that may not know its size before its first read.

    While ``known_size`` is None, a range may pass the object's end: the reader serves the
    part inside it (nothing when ``start`` is at or past the end) and knows its size after
    that read, fault or not, once a reply said it; ``size`` finds it out at a cost."""

    @property
    def known_size(self) -> int | None: ...


@dataclass(frozen=True)
class StreamCounters:
    """What a stream has cost so far."""

    requests: int  # range requests issued (each GET try counts)
    bytes_requested: int  # sum of the lengths of those ranges
    bytes_received: int  # body bytes actually delivered
    retries: int  # tries after a fault (throttles included)
    throttles: int  # retries caused by 503 SlowDown and the like
    hedges: int = 0  # second GETs raced against a slow one (counted in requests too)


@dataclass(frozen=True)
class _Ahead:
    """A block fetched ahead of the consumer: bytes [start, end)."""

    start: int
    end: int
    future: Future[memoryview]


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
        faults: TransportFaults | None = None,
        scheduler: TransferScheduler | None = None,
        first_block: int | None = None,
        max_bytes_in_flight: int = 256 * 1024 * 1024,
        clock: Callable[[], float] | None = None,
        hedge: HedgePolicy | None = None,
        latency: LatencyTracker | None = None,
    ) -> None:
        super().__init__()
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, not {block_size}")
        if read_ahead < 0:
            raise ValueError(f"read_ahead must be >= 0, not {read_ahead}")
        if first_block is not None and first_block < 1:
            raise ValueError(f"first_block must be None or >= 1, not {first_block}")
        self._reader = reader
        # None until the reader's first reply says it (a probing reader).
        known = getattr(reader, "known_size", _UNSAID)
        self._size: int | None = reader.size if known is _UNSAID else cast("int | None", known)
        self._path = reader.path
        self._block_size = block_size
        # With a scheduler, read_ahead caps the blocks one stream keeps ahead and the
        # scheduler's window decides how many of them are in flight; without, it is the window.
        self._read_ahead = read_ahead
        self._scheduler = scheduler
        self._max_bytes = max_bytes_in_flight
        self._first_block = None if first_block is None else min(first_block, block_size)
        # A first block of the full size says nobody waits on this stream's first record (a
        # dataset's file opened ahead): its read-ahead starts with its first GET, at full
        # width, instead of the slow start that keeps a small first GET alone.
        self._eager = scheduler is not None and first_block is not None and first_block >= block_size
        # How this transport's exceptions are retried, raised and logged: the reader's own
        # (``reader.faults``) unless given here.
        self._faults = faults if faults is not None else faults_of(reader)
        self._classify = self._faults.classify
        self._cancel = threading.Event()
        self._backoff = Backoff(policy or RetryPolicy(), sleep=sleep, rng=rng, cancel=self._cancel, clock=clock)
        self._into = _offers(reader, "readinto_range")
        self._streaming = _offers(reader, "iter_range")
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes_requested = 0
        self._bytes_received = 0
        self._hedges = 0
        # Hedged GETs (see hedging.py): only readers that resume mid-block can be raced.
        self._hedge = hedge if self._into or self._streaming else None
        self._latency = latency if latency is not None else process_tracker() if hedge is not None else None
        self._legs: set[Leg] = set()  # GETs of hedged tries whose threads still run
        self._pos = 0
        # The block being consumed covers [_block_start, _block_start + len(_block)).
        self._block_start = 0
        self._block: memoryview = memoryview(b"")
        # Blocks fetched ahead, by start offset, in file order; guarded by _plan (reentrant:
        # cancelling a future may run code that asks this stream for more).
        self._plan = threading.RLock()
        self._pending: dict[int, _Ahead] = {}
        self._ahead_from = 0  # where read-ahead continues when nothing is pending
        self._origin = 0  # where the growing block sizes started (first_block mode)
        self._probed_to = -1  # where a first block that found out the size ended
        self._reads = 0
        self._sequential = False
        self._waiting = False
        # Budget bytes (scheduler mode) held per block start: in flight, or fetched and unread.
        self._held: dict[int, int] = {}
        # Buffers of blocks the consumer has left go back to the process's pool, for any
        # stream's next fetches.
        self._buffers = process_buffers()
        self._buffers.attach()
        self._executor: ThreadPoolExecutor | None = None
        if scheduler is not None:
            scheduler.attach()
        exit_safety.track(self)  # closed at interpreter exit if the user never closes it

    # -- what callers and benchmarks read ---------------------------------------------------

    @property
    def size(self) -> int:
        """The object's size (asked of the reader, at a cost, when no read has said it yet)."""
        if self._size is None:
            self._size = self._reader.size
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

    @property
    def hedges(self) -> int:
        return self._hedges

    def counters(self) -> StreamCounters:
        with self._lock:
            return StreamCounters(
                requests=self._requests,
                bytes_requested=self._bytes_requested,
                bytes_received=self._bytes_received,
                retries=self._backoff.retries,
                throttles=self._backoff.throttles,
                hedges=self._hedges,
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
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target} in {self._path}")
        self._pos = target
        return target

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._check_open()
        pos = self._pos
        if self._at_end(pos) or len(buffer) == 0:
            return 0
        block, inner = self._block, pos - self._block_start
        if not 0 <= inner < len(block):
            block = self._block_for(pos)
            inner = pos - self._block_start
            if self._at_end(pos):  # the first reply said the object ends before pos
                return 0
        count = min(len(buffer), len(block) - inner)
        with memoryview(buffer) as out:
            out[:count] = block[inner : inner + count]
        self._pos = pos + count
        return count

    def readall(self) -> bytes:
        self._check_open()
        parts = []
        while not self._at_end(self._pos):
            block, inner = self._block, self._pos - self._block_start
            if not 0 <= inner < len(block):
                block = self._block_for(self._pos)
                inner = self._pos - self._block_start
                if self._at_end(self._pos):
                    break
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
        exit_safety.untrack(self)
        self.abort()  # so the join below is prompt
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        join(self._legs)
        with self._plan:
            pending, self._pending = list(self._pending.values()), {}
            held, self._held = sum(self._held.values()), {}
        scheduler = self._scheduler
        if scheduler is not None:
            for entry in pending:
                if entry.future.cancelled():  # never ran: its slot was never given back
                    scheduler.request_done()
            scheduler.detach(self)
            scheduler.release(held)
        self._recycle(self._block)  # the last block read: no fetch writes into it any more
        self._block = memoryview(b"")
        self._buffers.detach()
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

    def _at_end(self, pos: int) -> bool:
        return self._size is not None and pos >= self._size

    def _size_learned(self) -> None:
        """The first reply of a probing reader came: read ahead from the end of its block."""
        with self._plan:
            self._learn_size(0)
        if self._size is not None:
            self.top_up()

    def _learn_size(self, end: int) -> int:
        """``end`` cut to the object's end once the reader knows it (a probing reader's
        first block may be asked for past it)."""
        if self._size is None:
            self._size = cast(ProbingRangeReader, self._reader).known_size
        return end if self._size is None else min(end, self._size)

    def _span_end(self, start: int) -> int:
        """Where the block starting at ``start`` ends: block-aligned, or (``first_block``) a
        size doubling from ``first_block`` at the origin up to ``block_size``. While the size
        is unknown, where the first block would end in an object with no end near."""
        if self._size is None:
            if self._first_block is None:
                return (start // self._block_size + 1) * self._block_size
            return start + self._first_block
        if self._first_block is None:
            return min(self._size, (start // self._block_size + 1) * self._block_size)
        first, left = self._first_block, self._size - start
        if start in (self._origin, self._probed_to) and left <= min(_WHOLE_OBJECT_BLOCKS * first, self._block_size):
            return self._size  # a small object (or its small rest, or what a probe left) in one GET
        end = start + min(self._block_size, max(first, start - self._origin + first))
        # No tail GET smaller than the first one (it would cost a round trip for little),
        # unless the merged one would pass block_size.
        return self._size if self._size - end < first and self._size - start <= self._block_size else end

    def _block_for(self, pos: int) -> memoryview:
        """Make the block holding ``pos`` current (its fetch joined, or run here) and return it."""
        cancelled: list[_Ahead] = []
        with self._plan:
            found = next((start for start, entry in self._pending.items() if entry.start <= pos < entry.end), None)
            if found is None:
                # The first read, or a seek away from what was fetched ahead.
                start = pos if self._first_block is not None else pos - pos % self._block_size
                sequential = start == self._ahead_from or (self._reads == 0 and self._first_block is not None)
                if self._first_block is not None:
                    self._origin = start
                entry = None
                end = self._span_end(start)
                stale = list(self._pending)
            else:
                entry = self._pending.pop(found)
                start, end, sequential = entry.start, entry.end, True
                stale = [s for s in self._pending if s < start]
            for s in stale:
                cancelled.append(self._pending.pop(s))
            self._reads += 1
            self._sequential = sequential
            # The block being left is no longer read: its buffer can take a later block.
            left = self._block_start if len(self._block) else None
            self._recycle(self._block)
            self._block, self._block_start = memoryview(b""), start
            self._ahead_from = end
            released = sum(self._held.pop(s, 0) for s in [left, *(c.start for c in cancelled)] if s is not None)
            if entry is None and self._scheduler is not None:
                self._held[start] = end - start
        self._settle(cancelled, released)
        if entry is None and self._scheduler is not None:
            self._scheduler.start_now(end - start)
        # The first GET of a stream goes alone: the first record waits for nothing else (and,
        # the size unknown, read-ahead waits for its reply to say where the object ends).
        first = self._reads == 1 and ((self._scheduler is not None and not self._eager) or self._size is None)
        if sequential and not first:
            self.top_up()
        # The block wanted now is fetched on the caller's thread unless already under way.
        if entry is not None:
            if not entry.future.done() and self._scheduler is not None:
                self._waiting = True
                self._scheduler.consumer_waited()
            try:
                block = entry.future.result()
            finally:
                self._waiting = False
        else:
            probing = self._size is None
            try:
                block = self._fetch(start, end)
            finally:
                if self._scheduler is not None:
                    self._scheduler.request_done()
            if probing:  # the reply said where the object ends
                with self._plan:
                    self._ahead_from = self._probed_to = start + len(block)
        self._block = block
        if sequential and first:
            self.top_up()
        return block

    def _settle(self, cancelled: list[_Ahead], released: int) -> None:
        """Cancel dropped read-ahead and give its budget back (never with ``_plan`` held)."""
        scheduler = self._scheduler
        for entry in cancelled:
            if entry.future.cancel() and scheduler is not None:
                scheduler.request_done()  # it never ran, so it never gave its slot back
        if scheduler is not None:
            scheduler.release(released)

    def urgency(self) -> tuple[int, int]:
        """For the scheduler: a waiting consumer first, then the fewest blocks ahead."""
        return (0 if self._waiting else 1, len(self._pending))

    def top_up(self) -> None:
        """Fetch ahead of the consumer: up to ``read_ahead`` blocks, or (scheduler) as many as
        the scheduler grants within that cap."""
        scheduler = self._scheduler
        with self._plan:
            if self._cancel.is_set() or not self._sequential or self._read_ahead == 0 or self._size is None:
                return
            last = next(reversed(self._pending.values()), None)
            start = last.end if last is not None else self._ahead_from
            cap = self._read_ahead
            if scheduler is not None and not self._eager:
                # Slow start per stream: 1, 2, 4... blocks ahead as its reader takes blocks, so a
                # new stream's first records do not wait behind a burst of new GET threads.
                cap = min(cap, 1 << min(self._reads - 1, 16))
            while start < self._size and len(self._pending) < cap:
                end = self._span_end(start)
                if scheduler is not None:
                    if not scheduler.try_start(self, end - start, self._max_bytes, sum(self._held.values())):
                        return
                    self._held[start] = end - start
                try:
                    future = self._pool().submit(self._fetch_ahead, start, end)
                except RuntimeError:  # the pool was shut down: the stream is closing
                    if scheduler is not None:
                        scheduler.request_done()
                    return
                self._pending[start] = _Ahead(start, end, future)
                start = end

    def _fetch_ahead(self, start: int, end: int) -> memoryview:
        try:
            return self._fetch(start, end)
        finally:
            if self._scheduler is not None:
                self._scheduler.request_done()

    def _recycle(self, block: memoryview) -> None:
        if len(block):
            self._buffers.give(block)

    def _buffer(self, length: int) -> memoryview:
        """A writable view of ``length`` bytes: a recycled block buffer when one fits."""
        return self._buffers.take(length)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._read_ahead, thread_name_prefix="tfrecord-s3-readahead")
        return self._executor

    def _fetch(self, start: int, end: int) -> memoryview:
        """Bytes ``[start, end)``, resuming after faults from the first byte not yet received."""
        want = end - start
        progress = Progress(self._buffer(want))
        watch = self._backoff.stall_watch()
        attempt = 0
        refreshed = False
        while True:
            if self._cancel.is_set():
                raise Closed
            attempt += 1
            here = start + progress.received
            before = progress.received
            self._count_request(end - here)
            try:
                self._try(start, end, progress)
            except Closed:
                raise
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    raise
                if self._cancel.is_set():
                    raise Closed from exc
                end = self._learn_size(end)
                want = max(end - start, 0)
                if progress.received == want and not isinstance(exc, StorageError):
                    return progress.out[:want]  # every byte arrived; the fault came after the last one
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
                            self._faults.describe(exc),
                        )
                        refresh()
                        continue
                if fault is Fault.FATAL:
                    if isinstance(exc, StorageError):
                        raise
                    raise self._faults.translate(exc, self._path, "read", start + progress.received) from exc
                if fault is Fault.THROTTLE and self._scheduler is not None:
                    self._scheduler.throttled()  # fewer GETs in flight, not only a pause
                progressed = progress.received > before
                faults = self._faults
                watch.after_fault(answered=faults.answered(exc), timed_out=faults.timed_out(exc), progressed=progressed)
                if progressed:
                    attempt = 1  # the budget still bounds a connection that always breaks
                _log.warning(
                    "tfrecord_s3: %s at byte %d: %s on try %d%s; retrying from that byte",
                    self._path,
                    start + progress.received,
                    self._faults.describe(exc),
                    attempt,
                    " (throttled)" if fault is Fault.THROTTLE else "",
                )
                if not self._backoff.try_spend(attempt, throttled=fault is Fault.THROTTLE, watch=watch):
                    if self._cancel.is_set():
                        raise Closed from exc
                    offset = start + progress.received
                    stalled = f", {watch.describe()}" if watch.spent() else ""
                    raise RetriesExhaustedError(
                        f"read {self._path} at byte {offset}: gave up after {attempt} tries "
                        f"({self._backoff.retries} retries on this stream{stalled}): {self._faults.describe(exc)}",
                        path=self._path,
                        operation="read",
                        attempts=attempt,
                        offset=offset,
                    ) from exc
                continue
            finally:
                self._count_received(progress.received - before)
                end = self._learn_size(end)
                want = max(end - start, 0)
            if progress.received != want:  # pragma: no cover - _receive guarantees it
                raise ResponseError(f"read {self._path}: got {progress.received} of {want} bytes at byte {start}")
            return progress.out[:want]

    def _try(self, start: int, end: int, progress: Progress) -> None:
        """One try for the bytes of block ``[start, end)`` not yet in ``progress``: raced by a
        second GET when it is slow (hedging on), else on this thread."""
        hedge, latency = self._hedge, self._latency
        if hedge is None or latency is None:
            self._receive(start + progress.received, end, progress.out, progress)
            return

        def receive(leg: Progress) -> None:
            self._receive(start + leg.received, end, leg.out, leg)

        def hedged(held: int) -> None:
            self._count_request(end - start - held)
            with self._lock:
                self._hedges += 1
            _log.debug("tfrecord_s3: %s at byte %d: slow GET, racing a second one", self._path, start + held)

        race(receive, progress, tracker=latency, policy=hedge, cancel=self._cancel, on_hedge=hedged, live=self._legs)

    def _receive(self, start: int, end: int, out: memoryview, progress: Progress) -> None:
        """Write bytes ``[start, end)`` into ``out`` from ``progress.received`` on, counting
        there every byte as it lands; raise on any fault."""
        want = end - start
        at = progress.received
        reader = self._reader
        note = self._scheduler.received if self._scheduler is not None else None
        # An eager stream's first reply says the size: its read-ahead starts then, not once
        # the whole first block is in (that is a whole block's transfer time later).
        learn = self._eager and self._size is None
        if self._into:
            counts = cast(IntoRangeReader, reader).readinto_range(start, end, out[at : at + want])
            try:
                for count in counts:
                    progress.received += count
                    if note is not None:
                        note(count)
                    if learn:
                        learn = False
                        self._size_learned()
                    if progress.tick() or self._cancel.is_set():
                        raise Closed
            finally:
                counts.close()  # type: ignore[attr-defined]
            got = progress.received - at
        elif self._streaming:
            chunks = cast(StreamingRangeReader, reader).iter_range(start, end)
            got = 0
            try:
                for chunk in chunks:
                    if got + len(chunk) > want:
                        self._check_length(start, got + len(chunk), want)
                    out[at + got : at + got + len(chunk)] = chunk
                    got += len(chunk)
                    progress.received += len(chunk)
                    if note is not None:
                        note(len(chunk))
                    if learn:
                        learn = False
                        self._size_learned()
                    if progress.tick() or self._cancel.is_set():
                        raise Closed
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        else:
            chunk = reader.read_range(start, end)
            self._check_length(start, len(chunk), want)
            out[at:] = chunk
            progress.received += want
            if note is not None:
                note(want)
            return
        want = max(self._learn_size(end) - start, 0)
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
