"""Counters a dataset keeps while it reads: what came out, what it cost, what was skipped."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FileTiming:
    path: str
    seconds: float
    records: int
    bytes: int


@dataclass
class DatasetStats:
    """Thread-safe counters of one iteration (``dataset.stats`` after or during a loop)."""

    records: int = 0
    bytes: int = 0
    requests: int = 0
    bytes_requested: int = 0
    retries: int = 0
    throttles: int = 0  # retries caused by 503 SlowDown and the like (part of ``retries``)
    hedges: int = 0  # second GETs raced against slow ones (part of ``requests``)
    skipped_records: int = 0
    skipped_files: int = 0
    files_done: int = 0
    started: float = field(default_factory=time.perf_counter)
    #: When the iteration ended (None while it runs): rates stay what they were at the end.
    finished: float | None = None
    first_record_seconds: float | None = None
    per_file: list[FileTiming] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_storage(
        self, requests: int, bytes_requested: int, retries: int, throttles: int = 0, hedges: int = 0
    ) -> None:
        with self._lock:
            self.requests += requests
            self.bytes_requested += bytes_requested
            self.retries += retries
            self.throttles += throttles
            self.hedges += hedges

    def file_finished(self, timing: FileTiming, skipped: bool = False) -> None:
        with self._lock:
            self.per_file.append(timing)
            self.files_done += 1
            if skipped:
                self.skipped_files += 1

    def finish(self) -> None:
        if self.finished is None:
            self.finished = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds from the start of the iteration to its end (or to now, while it runs)."""
        end = self.finished if self.finished is not None else time.perf_counter()
        return end - self.started

    def as_dict(self) -> dict[str, Any]:
        seconds = self.elapsed()
        return {
            "records": self.records,
            "bytes": self.bytes,
            "seconds": seconds,
            "records_per_s": self.records / seconds if seconds > 0 else 0.0,
            "mb_per_s": self.bytes / seconds / 1e6 if seconds > 0 else 0.0,
            "requests": self.requests,
            "bytes_requested": self.bytes_requested,
            "retries": self.retries,
            "throttles": self.throttles,
            "hedges": self.hedges,
            "skipped_records": self.skipped_records,
            "skipped_files": self.skipped_files,
            "files_done": self.files_done,
            "first_record_seconds": self.first_record_seconds,
        }
