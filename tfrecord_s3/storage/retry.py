"""Retry policy for body faults: full-jitter exponential backoff within a budget.

botocore retries a request only until its response headers arrive; a connection that
breaks while the body streams is ours to resume (RELIABILITY.md invariant 3). This module
decides *whether* and *how long* to wait; the stream decides *from where* to resume.
Sleep, clock and randomness are injectable so tests run in milliseconds and reproducibly.

Besides counting tries, a block has a *stall budget*: the seconds it may go without a byte
(and without any answer from the server) over all its tries. A server frozen mid-body or
before its first byte then surfaces as RetriesExhaustedError at the first failed try after
the budget is spent (about the budget: each try fails within one read timeout), not after
``max_attempts`` read timeouts.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..config import S3Config
from ..errors import ConfigError

__all__ = ["Backoff", "RetryPolicy", "StallWatch", "policy_for"]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try.

    ``max_attempts``: tries per block (the first included). ``budget``: retries allowed over
    the life of one stream, so a flapping connection cannot retry forever block after block.
    Delays follow "full jitter": uniform in ``[0, min(max_delay, base * 2**retry)]``, with
    ``throttle_base_delay`` as the base after 503 SlowDown. ``stall_budget``: seconds a block
    may go without a byte or an answer before it gives up (None: only tries bound it).
    ``read_timeout``: how long a try waits for a byte; a try that timed out after delivering
    bytes got its last one that long before, and the stall is counted from there.
    """

    max_attempts: int = 8
    budget: int = 64
    base_delay: float = 0.1
    max_delay: float = 10.0
    throttle_base_delay: float = 0.5
    stall_budget: float | None = None
    read_timeout: float = 0.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts={self.max_attempts!r}: expected >= 1")
        if self.budget < 0:
            raise ConfigError(f"RetryPolicy.budget={self.budget!r}: expected >= 0")
        if self.base_delay < 0 or self.throttle_base_delay < 0 or self.max_delay <= 0:
            raise ConfigError("RetryPolicy delays: expected base >= 0 and max_delay > 0")
        if self.stall_budget is not None and not self.stall_budget > 0:
            raise ConfigError(f"RetryPolicy.stall_budget={self.stall_budget!r}: expected > 0 or None")

    def delay(self, retry: int, rng: random.Random, *, throttled: bool = False) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        base = self.throttle_base_delay if throttled else self.base_delay
        ceiling = min(self.max_delay, base * (2 ** min(retry, 30)))
        return rng.uniform(0.0, ceiling)


def policy_for(config: S3Config) -> RetryPolicy:
    """The retry policy an :class:`S3Config` asks for."""
    return RetryPolicy(
        max_attempts=config.max_attempts,
        budget=config.retry_budget,
        base_delay=config.backoff_base,
        max_delay=config.backoff_max,
        throttle_base_delay=config.throttle_backoff_base,
        stall_budget=config.effective_stall_budget,
        read_timeout=config.read_timeout,
    )


class StallWatch:
    """How long one block has gone without progress: no byte received and no reply from the
    server (an error reply is an answer: the server is not stalled). Used by one thread."""

    __slots__ = ("_budget", "_clock", "_read_timeout", "answered", "since")

    def __init__(self, budget: float | None, clock: Callable[[], float], read_timeout: float = 0.0) -> None:
        self._budget = budget
        self._clock = clock
        self._read_timeout = read_timeout
        self.since = clock()
        self.answered = False  # whether the last failed try got a reply from the server

    @property
    def bounds_tries(self) -> bool:
        """Whether the stall budget, not ``max_attempts``, bounds the next retry: the server
        did not answer (refused, reset, timed out), as while it restarts."""
        return self._budget is not None and not self.answered

    def after_fault(self, *, answered: bool, timed_out: bool, progressed: bool) -> None:
        """Note a failed try: the server ``answered`` with an error, it ``timed_out`` (a
        read timeout), bytes arrived during it (``progressed``). The transport says which
        (its :class:`~tfrecord_s3.storage.faults.TransportFaults`)."""
        self.answered = answered
        if answered:
            self.since = self._clock()
        elif progressed:
            # A try that timed out got its last byte one read timeout before it failed.
            waited = self._read_timeout if timed_out else 0.0
            self.since = max(self.since, self._clock() - waited)

    def stalled(self) -> float:
        """Seconds since the last progress."""
        return self._clock() - self.since

    def spent(self) -> bool:
        return self._budget is not None and self.stalled() >= self._budget

    def remaining(self) -> float | None:
        return None if self._budget is None else max(0.0, self._budget - self.stalled())

    def describe(self) -> str:
        """For the error message, e.g. ``no byte for 121 s (stall budget 120 s)``."""
        return f"no byte for {self.stalled():.0f} s (stall budget {self._budget:g} s)"


class Backoff:
    """Shared by one stream's threads: counts retries against the budget and sleeps.

    The default sleep waits on ``cancel`` so that closing a stream interrupts a backoff at
    once instead of waiting it out.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        cancel: threading.Event | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock if clock is not None else time.monotonic
        self.cancel = cancel if cancel is not None else threading.Event()
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self.retries = 0
        self.throttles = 0
        self.slept = 0.0

    def _interruptible_sleep(self, seconds: float) -> None:
        self.cancel.wait(seconds)

    def stall_watch(self) -> StallWatch:
        """A watch for one block's tries, started now, with the policy's stall budget."""
        return StallWatch(self.policy.stall_budget, self._clock, self.policy.read_timeout)

    def try_spend(self, attempt: int, *, throttled: bool = False, watch: StallWatch | None = None) -> bool:
        """Whether the try after failed try number ``attempt`` (1-based, per block) is allowed.

        When it is, wait the jittered delay first (never past what is left of ``watch``'s
        stall budget) and count the retry; when it is not (attempts, retry budget or stall
        budget used up, or the stream closed), return False without waiting. While the server
        does not answer at all, the stall budget replaces ``max_attempts``: a server that
        restarts within it is waited for.
        """
        with self._lock:
            out_of_tries = attempt >= self.policy.max_attempts and not (watch is not None and watch.bounds_tries)
            if self.cancel.is_set() or out_of_tries or self.retries >= self.policy.budget:
                return False
            if watch is not None and watch.spent():
                return False
            self.retries += 1
            if throttled:
                self.throttles += 1
            delay = self.policy.delay(attempt - 1, self._rng, throttled=throttled)
            left = watch.remaining() if watch is not None else None
            if left is not None:
                delay = min(delay, left)
            self.slept += delay
        if delay > 0:
            self._sleep(delay)
        return not self.cancel.is_set()
