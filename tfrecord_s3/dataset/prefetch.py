"""One file read ahead in a background thread into a queue bounded in bytes.

The producer hands records over in chunks (a list per lock round-trip, not a record), so
the cost of the hand-off is paid per chunk. Errors travel as values behind the records that
came before them and are raised by the consumer when it reaches them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptRecordError, RecordError
from ..records.framing import FRAME_OVERHEAD, iter_frame_lists
from ..records.reader import open_record_stream
from .stats import DatasetStats, FileTiming

# A chunk is a list of records, or one marker (Skipped, FileEnd, Failure) on its own: the
# consumer can slice runs of records out of a chunk without looking at each item.
# Flush a chunk to the consumer once it holds this many bytes or records, or at once when
# the consumer is waiting (so the first record is not held back behind a full chunk).
_CHUNK_BYTES = 1 << 20
_CHUNK_RECORDS = 1024
_WAIT_SECONDS = 0.5


@dataclass(frozen=True)
class Skipped:
    """A record dropped after a data CRC failure (``on_corrupt="skip_record"``)."""

    frame_bytes: int
    error: CorruptRecordError


@dataclass(frozen=True)
class FileEnd:
    """The file is done; ``skipped_error`` is set when the rest of it was skipped."""

    skipped_error: RecordError | None = None


@dataclass(frozen=True)
class Failure:
    error: BaseException


@dataclass(frozen=True)
class ReadOptions:
    compression_type: str | None
    verify_crc: bool
    max_record_bytes: int
    max_decompression_ratio: float
    on_corrupt: str  # "raise" | "skip_record" | "skip_file"
    config: Any = None  # S3Config | None


def storage_counters(stream: object) -> tuple[int, int, int, int, int]:
    """(requests, bytes requested, retries, throttles, hedges) of a storage stream that keeps
    counters."""
    for candidate in (stream, getattr(stream, "raw", None)):
        counters = getattr(candidate, "counters", None)
        if callable(counters):
            counters = counters()
        if counters is not None:
            return (
                int(getattr(counters, "requests", 0)),
                int(getattr(counters, "bytes_requested", 0)),
                int(getattr(counters, "retries", 0)),
                int(getattr(counters, "throttles", 0)),
                int(getattr(counters, "hedges", 0)),
            )
    return (0, 0, 0, 0, 0)


def abort_storage(stream: object) -> None:
    """Break the reads in progress on a storage stream that can (S3: its GETs), from any thread."""
    for candidate in (stream, getattr(stream, "raw", None)):
        abort = getattr(candidate, "abort", None)
        if callable(abort):
            abort()
            return


class FileFeed:
    """Reads ``path`` from ``start_offset`` in its own thread; the consumer calls :meth:`take`.

    ``cond`` is the consumer's: notified when this feed queues something. ``lock`` is the
    lock under it, shared by all feeds of the consumer; each feed's producer waits for room
    on a condition of its own over that lock, so a chunk taken wakes only its producer (one
    shared condition woke every feed's thread on every hand-off: 12% of the time the GIL
    was held, reading eight S3 files at once)."""

    def __init__(
        self,
        path: str,
        start_offset: int,
        options: ReadOptions,
        *,
        cond: threading.Condition,
        lock: threading.RLock,
        byte_cap: int,
        stats: DatasetStats,
    ) -> None:
        self.path = path
        self.start_offset = start_offset
        self._options = options
        self._cond = cond
        self._space = threading.Condition(lock)
        self._cap = max(byte_cap, 1)
        # Hand-off chunks are bytes outside the queue (being filled, being consumed): keep
        # them at half the cap, so a small cap still bounds memory.
        self._chunk_bytes = min(_CHUNK_BYTES, max(self._cap // 2, 1))
        self._stats = stats
        self._chunks: deque[tuple[list[Any], int]] = deque()
        self._bytes = 0
        self._closing = False
        self._storage: Any = None  # the open storage stream, once the producer has it
        self.finished = False  # the producer has queued its last item
        self._thread = threading.Thread(target=self._run, name=f"tfrecord-s3 prefetch {path}", daemon=True)
        self._thread.start()

    # consumer side (call with the condition held) -------------------------------------

    def ready(self) -> bool:
        return bool(self._chunks)

    def take(self) -> list[Any]:
        """The next chunk; the caller holds the condition and has checked :meth:`ready`."""
        chunk, nbytes = self._chunks.popleft()
        self._bytes -= nbytes
        self._space.notify()
        return chunk

    def stop(self) -> None:
        """Tell the producer to stop, breaking a read in progress (a stalled GET waits for
        no timeout); the producer closes the file itself."""
        with self._cond:
            self._closing = True
            self._chunks.clear()
            self._space.notify()
            self._cond.notify_all()
            storage = self._storage
        if storage is not None:
            abort_storage(storage)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # producer side ---------------------------------------------------------------------

    def _put(self, items: list[Any], nbytes: int) -> bool:
        with self._cond:
            # One oversized chunk may always pass when the queue is empty: no deadlock.
            while self._bytes and self._bytes + nbytes > self._cap and not self._closing:
                self._space.wait(_WAIT_SECONDS)
            if self._closing:
                return False
            self._chunks.append((items, nbytes))
            self._bytes += nbytes
            self._cond.notify_all()
            return True

    def _put_split(self, run: list[bytes]) -> bool:
        """Hand ``run`` over in chunks of at most ``_chunk_bytes`` (one record at least);
        False once stopped."""
        chunk: list[Any] = []
        nbytes = 0
        for record in run:
            size = len(record) + FRAME_OVERHEAD
            if chunk and nbytes + size > self._chunk_bytes:
                if not self._put(chunk, nbytes):
                    return False
                chunk, nbytes = [], 0
            chunk.append(record)
            nbytes += size
        return self._put(chunk, nbytes)

    def _run(self) -> None:
        started = time.perf_counter()
        pending: list[Any] = []
        pending_bytes = 0
        records = 0
        total = 0
        raw: Any = None
        end: Any = FileEnd()
        options = self._options

        def skipped(error: CorruptRecordError, frame_bytes: int) -> None:
            nonlocal pending, pending_bytes
            if pending:
                self._put(pending, pending_bytes)
                pending, pending_bytes = [], 0
            self._put([Skipped(frame_bytes, error)], FRAME_OVERHEAD)

        try:
            raw, stream = open_record_stream(
                self.path,
                options.compression_type,
                start_offset=self.start_offset,
                max_decompression_ratio=options.max_decompression_ratio,
                config=options.config,
            )
            with self._cond:
                self._storage = raw
                if self._closing:  # stopped while opening: stop() could not abort it
                    return
            runs = iter_frame_lists(
                stream,
                path=self.path,
                verify_crc=options.verify_crc,
                max_record_bytes=options.max_record_bytes,
                start_offset=self.start_offset,
                on_data_error=skipped if options.on_corrupt == "skip_record" else None,
            )
            chunks = self._chunks
            # Records come in the kernel's lists (about a megabyte each): they are counted and
            # handed over in slices, without a Python step per record.
            for run in runs:
                count = len(run)
                pieces = (
                    [run]
                    if count <= _CHUNK_RECORDS
                    else [run[i : i + _CHUNK_RECORDS] for i in range(0, count, _CHUNK_RECORDS)]
                )
                for piece in pieces:
                    size = sum(map(len, piece)) + FRAME_OVERHEAD * len(piece)
                    records += len(piece)
                    total += size
                    if pending and (
                        len(pending) + len(piece) > _CHUNK_RECORDS or pending_bytes + size > self._chunk_bytes
                    ):
                        if not self._put(pending, pending_bytes):
                            return
                        pending, pending_bytes = [], 0
                    if size > self._chunk_bytes and len(piece) > 1:
                        # A budget smaller than the piece: hand it over in chunks of the budget's size.
                        if not self._put_split(piece):
                            return
                        continue
                    if pending:
                        pending.extend(piece)
                    else:
                        pending = piece
                    pending_bytes += size
                    if pending_bytes >= self._chunk_bytes or len(pending) >= _CHUNK_RECORDS or not chunks:
                        if not self._put(pending, pending_bytes):
                            return
                        pending, pending_bytes = [], 0
        except RecordError as exc:
            end = FileEnd(exc) if options.on_corrupt == "skip_file" else Failure(exc)
        except BaseException as exc:  # travels to the consumer, raised after earlier records
            end = Failure(exc)
        finally:
            if raw is not None:
                self._stats.add_storage(*storage_counters(raw))
                try:
                    raw.close()
                except Exception as exc:  # a failed close must not hide what happened before
                    if not isinstance(end, Failure):
                        end = Failure(exc)
        if pending:
            self._put(pending, pending_bytes)
        self._put([end], 0)
        self._stats.file_finished(
            FileTiming(self.path, time.perf_counter() - started, records, total),
            skipped=isinstance(end, FileEnd) and end.skipped_error is not None,
        )
        with self._cond:
            self.finished = True
            self._cond.notify_all()
