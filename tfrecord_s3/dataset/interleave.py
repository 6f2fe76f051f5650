"""Records of many files, interleaved through a bounded set of prefetching readers.

``cycle_length`` files are open at once, each read ahead by its own :class:`FileFeed` with
an equal share of ``max_bytes_in_flight`` as its queue, so memory stays bounded however many
files there are. Local files: the next file of the list is opened ahead (one more) as soon as
an open file has been read to its end, so a new file's first request overlaps the old one's
tail. S3: the next files of the list are opened ahead from the start, as many as half the
budget holds by their listed sizes (up to :data:`MAX_FILES_AHEAD`; 4 when sizes are not
known): many small objects then cost about one first-byte latency per batch of them, not
one per object, and a large one's ramp-up overlaps the file before it. With the process's
transfer scheduler (the default), more files are opened ahead whenever the open streams
leave it idle slots and budget (up to one file per block of the streams' budget): otherwise
the network would idle once the files ahead were fetched, until the consumer reached them.

Deterministic order is TensorFlow's interleave: ``block_length`` records from each open
file in turn; a finished file's place is taken by the next file in the list.
With ``deterministic=False`` a file with nothing ready does not hold the others up.

The position is kept on the consumer side (records handed out, not records read ahead), so
:meth:`InterleaveIterator.state` resumes exactly after the last record returned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ..errors import ConfigError
from ..records.framing import FRAME_OVERHEAD
from ..storage import exit_safety
from ..storage.scheduler import TransferScheduler, process_scheduler
from .prefetch import Failure, FileEnd, FileFeed, ReadOptions, Skipped
from .stats import DatasetStats

_CLOSE_TIMEOUT = 2.0
_WAIT_SECONDS = 0.5
#: Files opened ahead of the open ones at most (each is a thread and, on S3, a connection).
MAX_FILES_AHEAD = 24
_UNKNOWN_SIZE_AHEAD = 4


def files_ahead(files: list[str], budget: int) -> int:
    """How many files to open ahead: 1 for local files (the next one, once an open file is
    read), for S3 as many as half of ``budget`` holds by listed sizes (``ListedObject.size``)."""
    if not any(path.startswith("s3://") for path in files):
        return 1
    sizes = [size for size in (getattr(path, "size", None) for path in files) if isinstance(size, int)]
    if sizes:
        typical = max(sum(sizes) // len(sizes), 1)
        wanted = min(MAX_FILES_AHEAD, (budget // 2) // typical)
    else:
        wanted = _UNKNOWN_SIZE_AHEAD
    return max(1, min(wanted, len(files) - 1))


def _full_blocks(options: ReadOptions) -> ReadOptions:
    """``options`` for files opened after the first ones: S3 GETs of the full block from the
    start. A small first GET buys a fast first record at the price of more requests (25 MB
    in 1, 2, 4, 8 and 10 MiB: five GETs instead of two); only the files read first need it."""
    config = options.config
    if config is None or config.read_ahead is not None or config.first_block_size >= config.block_size:
        return options
    return dataclasses.replace(options, config=config.replace(first_block_size=config.block_size))


def _adaptive_scheduler(options: ReadOptions) -> TransferScheduler | None:
    """The process's transfer scheduler when the files' S3 streams use it, else None."""
    config = options.config
    if config is None or config.read_ahead is not None:
        return None
    return process_scheduler(config.max_pool_connections)


def files_digest(files: list[str]) -> str:
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


@dataclass
class _Slot:
    file_index: int
    offset: int  # of the next record to hand out
    feed: FileFeed
    chunk: list[Any]
    pos: int


class InterleaveIterator:
    """The source stage: yields records (``bytes``) of ``files``."""

    def __init__(
        self,
        files: list[str],
        options: ReadOptions,
        *,
        cycle_length: int,
        block_length: int,
        deterministic: bool,
        max_bytes_in_flight: int,
        stats: DatasetStats,
        state: dict[str, Any] | None = None,
    ) -> None:
        if cycle_length < 1 or block_length < 1:
            raise ConfigError("num_parallel_reads and block_length must be >= 1")
        self._files = files
        self._options = options
        self._later_options = _full_blocks(options)
        self._cycle = cycle_length
        # With one file open at a time there is no turn to pass: blocks do not matter.
        self._block = block_length if cycle_length > 1 else 1 << 62
        self._deterministic = deterministic
        self._ahead = files_ahead(files, max_bytes_in_flight)
        # More files ahead while the network has room (see the module doc): S3 with the scheduler.
        self._scheduler = _adaptive_scheduler(options) if self._ahead > 1 else None
        self._ahead_max = self._ahead
        if self._scheduler is not None:
            config = options.config
            by_budget = config.max_bytes_in_flight // max(config.block_size, 1)
            self._ahead_max = max(self._ahead, min(MAX_FILES_AHEAD, by_budget, len(files) - 1))
        # Files opened ahead queue records too: with more than one, they share the budget.
        queues = cycle_length + (self._ahead_max if self._ahead_max > 1 else 0)
        self._byte_cap = max(max_bytes_in_flight // queues, 1)
        self.stats = stats
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # the consumer waits on it; feeds notify it
        self._closed = False
        self._slots: list[_Slot | None] = [None] * cycle_length
        self._cur = 0
        self._in_block = 0
        self._next_file = 0
        # The next files in the list, opened ahead (see the module doc) so their first
        # requests overlap the records still queued. They are not part of the position until
        # they take a slot (``_next_file`` still points at the first of them).
        self._lookahead: deque[FileFeed] = deque()
        # Chunks already consumed, as (file index, chunk, offset after its last record), kept
        # only so that :meth:`locate` can name a record a later stage fails on (one chunk per
        # open file: a batch or a decode error rarely reaches further back).
        self._consumed: deque[tuple[int, list[Any], int]] = deque(maxlen=cycle_length + 1)
        if state is None:
            for i in range(min(cycle_length, len(files))):
                self._slots[i] = self._open(self._next_file, 0)
                self._next_file += 1
        else:
            self._restore(state)
        if self._ahead > 1:
            self._open_ahead()
        exit_safety.track(self)  # its reader threads are stopped at interpreter exit

    # state --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "files": len(self._files),
            "files_digest": files_digest(self._files),
            "slots": [None if s is None else [s.file_index, s.offset] for s in self._slots],
            "cur": self._cur,
            "in_block": self._in_block,
            "next_file": self._next_file,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("files") != len(self._files) or state.get("files_digest") != files_digest(self._files):
            raise ConfigError("load_state_dict: the state was saved for a different list of files")
        slots = state["slots"]
        if len(slots) != self._cycle:
            raise ConfigError(f"load_state_dict: the state has {len(slots)} parallel reads, the dataset {self._cycle}")
        self._cur = int(state["cur"])
        self._in_block = int(state["in_block"])
        self._next_file = int(state["next_file"])
        for i, slot in enumerate(slots):
            if slot is not None:
                self._slots[i] = self._open(int(slot[0]), int(slot[1]))

    # iteration ----------------------------------------------------------------------

    def _open(self, file_index: int, offset: int) -> _Slot:
        return _Slot(file_index, offset, self._feed(file_index, offset), [], 0)

    def _feed(self, file_index: int, offset: int, *, later: bool = False) -> FileFeed:
        """A reader of ``file_index`` from ``offset``; ``later``: a file opened after the
        first ones, whose first record waits for nobody (its GETs need not start small)."""
        return FileFeed(
            self._files[file_index],
            offset,
            self._later_options if later else self._options,
            cond=self._cond,
            lock=self._lock,
            byte_cap=self._byte_cap,
            stats=self.stats,
        )

    def _look_ahead(self, slot: _Slot) -> None:
        """Open the next file early once ``slot``'s file has been read to its end (or, S3
        with the scheduler, once the network has room for it)."""
        if slot.feed.finished and not self._lookahead and self._next_file < len(self._files):
            self._lookahead.append(self._feed(self._next_file, 0, later=True))
        self._open_more_ahead()

    def _open_ahead(self) -> None:
        """Keep ``_ahead`` files of the list open beyond the ones in slots."""
        while len(self._lookahead) < self._ahead and self._next_file + len(self._lookahead) < len(self._files):
            self._lookahead.append(self._feed(self._next_file + len(self._lookahead), 0, later=True))

    def _open_more_ahead(self) -> None:
        """One more file ahead (up to ``_ahead_max``) when the open streams leave the
        scheduler idle slots and budget for it (called each time a chunk is taken)."""
        scheduler = self._scheduler
        if scheduler is None or len(self._lookahead) >= self._ahead_max:
            return
        index = self._next_file + len(self._lookahead)
        if index >= len(self._files):
            return
        config = self._options.config
        size = getattr(self._files[index], "size", None)
        first = config.block_size if not isinstance(size, int) else min(size, config.block_size)
        if scheduler.has_room(first, config.max_bytes_in_flight):
            self._lookahead.append(self._feed(index, 0, later=True))

    def __iter__(self) -> InterleaveIterator:
        return self

    def __next__(self) -> bytes:
        # Fast path: the current file has a record ready in the chunk being consumed.
        slot = self._slots[self._cur]
        if slot is not None:
            pos = slot.pos
            chunk = slot.chunk
            if pos < len(chunk):
                item = chunk[pos]
                if type(item) is bytes:
                    slot.pos = pos + 1
                    self._book(slot, 1, len(item))
                    self._in_block += 1
                    if self._in_block >= self._block:
                        self._in_block = 0
                        self._cur = (self._cur + 1) % self._cycle
                    return item
        return self._next_slow()

    def take_many(self, count: int) -> list[bytes]:
        """Up to ``count`` records (fewer only at the end): what ``batch`` pulls in one call.

        Same order and bookkeeping as ``count`` calls of ``next``, but records are sliced out
        of the prefetched chunks (a chunk is all records, or one marker): runs from one file,
        and with ``block_length=1`` whole rounds across the open files at once."""
        out: list[bytes] = []
        slots = self._slots
        block = self._block
        cycle = self._cycle
        while len(out) < count:
            if block == 1 and cycle > 1 and self._take_rounds(out, count):
                continue
            slot = slots[self._cur]
            if slot is not None:
                chunk = slot.chunk
                pos = slot.pos
                run = min(count - len(out), block - self._in_block, len(chunk) - pos)
                if run > 0 and type(chunk[pos]) is bytes:
                    piece = chunk[pos : pos + run]
                    slot.pos = pos + run
                    self._book(slot, run, sum(map(len, piece)))
                    out.extend(piece)
                    self._in_block += run
                    if self._in_block >= block:
                        self._advance()
                    continue
            try:
                out.append(self._next_slow())
            except StopIteration:
                break
        return out

    def _book(self, slot: _Slot, count: int, size: int) -> None:
        """``count`` records of ``size`` bytes in all handed out from ``slot``: its position
        moves past them, and the stats count them (the first one's time included)."""
        slot.offset += size + FRAME_OVERHEAD * count
        stats = self.stats
        stats.records += count
        stats.bytes += size
        if stats.first_record_seconds is None:
            stats.first_record_seconds = stats.elapsed()

    def _take_rounds(self, out: list[bytes], count: int) -> bool:
        """Append whole rounds (one record from each open file, in turn) while every file
        has records ready; False when none could be taken."""
        order = [self._slots[(self._cur + i) % self._cycle] for i in range(self._cycle)]
        rounds = (count - len(out)) // self._cycle
        for slot in order:
            if slot is None or slot.pos >= len(slot.chunk) or type(slot.chunk[slot.pos]) is not bytes:
                return False
            rounds = min(rounds, len(slot.chunk) - slot.pos)
        if rounds < 1:
            return False
        pieces = []
        for slot in order:
            assert slot is not None
            piece = slot.chunk[slot.pos : slot.pos + rounds]
            slot.pos += rounds
            self._book(slot, rounds, sum(map(len, piece)))
            pieces.append(piece)
        out.extend(chain.from_iterable(zip(*pieces, strict=True)))
        return True

    def _next_slow(self) -> bytes:
        while True:
            if self._closed:
                raise StopIteration
            index = self._pick()
            if index is None:
                self.close()
                raise StopIteration
            slot = self._slots[index]
            assert slot is not None
            item = slot.chunk[slot.pos]
            slot.pos += 1
            if type(item) is bytes:
                self._book(slot, 1, len(item))
                self._in_block += 1
                if self._in_block >= self._block:
                    self._advance()
                return item
            self._handle_marker(index, slot, item)

    def _handle_marker(self, index: int, slot: _Slot, item: Any) -> None:
        if isinstance(item, Skipped):
            slot.offset += item.frame_bytes
            self.stats.skipped_records += 1
            return
        if isinstance(item, Failure):
            self.close()
            raise item.error
        assert isinstance(item, FileEnd)
        # The file is done: its place in the cycle goes to the next file, and the turn moves on.
        if self._next_file < len(self._files):
            feed = self._lookahead.popleft() if self._lookahead else self._feed(self._next_file, 0, later=True)
            self._slots[index] = _Slot(self._next_file, 0, feed, [], 0)
            self._next_file += 1
            if self._ahead > 1:
                self._open_ahead()
                self._open_more_ahead()
        else:
            self._slots[index] = None
        if index == self._cur:
            self._advance()

    def _advance(self) -> None:
        self._in_block = 0
        self._cur = (self._cur + 1) % self._cycle

    def _pick(self) -> int | None:
        """The slot to take the next item from, waiting for data as needed; None at the end."""
        while True:
            if not any(self._slots):
                return None
            slot = self._slots[self._cur]
            if slot is None:
                self._advance()
                continue
            if slot.pos < len(slot.chunk):
                return self._cur
            if self._deterministic:
                self._refill(slot)
                return self._cur
            ready = self._first_ready()
            if ready is not None:
                return ready
            with self._cond:
                if not any(s is not None and (s.pos < len(s.chunk) or s.feed.ready()) for s in self._slots):
                    self._cond.wait(_WAIT_SECONDS)

    def _first_ready(self) -> int | None:
        # Non-deterministic: from the current turn on, the first file that has data now.
        with self._cond:
            for step in range(self._cycle):
                index = (self._cur + step) % self._cycle
                slot = self._slots[index]
                if slot is None:
                    continue
                if slot.pos < len(slot.chunk):
                    return self._switch(index)
                if slot.feed.ready():
                    self._retire(slot)
                    slot.chunk, slot.pos = slot.feed.take(), 0
                    self._look_ahead(slot)
                    return self._switch(index)
        return None

    def _switch(self, index: int) -> int:
        if index != self._cur:
            self._cur = index
            self._in_block = 0
        return index

    def _refill(self, slot: _Slot) -> None:
        with self._cond:
            while not slot.feed.ready():
                if self._closed:
                    raise StopIteration
                self._cond.wait(_WAIT_SECONDS)
            self._retire(slot)
            slot.chunk, slot.pos = slot.feed.take(), 0
        self._look_ahead(slot)

    def _retire(self, slot: _Slot) -> None:
        if slot.chunk and type(slot.chunk[0]) is bytes:
            self._consumed.append((slot.file_index, slot.chunk, slot.offset))

    def locate(self, records: Sequence[object]) -> list[tuple[str, int] | None]:
        """(path, byte offset) of each of ``records`` (the very objects handed out), or None
        for one no longer in the recent chunks. Only for error messages: it scans the chunks."""
        found: dict[int, tuple[str, int]] = {}
        current = [(s.file_index, s.chunk[: s.pos], s.offset) for s in self._slots if s is not None]
        for file_index, chunk, end in chain(self._consumed, current):
            path = self._files[file_index]
            for item in reversed(chunk):
                if type(item) is bytes:
                    end -= len(item) + FRAME_OVERHEAD
                    found.setdefault(id(item), (path, end))
        return [found.get(id(record)) for record in records]

    def close(self) -> None:
        """Stop every reader and join its thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        exit_safety.untrack(self)
        deadline = time.monotonic() + _CLOSE_TIMEOUT
        feeds = [s.feed for s in self._slots if s is not None]
        feeds.extend(self._lookahead)
        for feed in feeds:
            feed.stop()
        for feed in feeds:
            feed.join(max(0.0, deadline - time.monotonic()))
        self.stats.finish()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
