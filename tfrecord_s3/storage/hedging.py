"""Hedged GETs: a try that is far slower than its peers is raced by a second one.

On S3 a few requests in a thousand wait seconds for their first byte, or stall mid-body,
while the rest answer in tens of milliseconds (AWS's advice for large transfers: retry those
on a new connection). A :class:`LatencyTracker` per process keeps the recent first-byte
times and the gaps between body chunks of every GET; a try that goes without a byte for
:data:`HEDGE_MULTIPLE` times the median (never less than the stream's floor, never past its
read timeout, which retries by itself) while other GETs did get bytes gets a second GET, on
another connection, for the bytes it has not received yet. A GET that no other one overtook
(the last one of a file in flight, a lone reader's) is measured against the process's past
GETs instead, and waits :data:`LONE_FACTOR` times as long: nothing then tells a stuck
request from a server slow for everyone, and a second GET would only add load to the latter.
Before any GET of the process got a byte there is no measure at all, and the read timeout
decides. The first of the two to finish wins; the other is dropped at its next chunk (its
connection closed, never pooled).

No byte is written twice into the block the consumer gets: each GET of a race writes into
its own buffer (the hedge's starts as a copy of the bytes the first one had), and the
winner's buffer is the block; the loser's buffer is never reused, so a loser still inside a
``recv_into`` writes only into memory nobody reads. A loser ends at its next chunk or at its
read timeout, whichever comes first; at most :data:`MAX_HEDGES` races per process hold a
second GET (and buffer) at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .process_local import ProcessLocal

__all__ = [
    "HEDGE_MULTIPLE",
    "LONE_FACTOR",
    "MAX_HEDGES",
    "Closed",
    "HedgePolicy",
    "LatencyTracker",
    "Leg",
    "Progress",
    "join",
    "process_tracker",
    "race",
]

#: A GET is hedged after this many median waits without a byte.
HEDGE_MULTIPLE = 4.0
#: A GET no other GET overtook while it waited is hedged after this many times the patience.
LONE_FACTOR = 2.0
#: Races holding a second GET at once, per process (each may hold a second block buffer).
MAX_HEDGES = 4
#: Recent waits the medians are taken over.
_SAMPLES = 64
#: The watcher looks at the stream's cancel flag at least this often.
_POLL = 0.1
_log = logging.getLogger(__name__)


class Closed(Exception):
    """The stream was closed (or aborted) while a block was being fetched."""


class Progress:
    """Where one block's bytes go, and how many of them have been received (where a retry
    resumes)."""

    __slots__ = ("out", "received")

    def __init__(self, out: memoryview, received: int = 0) -> None:
        self.out = out
        self.received = received

    def tick(self) -> bool:
        """Bytes arrived; True if whoever receives them should stop (see :class:`Leg`)."""
        return False


@dataclass(frozen=True)
class HedgePolicy:
    """When one stream hedges: after ``floor`` seconds without a byte at the least, and never
    once the wait reaches ``read_timeout`` (the read timeout's retry takes over there)."""

    floor: float
    read_timeout: float


class LatencyTracker:
    """Recent first-byte times and chunk gaps of this process's GETs; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._first: deque[float] = deque(maxlen=_SAMPLES)
        self._gaps: deque[float] = deque(maxlen=_SAMPLES)
        self._medians: tuple[float | None, float | None] | None = (None, None)
        self._hedging = 0
        self.hedges = 0
        #: Samples taken so far: a GET is only hedged once others got bytes while it waited.
        self.events = 0

    def first_byte(self, seconds: float) -> None:
        with self._lock:
            self._first.append(seconds)
            self._medians = None
            self.events += 1

    def gap(self, seconds: float) -> None:
        with self._lock:
            self._gaps.append(seconds)
            self._medians = None
            self.events += 1

    def medians(self) -> tuple[float | None, float | None]:
        """(median first-byte time, median chunk gap), None while there is no sample."""
        with self._lock:
            if self._medians is None:
                self._medians = (_median(self._first), _median(self._gaps))
            return self._medians

    def patience(self, policy: HedgePolicy, *, body: bool) -> float | None:
        """Seconds without a byte after which a GET is hedged (None: never, the read timeout
        comes first); ``body``: its first byte has come, so the chunk gaps are the measure."""
        first, gap = self.medians()
        median = gap if body else first
        wait = max(policy.floor, HEDGE_MULTIPLE * (median if median is not None else policy.floor))
        return wait if wait < policy.read_timeout else None

    def try_hedge(self) -> bool:
        """Take one of the :data:`MAX_HEDGES` slots; False when none is free."""
        with self._lock:
            if self._hedging >= MAX_HEDGES:
                return False
            self._hedging += 1
            self.hedges += 1
            return True

    def hedge_done(self) -> None:
        with self._lock:
            self._hedging -= 1

    @property
    def hedging(self) -> int:
        """Races holding a second GET now."""
        return self._hedging


def _median(samples: deque[float]) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[len(ordered) // 2]


class Leg(Progress):
    """One GET of a race, run on its own thread by :func:`race`."""

    __slots__ = ("_tracker", "abandoned", "done", "error", "got_first", "last", "lost", "seen", "started", "thread")

    def __init__(self, out: memoryview, received: int, tracker: LatencyTracker) -> None:
        super().__init__(out, received)
        self._tracker = tracker
        self.started = self.last = tracker.clock()
        self.seen = tracker.events  # the tracker's samples at this leg's last byte
        self.got_first = False
        self.lost = False
        self.abandoned = False  # lost to the other leg of its race (not to a close)
        self.done = False
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def tick(self) -> bool:
        now = self._tracker.clock()
        if not self.lost:
            if self.got_first:
                self._tracker.gap(now - self.last)
            else:
                self._tracker.first_byte(now - self.started)
                self.got_first = True
            self.seen = self._tracker.events
        self.last = now
        return self.lost

    @property
    def overtaken(self) -> bool:
        """Whether other GETs got bytes since this one's last: the server and network answer,
        only not this GET."""
        return self._tracker.events > self.seen

    def hedge_due(self, patience: float, read_timeout: float) -> float:
        """Seconds until this leg is hedged (<= 0: now): ``patience`` after its last byte if
        another GET overtook it, else :data:`LONE_FACTOR` times that, once the process has
        a measure (a GET had a first byte) and short of the read timeout; inf: never."""
        since = self._tracker.clock() - self.last
        if self.overtaken:
            return patience - since
        lone = LONE_FACTOR * patience
        if lone >= read_timeout or self._tracker.medians()[0] is None:
            return float("inf")
        return lone - since


class _Race:
    """The legs of one try and what they share."""

    def __init__(self, tracker: LatencyTracker, live: set[Leg]) -> None:
        self.tracker = tracker
        self.live = live
        self.cond = threading.Condition(threading.RLock())
        self.legs: list[Leg] = []
        self.alive = 0
        self.hedged = False

    def start(self, leg: Leg, receive: Callable[[Leg], None]) -> None:
        with self.cond:
            self.legs.append(leg)
            self.alive += 1
        leg.thread = threading.Thread(target=self._run, args=(leg, receive), name="tfrecord-s3-get", daemon=True)
        self.live.add(leg)
        leg.thread.start()

    def _run(self, leg: Leg, receive: Callable[[Leg], None]) -> None:
        try:
            receive(leg)
        except BaseException as exc:  # handed to the watcher, which raises it if it counts
            leg.error = exc
        finally:
            self.live.discard(leg)
            with self.cond:
                leg.done = True
                self.alive -= 1
                last = self.alive == 0
                self.cond.notify_all()
            if last and self.hedged:
                self.tracker.hedge_done()

    def lose_all_but(self, winner: Leg | None) -> None:
        for leg in self.legs:
            if leg is not winner:
                leg.abandoned = winner is not None
                leg.lost = True


def race(
    receive: Callable[[Leg], None],
    progress: Progress,
    *,
    tracker: LatencyTracker,
    policy: HedgePolicy,
    cancel: threading.Event,
    on_hedge: Callable[[int], None],
    live: set[Leg],
) -> None:
    """Receive a block's missing bytes (from ``progress.received`` on) with ``receive(leg)``
    on a thread, hedged once if it goes too long without a byte: ``on_hedge(received)`` is
    called before the second GET starts. On return ``progress`` holds the winner's buffer,
    whole; on a fault (both legs failed) the buffer and count of the leg that got furthest,
    and that leg's error is raised. Raises :class:`Closed` when ``cancel`` is set, without
    waiting for the legs: ``live`` holds every leg whose thread still runs (see :func:`join`)."""
    state = _Race(tracker, live)
    first = Leg(progress.out, progress.received, tracker)
    state.start(first, receive)
    with state.cond:
        while True:
            winner = next((leg for leg in state.legs if leg.done and leg.error is None), None)
            if winner is not None or all(leg.done for leg in state.legs):
                break
            if cancel.is_set():
                state.lose_all_but(None)
                raise Closed
            wait = _POLL
            if not state.hedged:
                patience = tracker.patience(policy, body=first.got_first)
                if patience is not None:
                    due = first.hedge_due(patience, policy.read_timeout)
                    if due <= 0 and not first.done and tracker.try_hedge():
                        state.hedged = True
                        held = first.received  # bytes [:held] are written and final
                        on_hedge(held)
                        out = memoryview(bytearray(len(first.out)))
                        out[:held] = first.out[:held]
                        state.start(Leg(out, held, tracker), receive)  # the lock is reentrant
                        continue
                    if due > 0:
                        wait = min(wait, due)  # else every hedge slot is taken: look again
            state.cond.wait(wait)
    if winner is None:
        best = max(state.legs, key=lambda leg: leg.received)
        progress.out, progress.received = best.out, best.received
        assert best.error is not None
        raise best.error
    state.lose_all_but(winner)
    if winner is not first:
        _log.debug("tfrecord_s3: hedged GET won (%d bytes came from the second GET)", winner.received)
    progress.out, progress.received = winner.out, winner.received


def join(live: set[Leg]) -> None:
    """After the stream's sockets were shut (abort): wait for its legs to end, but for those
    that lost a race while still waiting for their headers (nothing breaks that wait; they
    hold no buffer anyone reads and end at their read timeout)."""
    for leg in list(live):
        thread = leg.thread
        if thread is not None and not (leg.abandoned and not leg.got_first):
            thread.join()


_tracker = ProcessLocal(LatencyTracker)


def process_tracker() -> LatencyTracker:
    """This process's tracker (a fresh one after a fork)."""
    return _tracker.get()
