"""What every scenario shares: reading through the library, the outcome it records, and
the checks, written once so pytest and ``python -m benchmarks.reliability`` agree."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.faults.schedule import RequestLog
from tests.reliability.corpus import CorpusFile, RecordId, Tally, index_of, tally
from tests.reliability.world import World
from tfrecord_s3.config import S3Config
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.dataset.stats import DatasetStats


@dataclass
class Run:
    """One read: the records emitted, the error that ended it (if any), its counters."""

    records: list[bytes]
    error: BaseException | None
    stats: DatasetStats | None
    seconds: float


@dataclass
class Outcome:
    """What a scenario saw. ``problems`` lists every expectation that did not hold."""

    scenario: str
    variant: str
    compression: str
    injected: int
    tally: Tally
    error: BaseException | None
    seconds: float
    redownloaded: int
    gets: int
    retries: int
    strict: bool = True  # on_corrupt="raise": nothing may be lost
    problems: list[str] = field(default_factory=list)
    notes: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def survived(self) -> int:
        """Faults handled as RELIABILITY.md says (all of them, or none if anything failed)."""
        return self.injected if self.ok else 0

    def describe(self) -> str:
        error = f"{type(self.error).__name__}: {self.error}" if self.error else "no error"
        return f"{self.scenario}/{self.variant}/{self.compression or 'raw'}: {error}; problems: {self.problems}"


class Checks:
    """Collects failed expectations instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def that(self, condition: bool, message: str) -> bool:
        if not condition:
            self.problems.append(message)
        return condition

    def equal(self, got: object, want: object, what: str) -> bool:
        return self.that(got == want, f"{what}: got {got!r}, want {want!r}")

    def error_is(
        self, error: BaseException | None, kind: type[BaseException] | None, *, path: str | None = None
    ) -> bool:
        if kind is None:
            return self.that(error is None, f"unexpected error {type(error).__name__}: {error}")
        if not self.that(isinstance(error, kind), f"want {kind.__name__}, got {type(error).__name__}: {error}"):
            return False
        if path is not None:
            self.equal(getattr(error, "path", None), path, "error.path")
            self.that(path in str(error), f"error message does not name {path}: {error}")
        return True


def read(
    urls: Sequence[str],
    compression: str,
    config: S3Config,
    *,
    after_first: Callable[[], None] | None = None,
    **options: Any,
) -> Run:
    """Read ``urls`` with a TFRecordDataset; ``after_first`` runs once the first record is in."""
    dataset = TFRecordDataset(list(urls), compression or None, config=config, **options)
    records: list[bytes] = []
    error: BaseException | None = None
    started = time.perf_counter()
    try:
        for record in dataset:
            records.append(record)
            if after_first is not None and len(records) == 1:
                after_first()
    except Exception as exc:  # the typed error is part of the outcome
        error = exc
    seconds = time.perf_counter() - started
    stats = dataset._box.stats  # set once iteration started, even if it failed at once
    return Run(records, error, stats, seconds)


def faulted(world: World) -> list[RequestLog]:
    world.proxy.wait_idle(5.0)
    return world.proxy.requests(key=world.prefix, faulted=True)


def gets(world: World, name: str | None = None) -> list[RequestLog]:
    return world.proxy.requests(method="GET", key=world.key(name) if name else world.prefix)


def range_start(entry: RequestLog) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-\d*", entry.range_header or "")
    return int(match.group(1)) if match else None


def redownloaded(world: World) -> int:
    """Object bytes the proxy sent more than once (body bytes of 200/206 answers)."""
    world.proxy.wait_idle(5.0)
    seen: dict[str, list[tuple[int, int]]] = {}
    total = 0
    for entry in gets(world):
        if entry.status not in (200, 206) or not entry.body_bytes:
            continue
        start = 0 if entry.status == 200 else (range_start(entry) or 0)
        seen.setdefault(entry.path, []).append((start, start + entry.body_bytes))
        total += entry.body_bytes
    return total - sum(_union(spans) for spans in seen.values())


def _union(spans: list[tuple[int, int]]) -> int:
    covered, end = 0, -1
    for lo, hi in sorted(spans):
        lo = max(lo, end)
        if hi > lo:
            covered += hi - lo
            end = hi
    return covered


def outcome(
    world: World,
    scenario: str,
    variant: str,
    compression: str,
    files: Iterable[CorpusFile],
    expected: Sequence[RecordId],
    run: Run,
    checks: Checks,
    *,
    strict: bool = True,
    notes: str = "",
) -> Outcome:
    """Tally the run against ``expected`` and add the checks every scenario shares."""
    files = list(files)
    counts = tally(expected, run.records, stopped_by_error=run.error is not None, known=index_of(files))
    checks.equal(counts.duplicated, 0, "duplicated records")
    checks.equal(counts.corrupt, 0, "corrupt records emitted")
    checks.equal(counts.out_of_order, 0, "records out of order")
    if strict:
        checks.equal(counts.missing, [], "records lost")
    faults = faulted(world)
    return Outcome(
        scenario=scenario,
        variant=variant,
        compression=compression,
        injected=len(faults),
        tally=counts,
        error=run.error,
        seconds=run.seconds,
        redownloaded=redownloaded(world),
        gets=len(gets(world)),
        retries=run.stats.retries if run.stats is not None else 0,
        strict=strict,
        problems=checks.problems,
        notes=notes,
    )


def all_ids(files: Iterable[CorpusFile]) -> list[RecordId]:
    return [rid for f in files for rid in f.ids]
