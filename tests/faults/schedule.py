"""What the fault proxy injects, and when: faults, the rules that schedule them, the seeded
storm, and the per-request log.

Byte positions in a fault count bytes of the response body sent to the client, from 0,
unless the fault was built with ``absolute=True``: then they are offsets in the object, and
the proxy converts them with the body's first object offset (from ``Content-Range``); such
a rule only matches requests whose Range covers that byte, and a response that does not
carry it is logged with ``fault_skipped``. A relative position at or past the end of the
body acts after the whole body (a reset then kills the kept-alive connection only); a bit
flip past the end is skipped.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class FaultKind(str, enum.Enum):
    RESET_BEFORE_HEADERS = "reset_before_headers"
    RESET_AFTER = "reset_after"
    CLOSE_AFTER = "close_after"
    STALL = "stall"
    DRIP = "drip"
    FLIP_BIT = "flip_bit"
    ERROR = "error"
    FULL_200 = "full_200"
    PARTIAL_200 = "partial_200"
    WRONG_CONTENT_RANGE = "wrong_content_range"
    CUT_HEAD = "cut_head"


# Faults the proxy answers itself, without forwarding the request upstream.
ANSWERED_BY_PROXY = frozenset({FaultKind.RESET_BEFORE_HEADERS, FaultKind.ERROR})


@dataclass(frozen=True)
class Fault:
    """One fault. Build it with the class methods; the fields are their parameters."""

    kind: FaultKind
    at: int | None = None  # body byte position (see module docstring); None: before headers
    absolute: bool = False
    seconds: float = 0.0
    chunk: int = 1
    interval: float = 0.0
    bit: int = 0
    status: int = 0
    code: str = ""
    message: str = ""
    content_range: str | None = None
    shift: int = 1

    @classmethod
    def reset_before_headers(cls) -> Fault:
        """RST the connection once the request is read; nothing is sent, nothing forwarded."""
        return cls(FaultKind.RESET_BEFORE_HEADERS)

    @classmethod
    def reset_after(cls, n: int, *, absolute: bool = False) -> Fault:
        """Send the headers and ``n`` body bytes, then RST (SO_LINGER 0)."""
        return cls(FaultKind.RESET_AFTER, at=_non_negative(n), absolute=absolute)

    @classmethod
    def close_after(cls, n: int, *, absolute: bool = False) -> Fault:
        """Send the headers (Content-Length intact) and ``n`` body bytes, then a clean FIN."""
        return cls(FaultKind.CLOSE_AFTER, at=_non_negative(n), absolute=absolute)

    @classmethod
    def stall(cls, seconds: float, *, after: int | None = None, absolute: bool = False) -> Fault:
        """Wait ``seconds`` before the headers (``after=None``) or after ``after`` body bytes,
        then carry on normally if the client is still there."""
        return cls(
            FaultKind.STALL, at=None if after is None else _non_negative(after), absolute=absolute, seconds=seconds
        )

    @classmethod
    def drip(cls, chunk: int, interval: float, *, after: int = 0) -> Fault:
        """From body byte ``after`` on, send ``chunk`` bytes every ``interval`` seconds."""
        if chunk < 1:
            raise ValueError("drip chunk must be >= 1 byte")
        return cls(FaultKind.DRIP, at=_non_negative(after), chunk=chunk, interval=interval)

    @classmethod
    def cut_head(cls, n: int) -> Fault:
        """Send the first ``n`` bytes of the response's status line and headers (from the
        server), then a clean FIN: a reply cut inside its head."""
        return cls(FaultKind.CUT_HEAD, at=_non_negative(n))

    @classmethod
    def flip_bit(cls, at: int, *, bit: int = 0, absolute: bool = False) -> Fault:
        """XOR bit ``bit`` (0 = least significant) of body byte ``at``."""
        if not 0 <= bit < 8:
            raise ValueError("bit must be in 0..7")
        return cls(FaultKind.FLIP_BIT, at=_non_negative(at), bit=bit, absolute=absolute)

    @classmethod
    def error(cls, status: int, code: str, message: str) -> Fault:
        """Answer an S3 XML error (Code, Message, Resource, RequestId) without forwarding."""
        return cls(FaultKind.ERROR, status=status, code=code, message=message)

    @classmethod
    def internal_error(cls) -> Fault:
        return cls.error(500, "InternalError", "We encountered an internal error. Please try again.")

    @classmethod
    def slow_down(cls) -> Fault:
        return cls.error(503, "SlowDown", "Please reduce your request rate.")

    @classmethod
    def expired_token(cls) -> Fault:
        return cls.error(403, "ExpiredToken", "The provided token has expired.")

    @classmethod
    def access_denied(cls) -> Fault:
        return cls.error(403, "AccessDenied", "Access Denied")

    @classmethod
    def full_200(cls) -> Fault:
        """Drop the request's Range header before forwarding: 200 with the whole object.
        (Changes a signed header: fine for moto, which does not check signatures.)"""
        return cls(FaultKind.FULL_200)

    @classmethod
    def partial_200(cls) -> Fault:
        """Forward the 206 body unchanged but as ``200 OK`` without ``Content-Range``."""
        return cls(FaultKind.PARTIAL_200)

    @classmethod
    def wrong_content_range(cls, value: str | None = None, *, shift: int = 1) -> Fault:
        """Send ``Content-Range: value``, or by default the real range moved by ``shift`` bytes.
        The body is unchanged. A response without Content-Range gets one added."""
        return cls(FaultKind.WRONG_CONTENT_RANGE, content_range=value, shift=shift)

    def describe(self) -> str:
        """Short text for the request log, e.g. ``reset_after(100)``, ``error(503 SlowDown)``."""
        k = self.kind
        where = f"@{self.at}" if self.absolute else f"{self.at}"
        if k in (FaultKind.RESET_AFTER, FaultKind.CLOSE_AFTER, FaultKind.CUT_HEAD):
            return f"{k.value}({where})"
        if k is FaultKind.STALL:
            pos = "before_headers" if self.at is None else f"after={where}"
            return f"stall({self.seconds}s, {pos})"
        if k is FaultKind.DRIP:
            return f"drip({self.chunk}B/{self.interval}s, after={self.at})"
        if k is FaultKind.FLIP_BIT:
            return f"flip_bit({where}, bit={self.bit})"
        if k is FaultKind.ERROR:
            return f"error({self.status} {self.code})"
        if k is FaultKind.WRONG_CONTENT_RANGE:
            return f"wrong_content_range({self.content_range or f'shift={self.shift}'})"
        return str(k.value)

    def body_position(self, body_start: int, body_len: int) -> int | None:
        """The fault's body-relative position in a body of ``body_len`` bytes that starts at
        object offset ``body_start``; None when an absolute position falls outside it."""
        if self.at is None:
            return None
        if not self.absolute:
            return self.at
        pos = self.at - body_start
        return pos if 0 <= pos < body_len else None

    def implicit_window(self) -> tuple[int, int] | None:
        """An absolute position only makes sense for responses that carry that byte."""
        if self.absolute and self.at is not None:
            return (self.at, self.at + 1)
        return None


def _non_negative(n: int) -> int:
    if n < 0:
        raise ValueError(f"byte position must be >= 0, got {n}")
    return n


@dataclass(frozen=True)
class RequestInfo:
    """What a rule can match on: parsed from the request line and headers."""

    method: str
    path: str  # request target without the query string, still %-encoded
    query: str
    range_header: str | None

    def byte_span(self) -> tuple[int, int | None]:
        """Object bytes the response will carry, [start, end) with end None when unknown."""
        if self.method == "HEAD":  # carries no body bytes at all
            return (0, 0)
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", self.range_header or "")
        if not m or not m.group(1):  # no Range, or a suffix range: may start anywhere
            return (0, None)
        start = int(m.group(1))
        return (start, int(m.group(2)) + 1 if m.group(2) else None)


@dataclass
class Rule:
    """Fire ``fault`` on matching requests number ``skip+1`` .. ``skip+times`` (1-based;
    ``times=None``: every one from ``skip+1`` on). Criteria left None match anything.

    ``matched`` counts requests meeting the criteria, also those another rule faulted,
    except one that came on this rule's turn: an earlier rule (in the order added) wins,
    and this one fires on its next match instead. Counters are guarded by the proxy's lock."""

    fault: Fault
    method: str | None = None
    key: str | None = None  # substring of the request path (``/bucket/key``)
    key_regex: str | None = None  # re.search on the request path
    window: tuple[int, int] | None = None  # object bytes [lo, hi) the response must overlap
    skip: int = 0
    times: int | None = 1
    matched: int = 0
    fired: int = 0

    def criteria_match(self, req: RequestInfo) -> bool:
        if self.method is not None and req.method.upper() != self.method.upper():
            return False
        if self.key is not None and self.key not in req.path:
            return False
        if self.key_regex is not None and not re.search(self.key_regex, req.path):
            return False
        window = self.window or self.fault.implicit_window()
        if window is not None:
            start, end = req.byte_span()
            if not (start < window[1] and (end is None or end > window[0])):
                return False
        return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def due(self) -> bool:
        """Whether the request just counted in ``matched`` is one this rule should fault."""
        return self.matched > self.skip and not self.exhausted


