"""Record counts from our index sidecars (``<file>.tfrecord-s3.idx``), so Ray counts without reading.

A sidecar's record count is used only when its stamp matches the data file as planned (its
size, and its ETag on S3 or mtime locally); a stale one is not trusted (a warning says so
and the file is counted by reading it), a damaged one raises CorruptIndexError.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..errors import StaleIndexError
from ..index import DataStamp, find_index, sidecar_path
from ..records.compression import resolve_compression
from ..storage import filesystem
from ..storage.filesystem import is_s3

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = ["index_rows"]

# Sidecar GETs in flight at once on S3.
_THREADS = 16


def index_rows(
    paths: list[str], sizes: list[int], config: S3Config | None, *, compression_type: str | None, s3: bool
) -> list[int | None]:
    """Records in each uncompressed file whose fresh sidecar says (None elsewhere). ``s3``:
    look for sidecars of ``s3://`` files too (one GET each), not only of local files."""
    wanted = [not resolve_compression(compression_type, path) and (s3 or not is_s3(path)) for path in paths]
    jobs = [(path, size) for path, size, want in zip(paths, sizes, wanted, strict=True) if want]
    if len(jobs) <= 1:
        found = [_rows(path, size, config) for path, size in jobs]
    else:
        with ThreadPoolExecutor(min(_THREADS, len(jobs))) as pool:
            found = list(pool.map(lambda job: _rows(job[0], job[1], config), jobs))
    counts = iter(found)
    return [next(counts) if want else None for want in wanted]


def _rows(path: str, size: int, config: S3Config | None) -> int | None:
    index = find_index(path, config=config)
    if index is None:
        return None
    try:
        index.check_fresh(_stamp(path, size), path=sidecar_path(path), data_path=path)
    except StaleIndexError as stale:
        warnings.warn(f"{stale}; its records are counted by reading it", RuntimeWarning, stacklevel=2)
        return None
    return len(index)


def _stamp(path: str, size: int) -> DataStamp:
    # The version planned: a listed or HEADed object carries its ETag; a local file its mtime.
    etag = getattr(path, "etag", "")
    if is_s3(path):
        return DataStamp(size=size, etag=etag if isinstance(etag, str) else "")
    return DataStamp(size=size, mtime_ns=filesystem.stat(path).mtime_nsec)
