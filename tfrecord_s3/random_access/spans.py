"""Which byte ranges to fetch for a batch of records: sorted, merged across small gaps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    """Bytes ``[start, end)`` of file ``file``: the frames of records ``first .. last`` (file-local
    record numbers), every one of them read and checked, of which ``wanted`` are returned."""

    file: int
    start: int
    end: int
    first: int
    last: int


def coalesce(
    file: int,
    records: Sequence[int] | np.ndarray,
    offsets: np.ndarray,
    ends: np.ndarray,
    *,
    max_gap: int,
    max_span: int,
) -> list[Span]:
    """Spans covering ``records`` (file-local numbers, sorted and unique) of one file.

    Two records go in one span when the bytes between them are at most ``max_gap`` and the
    span stays within ``max_span`` bytes (a single record larger than that is its own span):
    one GET of a few wasted bytes beats a second round trip."""
    spans: list[Span] = []
    if not len(records):
        return spans
    first = last = int(records[0])
    start, end = int(offsets[first]), int(ends[first])
    for record in records[1:]:
        r = int(record)
        r_start, r_end = int(offsets[r]), int(ends[r])
        if r_start - end <= max_gap and r_end - start <= max_span:
            last, end = r, r_end
            continue
        spans.append(Span(file, start, end, first, last))
        first = last = r
        start, end = r_start, r_end
    spans.append(Span(file, start, end, first, last))
    return spans
