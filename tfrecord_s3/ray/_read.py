"""What a read task runs, in a Ray worker: its file parts -> pyarrow Tables, batch by batch.

Everything here is a plain function of picklable values (no client, no open stream): each
worker opens its own files and builds its own S3 clients, configured from the environment
it runs in (TensorFlow's variables) unless the dataset was given an explicit ``S3Config``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import cast, overload

import pyarrow as pa

from ..arrow import parse_example_table
from ..config import S3Config
from ..dataset.prefetch import ReadOptions
from ..dataset.split import Assignment
from ..dataset.split import _first_record as range_start
from ..decode.specs import FeatureSpec
from ..errors import DecodeError
from ..records.framing import FRAME_OVERHEAD
from ..records.reader import open_records
from ..storage.filesystem import is_s3
from ._schema import mismatch

__all__ = ["ROW_COUNT_COLUMN", "TaskOptions", "read_parts"]

# A byte-range task on S3 reads blocks of about a quarter of its range (at least this), so
# it does not fetch far past its end with the default 16 MiB blocks and read-ahead.
_MIN_RANGE_BLOCK = 1 << 20
#: Ray's name for the stub column of a block read with no columns.
ROW_COUNT_COLUMN = "__bsp_stub"


@dataclass(frozen=True)
class TaskOptions:
    """How every task of one dataset reads and decodes (pickled into each read task)."""

    read: ReadOptions
    #: The features to decode; {} decodes nothing (row counts only).
    features: dict[str, FeatureSpec]
    batch_rows: int
    batch_bytes: int
    #: Set when ``features`` were inferred: which sample they came from (for errors).
    inferred_from: str | None = None


def read_parts(parts: Sequence[Assignment], options: TaskOptions) -> Iterator[pa.Table]:
    """The records of ``parts``, in order, as Tables of at most ``batch_rows`` rows."""
    for part in parts:
        yield from _read_part(part, options)


def _read_part(part: Assignment, options: TaskOptions) -> Iterator[pa.Table]:
    read = _options_for(part, options.read)
    start = range_start(part, read)
    if start is None:
        return  # no record starts in this range: the task before it reads them all
    records = cast(
        Generator[bytes, None, None],
        open_records(
            part.path,
            read.compression_type,
            verify_crc=read.verify_crc,
            max_record_bytes=read.max_record_bytes,
            max_decompression_ratio=read.max_decompression_ratio,
            start_offset=start,
            config=read.config,
        ),
    )
    end = part.end
    batch: list[bytes] = []
    size = 0
    offset = batch_start = start
    try:
        for record in records:
            if end is not None and offset >= end:
                break
            batch.append(record)
            size += len(record)
            offset += len(record) + FRAME_OVERHEAD
            if len(batch) >= options.batch_rows or size >= options.batch_bytes:
                yield _table(batch, part.path, batch_start, options)
                batch, size, batch_start = [], 0, offset
        if batch:
            yield _table(batch, part.path, batch_start, options)
    finally:
        records.close()


def _options_for(part: Assignment, read: ReadOptions) -> ReadOptions:
    if part.end is None or not is_s3(part.path):
        return read
    config = read.config if read.config is not None else S3Config.from_env()
    block = min(config.block_size, max(_MIN_RANGE_BLOCK, (part.end - part.start) // 4))
    return dataclasses.replace(read, config=config.replace(block_size=block))


def _table(batch: list[bytes], path: str, first: int, options: TaskOptions) -> pa.Table:
    if not options.features:
        # Nothing to decode (ds.count()): one all-null column carries the row count, as
        # Ray's own readers do (a table of no columns has no rows once concatenated).
        return pa.table({ROW_COUNT_COLUMN: pa.nulls(len(batch))})
    try:
        return parse_example_table(batch, options.features, path=path, offsets=_Offsets(batch, first))
    except DecodeError as exc:
        if options.inferred_from is None:
            raise
        raise mismatch(exc, options.features, options.inferred_from) from exc


class _Offsets(Sequence[int]):
    """Byte offset of each record of a batch, worked out only when an error asks for one."""

    def __init__(self, batch: list[bytes], first: int) -> None:
        self._batch = batch
        self._first = first

    def __len__(self) -> int:
        return len(self._batch)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...

    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self._batch))[index]
        return self._first + sum(len(record) + FRAME_OVERHEAD for record in self._batch[:index])
