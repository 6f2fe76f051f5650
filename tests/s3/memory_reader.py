"""An in-memory StreamingRangeReader that raises the faults a real server cannot be made to
produce on demand (botocore/urllib3 body errors), following a per-request plan.

Both readers hand BlockStream the S3 fault handling, as S3RangeReader does."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tfrecord_s3.storage.s3_errors import S3_FAULTS


@dataclass(frozen=True)
class Fail:
    """Deliver ``after`` bytes of the range, then raise ``error()`` (``after=0``: before any)."""

    error: Callable[[], BaseException]
    after: int = 0


def client_error(code: str, status: int, operation: str = "GetObject") -> Callable[[], ClientError]:
    def make() -> ClientError:
        response: Any = {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, operation)

    return make


class MemoryReader:
    """Serves ``data``; request number i (0-based) follows ``plan(i, start, end)``. It stands
    in for S3: its faults are botocore's, understood as S3RangeReader's are."""

    faults = S3_FAULTS

    def __init__(
        self,
        data: bytes,
        *,
        plan: Callable[[int, int, int], Fail | None] | None = None,
        chunk: int = 4096,
        path: str = "s3://memory/object",
        extra: int = 0,
    ) -> None:
        self.data = data
        self._plan = plan
        self._chunk = chunk
        self._path = path
        self._extra = extra
        self._lock = threading.Lock()
        self.calls: list[tuple[int, int]] = []

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def path(self) -> str:
        return self._path

    def read_range(self, start: int, end: int) -> bytes:
        return b"".join(self.iter_range(start, end))

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        with self._lock:
            number = len(self.calls)
            self.calls.append((start, end))
        fail = self._plan(number, start, end) if self._plan else None
        view = memoryview(self.data)[start : end + self._extra]
        sent = 0
        while sent < len(view):
            if fail is not None and sent >= fail.after:
                raise fail.error()
            step = self._chunk if fail is None else min(self._chunk, fail.after - sent)
            piece = bytes(view[sent : sent + step])
            sent += len(piece)
            yield piece
        if fail is not None:
            raise fail.error()


class PlainReader:
    """Only ``read_range`` (the base RangeReader protocol): all or nothing per call."""

    faults = S3_FAULTS

    def __init__(self, data: bytes, failures: int, error: Callable[[], BaseException]) -> None:
        self.data = data
        self.failures = failures
        self.error = error
        self.calls = 0

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def path(self) -> str:
        return "s3://memory/plain"

    def read_range(self, start: int, end: int) -> bytes:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error()
        return self.data[start:end]
