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

from ..config import S3Config
from ..dataset.split import Assignment
from ..dataset.split import _file_size as file_size
from ..errors import ObjectNotFoundError
from ..records.compression import resolve_compression
from ..storage.filesystem import is_s3
from ..storage.s3_files import ListedObject
from ..storage.s3_path import S3Path
from ..storage.s3_reader import head_object

__all__ = ["Task", "plan_tasks", "sized_files"]

# HEADs in flight while sizing the files of a dataset (S3: ~10 ms each).
_STAT_THREADS = 16

Task = tuple[Assignment, ...]


def sized_files(paths: list[str], config: S3Config | None) -> tuple[list[str], list[int]]:
    """Each file with its byte length. A glob's matches keep the listing's size (no request);
    another ``s3://`` object is HEADed once, here, and comes back as a
    :class:`~tfrecord_s3.storage.s3_files.ListedObject` carrying its size and ETag, so the
    read tasks open it without a HEAD of their own (and refuse a rewritten one); a local
    file is statted. ObjectNotFoundError names a missing file."""
    unknown = [path for path in paths if not isinstance(getattr(path, "size", None), int)]
    if len(unknown) <= 1:
        pinned = [_pinned(path, config) for path in unknown]
    else:
        with ThreadPoolExecutor(min(_STAT_THREADS, len(unknown))) as pool:
            pinned = list(pool.map(lambda path: _pinned(path, config), unknown))
    found = iter(pinned)
    out = [(path, listed) if isinstance(listed := getattr(path, "size", None), int) else next(found) for path in paths]
    return [path for path, _ in out], [size for _, size in out]


def _pinned(path: str, config: S3Config | None) -> tuple[str, int]:
    if is_s3(path):
        try:
            head = head_object(S3Path.parse(path), config if config is not None else S3Config.from_env())
        except ObjectNotFoundError:
            file_size(path, config)  # a prefix: "not a file" (else the not-found error again)
            raise
        size = int(head["ContentLength"])
        # No ETag (some S3-compatible stores): the task then HEADs the object itself.
        return ListedObject(path, size, str(head.get("ETag") or "")), size
    return path, file_size(path, config)


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
