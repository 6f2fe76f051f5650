"""Who reads what: files (with their sizes) cut into at most ``parallelism`` read tasks.

Runs on the driver, once per dataset, without reading any record. Enough files: consecutive
files are grouped into tasks of about equal bytes. More tasks wanted than files: each
uncompressed file big enough is cut into byte ranges (a range resynchronises on the first
valid record at or after its start; see :mod:`tfrecord_s3.records.resync`), and a compressed
file, which cannot be entered mid-stream, stays whole.
"""

from __future__ import annotations

import heapq
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..dataset.split import Assignment
from ..dataset.split import _file_size as file_size
from ..records.compression import resolve_compression

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = ["Task", "file_sizes", "plan_tasks"]

# HEADs in flight while sizing the files of a dataset (S3: ~10 ms each).
_STAT_THREADS = 16

Task = tuple[Assignment, ...]


def file_sizes(paths: list[str], config: S3Config | None) -> list[int]:
    """The byte length of each file: from the listing for a glob's matches (no request),
    statted concurrently otherwise (ObjectNotFoundError names a missing one)."""
    unknown = [path for path in paths if not isinstance(getattr(path, "size", None), int)]
    if len(unknown) <= 1:
        return [file_size(path, config) for path in paths]
    with ThreadPoolExecutor(min(_STAT_THREADS, len(unknown))) as pool:
        statted = dict(zip(unknown, pool.map(lambda path: file_size(path, config), unknown), strict=True))
    return [statted[path] if path in statted else file_size(path, config) for path in paths]


def plan_tasks(
    paths: list[str],
    sizes: list[int],
    parallelism: int,
    *,
    compression_type: str | None,
    min_range_bytes: int,
) -> list[tuple[Task, int]]:
    """(the parts one task reads, their bytes) for about ``parallelism`` tasks, covering every
    record of every file exactly once. Ranges are never smaller than ``min_range_bytes``."""
    parallelism = max(1, parallelism)
    if parallelism <= len(paths):
        return _grouped(paths, sizes, parallelism)
    counts = _pieces(paths, sizes, parallelism - len(paths), compression_type, max(1, min_range_bytes))
    tasks: list[tuple[Task, int]] = []
    for path, size, pieces in zip(paths, sizes, counts, strict=True):
        if pieces == 1:
            tasks.append(((Assignment(path),), size))
            continue
        for index in range(pieces):
            start, end = size * index // pieces, size * (index + 1) // pieces
            tasks.append(((Assignment(path, start, None if index == pieces - 1 else end),), end - start))
    return tasks


def _pieces(
    paths: list[str], sizes: list[int], extra: int, compression_type: str | None, min_range_bytes: int
) -> list[int]:
    """Ranges per file: one each, plus ``extra`` more handed out one at a time to the
    uncompressed file with the most bytes per range, while its ranges stay >= the minimum."""
    pieces = [1] * len(paths)
    heap = [
        (-size, index)
        for index, (path, size) in enumerate(zip(paths, sizes, strict=True))
        if not resolve_compression(compression_type, path) and size >= 2 * min_range_bytes
    ]
    heapq.heapify(heap)
    while extra > 0 and heap:
        _, index = heapq.heappop(heap)
        pieces[index] += 1
        extra -= 1
        if sizes[index] // (pieces[index] + 1) >= min_range_bytes:
            heapq.heappush(heap, (-(sizes[index] // pieces[index]), index))
    return pieces


def _grouped(paths: list[str], sizes: list[int], groups: int) -> list[tuple[Task, int]]:
    """Consecutive files in ``groups`` runs of about equal bytes (by count if all are empty)."""
    total = sum(sizes)
    weights = sizes if total else [1] * len(paths)
    total = sum(weights)
    runs: list[list[int]] = [[] for _ in range(groups)]
    before = 0
    for index, weight in enumerate(weights):
        # Placed by its middle byte, so the runs come out of about equal bytes.
        runs[min(groups - 1, (2 * before + weight) * groups // (2 * total))].append(index)
        before += weight
    return [(tuple(Assignment(paths[i]) for i in run), sum(sizes[i] for i in run)) for run in runs if run]