StormFault = Fault | Callable[[random.Random], Fault]


@dataclass
class Storm:
    """A random fault from ``faults`` on about ``fraction`` of matching requests.

    Each request draws from its own ``random.Random`` seeded with (seed, method, path,
    Range, how many times this exact request was seen), so the faults a run gets do not
    depend on how concurrent requests interleave. An entry of ``faults`` may be a callable
    that builds the fault from that generator (e.g. a random reset offset)."""

    seed: int
    fraction: float
    faults: Sequence[StormFault]
    method: str | None = "GET"
    key: str | None = None
    max_faults: int | None = None
    injected: int = 0
    seen: dict[tuple[str, str, str | None], int] = field(default_factory=dict)

    def draw(self, req: RequestInfo) -> Fault | None:
        if self.method is not None and req.method.upper() != self.method.upper():
            return None
        if self.key is not None and self.key not in req.path:
            return None
        ident = (req.method, req.path, req.range_header)
        repeat = self.seen.get(ident, 0)
        self.seen[ident] = repeat + 1
        if self.max_faults is not None and self.injected >= self.max_faults:
            return None
        rng = random.Random(f"{self.seed}|{req.method}|{req.path}|{req.range_header}|{repeat}")
        if rng.random() >= self.fraction:
            return None
        choice = rng.choice(list(self.faults))
        self.injected += 1
        return choice if isinstance(choice, Fault) else choice(rng)


