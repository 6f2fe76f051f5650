"""Block buffers shared by every stream of the process, reused across GETs of any size.

A GET's body is written straight into a block buffer. A fresh ``bytearray(n)`` is zeroed by
the interpreter with the GIL held, and each of its pages then faults in: measured on a
dataset of eight 25 MB shards, 7.5% of the time the GIL was held went to that one line.
Growing blocks (1, 2, 4, 8 MiB...) and the blocks of many files never matched the one
block size a stream used to recycle, so nearly every GET paid it.

Here a stream hands a block back once its consumer has moved past it (its last one when it
closes), and the next GET of any stream takes the smallest pooled buffer that holds it (at
most twice its length, so the budget's count of a block's bytes stays close to the memory
it pins). The pool keeps at most :data:`POOL_BYTES` and is emptied when the last stream
detaches, so memory goes back once reading stops.

New buffers are plain ``bytearray``, zeroed. Two ways to skip the zeroing were measured and
dropped: anonymous memory maps (each faults in page by page and unmapping one stops every
thread of the process: 3.2 against 2.85 s/GB of client CPU on eight shards), and an
uninitialised ``bytearray`` from C (its pages then fault in inside ``recv_into``: 1,000
objects of 114 KB took 6.2-7.8 s against 5.2-8.2 s zeroed, alternating in one process).
"""

from __future__ import annotations

import bisect
import threading

from .process_local import ProcessLocal

__all__ = ["POOL_BYTES", "BufferPool", "process_buffers"]

MiB = 1024 * 1024
#: Bytes of idle buffers the process keeps for later GETs.
POOL_BYTES = 64 * MiB
#: A pooled buffer serves a block of at least this share of its capacity.
_MAX_WASTE = 2


class BufferPool:
    """Idle block buffers by capacity; thread-safe."""

    def __init__(self, max_bytes: int = POOL_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: list[int] = []  # capacities, sorted; _buffers[i] has capacity _sizes[i]
        self._buffers: list[bytearray] = []
        self._idle = 0
        self._users = 0
        self.allocated = 0  # bytes of fresh buffers handed out so far (tests, benchmarks)
        self.reused = 0  # buffers handed out again

    @property
    def idle_bytes(self) -> int:
        return self._idle

    def attach(self) -> None:
        with self._lock:
            self._users += 1

    def detach(self) -> None:
        """A stream closed; with none left the idle buffers are freed."""
        with self._lock:
            self._users -= 1
            if self._users <= 0:
                self._users = 0
                self._sizes.clear()
                self._buffers.clear()
                self._idle = 0

    def take(self, length: int) -> memoryview:
        """A writable view of ``length`` bytes (contents undefined)."""
        with self._lock:
            i = bisect.bisect_left(self._sizes, length)
            if i < len(self._sizes) and self._sizes[i] <= _MAX_WASTE * max(length, 1):
                size = self._sizes.pop(i)
                buffer = self._buffers.pop(i)
                self._idle -= size
                self.reused += 1
                return memoryview(buffer)[:length]
            self.allocated += length
        return memoryview(bytearray(length))

    def give(self, block: memoryview) -> None:
        """Take back the buffer under ``block``; its caller no longer reads or writes it."""
        buffer = block.obj
        if not isinstance(buffer, bytearray):
            return
        size = len(buffer)
        if not 0 < size <= self.max_bytes:
            return
        with self._lock:
            if self._users <= 0:
                return
            # Full: keep the larger buffers, which save more work when reused.
            while self._idle + size > self.max_bytes and self._sizes and self._sizes[0] < size:
                self._idle -= self._sizes.pop(0)
                self._buffers.pop(0)
            if self._idle + size > self.max_bytes:
                return  # every idle buffer is at least this large
            i = bisect.bisect_left(self._sizes, size)
            self._sizes.insert(i, size)
            self._buffers.insert(i, buffer)
            self._idle += size


_pool = ProcessLocal(BufferPool)


def process_buffers() -> BufferPool:
    """This process's pool (a fresh one after a fork: a DataLoader worker's streams are its own)."""
    return _pool.get()
