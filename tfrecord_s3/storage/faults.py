"""What a transport tells BlockStream about its failures: the seam's fault vocabulary.

BlockStream retries, resumes and raises without knowing which client library produced an
exception: the reader hands in a :class:`TransportFaults` (its ``faults`` attribute) that
classifies an exception, turns a final one into our typed error, and describes one safely
for a log line. A reader without one gets :data:`NEUTRAL_FAULTS`, which knows only the
builtin exceptions every Python transport raises.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

from ..errors import ConfigError, StorageError

__all__ = ["NEUTRAL_FAULTS", "Fault", "NeutralFaults", "ShortBodyError", "TransportFaults", "faults_of"]


class Fault(enum.Enum):
    """What to do about an exception raised by a request."""

    FATAL = "fatal"  # translate and raise at once
    TRANSIENT = "transient"  # retry with backoff from the next unconsumed byte
    THROTTLE = "throttle"  # the server asks us to slow down: retry with the longer backoff
    REFRESH = "refresh"  # the credentials expired: fetch fresh ones, retry once


class ShortBodyError(Exception):
    """A body that ended before the bytes its headers promised (a clean close mid-body)."""


@runtime_checkable
class TransportFaults(Protocol):
    """How one transport's exceptions are understood."""

    def classify(self, exc: BaseException) -> Fault:
        """Whether ``exc`` from a range request is worth retrying, and how."""
        ...

    def translate(
        self, exc: BaseException, path: str, operation: str, offset: int | None = None
    ) -> StorageError | ConfigError:
        """Our typed error for a final ``exc`` (raised ``from exc``), naming ``path`` and
        ``offset``, the first byte not delivered."""
        ...

    def describe(self, exc: BaseException) -> str:
        """A short description safe to log: never text that may echo request details."""
        ...

    def answered(self, exc: BaseException) -> bool:
        """Whether the server replied to the failed request (an error status): it is up,
        so the time since is not a stall."""
        ...

    def timed_out(self, exc: BaseException) -> bool:
        """Whether ``exc`` is a read timeout: its last byte came one read timeout earlier."""
        ...


class NeutralFaults:
    """Builtin exceptions only: a dropped connection, a timeout or a body cut short is
    retried; anything else is fatal and raised as a StorageError."""

    _TRANSIENT: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError, ShortBodyError)

    def classify(self, exc: BaseException) -> Fault:
        return Fault.TRANSIENT if isinstance(exc, self._TRANSIENT) else Fault.FATAL

    def translate(
        self, exc: BaseException, path: str, operation: str, offset: int | None = None
    ) -> StorageError | ConfigError:
        if isinstance(exc, (StorageError, ConfigError)):
            return exc
        at = f" at byte {offset}" if offset is not None else ""
        return StorageError(f"{operation} {path}{at}: {self.describe(exc)}", path=path, operation=operation)

    def describe(self, exc: BaseException) -> str:
        return type(exc).__name__

    def answered(self, exc: BaseException) -> bool:
        return False  # builtin exceptions carry no reply

    def timed_out(self, exc: BaseException) -> bool:
        return isinstance(exc, TimeoutError)


NEUTRAL_FAULTS = NeutralFaults()


def faults_of(reader: object) -> TransportFaults:
    """The fault handling ``reader`` hands in (its ``faults``), else :data:`NEUTRAL_FAULTS`."""
    faults = getattr(reader, "faults", None)
    return faults if isinstance(faults, TransportFaults) else NEUTRAL_FAULTS
