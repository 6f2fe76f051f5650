"""Equal shares by record number: every reader gets exactly ``total // readers`` records.

The files (in the epoch's order) are laid end to end as one sequence of records and cut
into ``readers`` runs of the same length; the last ``total % readers`` records sit out the
epoch (different ones each epoch when the files are shuffled). A run starts in a file at a
record number: with the file's index it seeks straight there, without one it skips the
records before it (at most one file's head per reader).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..records.reader import open_records

if TYPE_CHECKING:
    from ..index import RecordIndex


@dataclass(frozen=True)
class RecordRun:
    """Records ``first`` to ``stop - 1`` of ``path``; ``offset`` is record ``first``'s byte
    offset when an index gave it (None: skip ``first`` records from the start)."""

    path: str
    first: int
    stop: int
    offset: int | None = None


def share(total: int, readers: int) -> int:
    """Records each reader reads."""
    return total // readers


def plan_runs(
    files: Sequence[str],
    counts: Sequence[int],
    reader: int,
    readers: int,
    indexes: Sequence[RecordIndex | None] | None = None,
) -> list[RecordRun]:
    """The runs of records reader ``reader`` of ``readers`` reads."""
    each = share(sum(counts), readers)
    lo, hi = reader * each, (reader + 1) * each
    runs: list[RecordRun] = []
    base = 0
    for i, (path, count) in enumerate(zip(files, counts, strict=True)):
        first, stop = max(lo - base, 0), min(hi - base, count)
        if first < stop:
            index = indexes[i] if indexes is not None else None
            offset = int(index.offsets[first]) if index is not None and len(index) == count else None
            runs.append(RecordRun(path, first, stop, offset))
        base += count
    return runs


def iter_run(run: RecordRun, options: Any) -> Iterator[bytes]:
    """The records of one run, CRC-checked as any sequential read (``options``: ReadOptions)."""
    records = open_records(
        run.path,
        options.compression_type,
        verify_crc=options.verify_crc,
        max_record_bytes=options.max_record_bytes,
        max_decompression_ratio=options.max_decompression_ratio,
        start_offset=run.offset or 0,
        config=options.config,
    )
    skip = 0 if run.offset is not None else run.first
    want = run.stop - run.first
    got = 0
    try:
        for record in islice(records, skip, skip + want):
            got += 1
            yield record
    finally:
        records.close()  # type: ignore[attr-defined]
    if got < want:
        # Fewer records than counted: the steps would no longer be even across readers.
        raise ConfigError(
            f"{run.path}: ends after {run.first + got} records, but its record count says at least {run.stop}; "
            "the counts (index or TFDS metadata) are stale"
        )
