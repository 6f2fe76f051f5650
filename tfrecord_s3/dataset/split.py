"""Split a list of files between readers (DataLoader workers x distributed ranks).

Enough files: each reader takes whole files, round-robin. Fewer files than readers: the
uncompressed files are laid end to end and cut into equal byte ranges; a record belongs to
the range holding its header's first byte, and a reader whose range starts mid-file
resynchronises on the first fully valid record. A compressed file cannot be entered in the
middle, so its readers all inflate it and keep every n-th record (with a warning).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..records.compression import resolve_compression
from ..records.framing import FRAME_OVERHEAD
from ..records.reader import open_record_stream, open_records
from ..records.resync import find_record_start
from ..storage import filesystem
from ..storage.base import not_a_file
from .prefetch import ReadOptions

if TYPE_CHECKING:
    from ..config import S3Config


@dataclass(frozen=True)
class Assignment:
    """Part of one file for one reader: records whose header starts in [start, end), or
    (for compressed files) every ``stride``-th record starting at record ``phase``."""

    path: str
    start: int = 0
    end: int | None = None
    stride: int = 1
    phase: int = 0

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end is None and self.stride == 1


def plan(
    files: list[str],
    reader: int,
    readers: int,
    *,
    compression_type: str | None,
    config: S3Config | None = None,
) -> list[Assignment]:
    """What reader ``reader`` of ``readers`` reads; together the readers read every record once."""
    if readers <= len(files):
        return [Assignment(path) for path in files[reader::readers]]
    plain = [p for p in files if not resolve_compression(compression_type, p)]
    packed = [p for p in files if resolve_compression(compression_type, p)]
    out: list[Assignment] = []
    if packed:
        warnings.warn(
            f"{len(packed)} compressed file(s) shared by {readers} readers cannot be split by byte range: "
            "each reader inflates them whole and keeps every n-th record",
            RuntimeWarning,
            stacklevel=3,
        )
        out.extend(Assignment(path, stride=readers, phase=reader) for path in packed)
    sizes = [_file_size(p, config) for p in plain]
    total = sum(sizes)
    lo, hi = total * reader // readers, total * (reader + 1) // readers
    base = 0
    for path, size in zip(plain, sizes, strict=True):
        start, end = max(lo - base, 0), min(hi - base, size)
        if start < end:
            out.append(Assignment(path, start, None if end >= size else end))
        base += size
    return out


def _file_size(path: str, config: S3Config | None) -> int:
    listed = getattr(path, "size", None)  # a glob's ListedObject: the listing said, no HEAD
    if isinstance(listed, int):
        return listed
    info = filesystem.stat(path, config=config)
    if info.is_directory:  # a directory would silently count as an empty file
        raise not_a_file(path, "a prefix (a directory)" if filesystem.is_s3(path) else "a directory")
    return info.length


def iter_assignment(part: Assignment, options: ReadOptions) -> Iterator[bytes]:
    """The records of one assignment, in file order."""
    if part.stride > 1:
        records = open_records(
            part.path,
            options.compression_type,
            verify_crc=options.verify_crc,
            max_record_bytes=options.max_record_bytes,
            max_decompression_ratio=options.max_decompression_ratio,
            config=options.config,
        )
        for index, record in enumerate(records):
            if index % part.stride == part.phase:
                yield record
        return
    start = _first_record(part, options)
    if start is None:
        return  # no record starts in this range: the previous reader has them all
    offset = start
    for record in open_records(
        part.path,
        "",
        verify_crc=options.verify_crc,
        max_record_bytes=options.max_record_bytes,
        start_offset=start,
        config=options.config,
    ):
        if part.end is not None and offset >= part.end:
            return
        yield record
        offset += len(record) + FRAME_OVERHEAD


def _first_record(part: Assignment, options: ReadOptions) -> int | None:
    """Where the first record of a byte-range part starts; None when none starts in it."""
    if part.start == 0:
        return 0
    raw, _ = open_record_stream(part.path, "", config=options.config)
    try:
        end = part.end if part.end is not None else _file_size(part.path, options.config)
        return find_record_start(raw, part.start, end, max_record_bytes=options.max_record_bytes)
    finally:
        raw.close()


def locate_in_parts(
    parts: Sequence[Assignment], options: ReadOptions, records: Sequence[object]
) -> list[tuple[str, int] | None]:
    """(path, byte offset) of each of ``records``, found by reading ``parts`` again (in the
    order given) until all are found: only to name a record in an error, never on the way.
    Offsets in a compressed file count uncompressed bytes, as record errors do."""
    wanted: dict[object, list[int]] = {}
    for index, record in enumerate(records):
        wanted.setdefault(bytes(record) if isinstance(record, (bytearray, memoryview)) else record, []).append(index)
    found: list[tuple[str, int] | None] = [None] * len(records)
    for part in parts:
        start = 0 if part.stride > 1 else _first_record(part, options)
        if start is None:
            continue
        offset = start
        for record in open_records(
            part.path,
            options.compression_type if part.stride > 1 else "",
            verify_crc=False,
            max_record_bytes=options.max_record_bytes,
            max_decompression_ratio=options.max_decompression_ratio,
            start_offset=start,
            config=options.config,
        ):
            if part.end is not None and offset >= part.end:
                break
            for index in wanted.pop(record, ()):
                found[index] = (part.path, offset)
            if not wanted:
                return found
            offset += len(record) + FRAME_OVERHEAD
    return found
