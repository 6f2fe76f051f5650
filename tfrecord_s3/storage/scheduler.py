"""One transfer scheduler per process: how many ranged GETs are in flight, across every stream.

On a real network a GET costs a first-byte latency and one connection carries a bounded rate,
so throughput comes from many requests in flight; on loopback the same window only adds
threads. No fixed window suits both, so the window adapts:

- it starts small (``initial_window``) and doubles when a consumer had to wait for a block
  that was still in flight while some stream was refused a slot (the network, not the
  consumer, is the bottleneck), at most once per ``sample_seconds``;
- it stops growing once a doubling did not raise the throughput by ``gain`` (more requests
  would only hold more memory), judged on samples in which the window was full, and probes
  again ``reprobe_seconds`` later;
- 503 SlowDown halves it (S3 asks for fewer requests, not only for a pause);
- it never exceeds ``max_requests`` (the connection pool), and a stream is granted a block
  ahead only while the bytes held by all streams (blocks in flight and blocks fetched but not
  yet consumed) stay within its ``max_bytes`` (``max_bytes_in_flight``). The block a consumer
  is waiting for always goes (one per stream at most: holding it back could deadlock readers
  that wait on each other, as an interleave does).

Free slots go first to streams whose consumer is waiting, then to those with the fewest
blocks ready ahead. The clock is injectable, so tests drive the window without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from .process_local import ProcessLocal

__all__ = ["Client", "TransferScheduler", "process_scheduler"]

MiB = 1024 * 1024
#: A sample longer than this many sample periods spans an idle gap: not a measure of the window.
_IDLE_SAMPLES = 4


class Client(Protocol):
    """What the scheduler asks of a stream that wants more blocks."""

    def urgency(self) -> tuple[int, int]:
        """Smaller first: (0 if the consumer is waiting now else 1, blocks ready ahead)."""
        ...

    def top_up(self) -> None:
        """Ask for more blocks now (called without the scheduler's lock held)."""
        ...


class TransferScheduler:
    """Counts GETs in flight and bytes held against an adaptive window; thread-safe."""

    def __init__(
        self,
        *,
        max_requests: int = 16,
        initial_window: int = 4,
        sample_seconds: float = 0.05,
        gain: float = 1.1,
        reprobe_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_requests < 1 or initial_window < 1:
            raise ValueError("max_requests and initial_window must be >= 1")
        self.max_requests = max_requests
        self._window = min(initial_window, max_requests)
        self._sample_seconds = sample_seconds
        self._gain = gain
        self._reprobe = reprobe_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight = 0
        self._held = 0
        self._streams = 0
        self._hungry: set[Client] = set()
        self._refused_by_window = False
        # Throughput: bytes received since the sample began, and the rate before the last growth.
        self._sample_start = clock()
        self._sample_bytes = 0
        self._sample_full = False
        self._rate = 0.0
        self._rate_window = 0
        self._rate_before_growth: float | None = None
        self._grew_at: float | None = None
        self._plateau_until = float("-inf")
        self.peak_window = self._window
        self.peak_in_flight = 0
        self.peak_held = 0

    # -- what tests and benchmarks read -----------------------------------------------------

    @property
    def window(self) -> int:
        return self._window

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def held(self) -> int:
        return self._held

    @property
    def rate(self) -> float:
        """Bytes per second of the last complete sample."""
        return self._rate

    def raise_cap(self, max_requests: int) -> None:
        """Allow up to ``max_requests`` GETs in flight if that is more than now."""
        with self._lock:
            self.max_requests = max(self.max_requests, max_requests)

    def reset_peaks(self) -> None:
        """Start the peak figures from now (benchmarks and tests read them per run)."""
        with self._lock:
            self.peak_window = self._window
            self.peak_in_flight = self._in_flight
            self.peak_held = self._held

    # -- grants -----------------------------------------------------------------------------

    def try_start(self, client: Client, nbytes: int, max_bytes: int, own: int = 0) -> bool:
        """Take a slot and ``nbytes`` of the budget for a read-ahead GET; False (and
        ``client`` is topped up later, when a slot or bytes free up) when there is none.
        ``own``: the bytes ``client`` holds already; no stream holds more than an equal share
        of the budget, so one whose reader stopped reading cannot starve the others."""
        with self._lock:
            if self._in_flight >= self._window:
                self._refused_by_window = self._sample_full = True
                self._hungry.add(client)
                return False
            # One block may always go when nothing is held: a budget below one block
            # must slow a stream down, never stop it.
            share = max_bytes // max(self._streams, 1)
            if self._held and (self._held + nbytes > max_bytes or (own and own + nbytes > share)):
                self._hungry.add(client)
                return False
            self._take(nbytes)
            return True

    def has_room(self, nbytes: int, max_bytes: int) -> bool:
        """Whether a new stream could start now: a slot free that no open stream asked for
        (none was refused one), and ``nbytes`` more within ``max_bytes`` held. The
        dataset's interleave opens its next file ahead when the streams open leave room."""
        with self._lock:
            return self._in_flight < self._window and not self._hungry and self._held + nbytes <= max_bytes

    def attach(self) -> None:
        """A stream opened (the budget's equal shares are counted over open streams)."""
        with self._lock:
            self._streams += 1

    def detach(self, client: Client) -> None:
        """A stream closed: it wants nothing more."""
        with self._lock:
            self._streams -= 1
            self._hungry.discard(client)

    def start_now(self, nbytes: int) -> None:
        """A GET the consumer waits for (its current block): counted, never refused."""
        with self._lock:
            self._take(nbytes)

    def _take(self, nbytes: int) -> None:
        self._in_flight += 1
        self._held += nbytes
        self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        self.peak_held = max(self.peak_held, self._held)

    def request_done(self) -> None:
        """A granted GET ended (done, failed or cancelled): its slot is free."""
        with self._lock:
            self._in_flight -= 1
        self._wake()

    def release(self, nbytes: int) -> None:
        """Bytes of a block the consumer has left (or that was dropped)."""
        if nbytes <= 0:
            return
        with self._lock:
            self._held -= nbytes
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if not self._hungry or self._in_flight >= self._window:
                return
            waiting = sorted(self._hungry, key=lambda c: c.urgency())
            self._hungry.clear()
        for client in waiting:
            client.top_up()

    # -- adapting the window ------------------------------------------------------------------

    def received(self, nbytes: int) -> None:
        """Body bytes arrived (any stream): the throughput the window is judged by.

        Only samples in which the window was full (someone was refused a slot) say what the
        window is worth; a sample that spans an idle gap says nothing and is dropped."""
        with self._lock:
            self._sample_bytes += nbytes
            now = self._clock()
            elapsed = now - self._sample_start
            if elapsed < self._sample_seconds:
                return
            full, self._sample_full = self._sample_full, False
            rate = self._sample_bytes / elapsed
            self._sample_start, self._sample_bytes = now, 0
            if elapsed > _IDLE_SAMPLES * self._sample_seconds or not full:
                return
            self._rate, self._rate_window = rate, self._window
            if self._grew_at is not None and now - self._grew_at >= elapsed:
                # A whole full sample since the last doubling: did it pay?
                before = self._rate_before_growth
                if before is not None and rate < before * self._gain:
                    self._plateau_until = now + self._reprobe
                self._grew_at = None

    def consumer_waited(self) -> None:
        """A consumer found its next block still in flight."""
        grew = False
        with self._lock:
            now = self._clock()
            if (
                self._refused_by_window
                and self._window < self.max_requests
                and now >= self._plateau_until
                and (self._grew_at is None or now - self._grew_at >= self._sample_seconds)
            ):
                # The rate of the last full sample, if it was taken at this window.
                self._rate_before_growth = self._rate if self._rate > 0 and self._rate_window == self._window else None
                self._window = min(self.max_requests, self._window * 2)
                self.peak_window = max(self.peak_window, self._window)
                self._grew_at = now
                self._refused_by_window = False
                grew = True
        if grew:
            self._wake()

    def throttled(self) -> None:
        """The server answered 503 SlowDown: fewer requests in flight, and no growth for a while."""
        with self._lock:
            self._window = max(1, self._window // 2)
            self._plateau_until = self._clock() + self._reprobe
            self._grew_at = None


_scheduler = ProcessLocal(TransferScheduler)


def process_scheduler(max_requests: int) -> TransferScheduler:
    """This process's scheduler (a fresh one after a fork: DataLoader workers each have one).
    ``max_requests`` raises its cap when a config with a larger connection pool shows up."""
    scheduler = _scheduler.get(lambda: TransferScheduler(max_requests=max_requests))
    scheduler.raise_cap(max_requests)
    return scheduler