def default_storm_faults(max_offset: int = 4096) -> list[StormFault]:
    """Faults a correct reader survives with identical output: resets before headers and
    after a random body offset below ``max_offset``, clean early closes, 500 and 503."""
    return [
        Fault.reset_before_headers(),
        lambda rng: Fault.reset_after(rng.randrange(max_offset)),
        lambda rng: Fault.close_after(rng.randrange(max_offset)),
        Fault.internal_error(),
        Fault.slow_down(),
    ]


@dataclass
class RequestLog:
    """One request as the proxy handled it. ``status`` is what the client was sent (None if
    the connection died before headers); ``body_bytes`` counts body bytes written to the
    client socket. Fields are final once ``finished`` is set."""

    seq: int
    conn: int  # client connection number, to see keep-alive reuse
    method: str
    path: str
    query: str
    range_header: str | None
    fault: str | None = None  # Fault.describe() of the fault applied
    fault_kind: FaultKind | None = None
    fault_source: str | None = None  # "rule" or "storm"
    fault_skipped: bool = False  # the fault's absolute position was not in this body
    upstream_status: int | None = None
    status: int | None = None
    content_length: int | None = None  # as announced to the client
    content_range: str | None = None  # as sent to the client
    body_bytes: int = 0
    complete: bool = False  # headers and the whole announced body were sent
    started: float = 0.0
    finished: float | None = None
