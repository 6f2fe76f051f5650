"""Open a TFRecord file by path (local, ``file://`` or ``s3://``) and iterate its records."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, cast

from ..errors import CorruptRecordError
from ..storage import filesystem
from .compression import DEFAULT_MAX_RATIO, InflatingReader, resolve_compression
from .framing import DEFAULT_MAX_RECORD_BYTES, iter_frames

if TYPE_CHECKING:
    from ..config import S3Config

_INFLATED_BUFFER = 1 << 20


def open_records(
    path: str,
    compression_type: str | None = None,
    *,
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_decompression_ratio: float = DEFAULT_MAX_RATIO,
    start_offset: int = 0,
    config: S3Config | None = None,
    on_data_error: Callable[[CorruptRecordError, int], None] | None = None,
) -> Iterator[bytes]:
    """The records of ``path``, from the record header at ``start_offset`` (an offset in the
    uncompressed stream: the sum of ``len(record) + 16`` over the records before it).

    The file is opened now (so a missing file raises here) and closed when iteration ends,
    fails, or the iterator is closed or garbage-collected. See :func:`iter_frames` for
    ``on_data_error`` (opt-in skipping of records whose data CRC fails)."""
    raw, stream = open_record_stream(
        path,
        compression_type,
        start_offset=start_offset,
        max_decompression_ratio=max_decompression_ratio,
        config=config,
    )
    try:
        # The first read now, on this thread: an S3 object's first GET (which says its size,
        # in place of a HEAD) raises here for a missing file, as documented above.
        peek = getattr(raw, "peek", None)
        if peek is not None:
            peek(1)
    except BaseException:
        raw.close()
        raise
    frames = iter_frames(
        stream,
        path=path,
        verify_crc=verify_crc,
        max_record_bytes=max_record_bytes,
        start_offset=start_offset,
        on_data_error=on_data_error,
    )
    return _owning(frames, raw)


def _owning(frames: Iterator[bytes], stream: BinaryIO) -> Iterator[bytes]:
    try:
        yield from frames
    finally:
        stream.close()


def open_record_stream(
    path: str,
    compression_type: str | None = None,
    *,
    start_offset: int = 0,
    max_decompression_ratio: float = DEFAULT_MAX_RATIO,
    config: S3Config | None = None,
) -> tuple[BinaryIO, BinaryIO]:
    """(the storage stream, the stream of uncompressed bytes positioned at ``start_offset``).

    Closing the first closes both; the first keeps the storage counters (requests, retries).
    An S3 object is not read yet (a missing one raises at the first read): the caller can
    hold the storage stream, to abort it, before any GET."""
    compression = resolve_compression(compression_type, path)
    raw = filesystem.open(path, "rb", config=config)
    try:
        stream: BinaryIO = raw
        if compression:
            inflating = InflatingReader(raw, compression, max_ratio=max_decompression_ratio)
            stream = cast(BinaryIO, io.BufferedReader(inflating, _INFLATED_BUFFER))
            _skip(stream, start_offset)
        elif start_offset:
            raw.seek(start_offset)
    except BaseException:
        raw.close()
        raise
    return raw, stream


def _skip(stream: BinaryIO, count: int) -> None:
    # A compressed stream cannot seek: inflate and drop.
    while count > 0:
        got = len(stream.read(min(count, _INFLATED_BUFFER)))
        if not got:
            break
        count -= got


def tf_record_iterator(
    path: str,
    compression_type: str | None = None,
    *,
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[bytes]:
    """Records of ``path`` in file order, as fresh ``bytes``.

    ``compression_type``: None / "" / "GZIP" / "ZLIB" as TensorFlow, or "auto" (by extension).
    Raises TruncatedRecordError, CorruptRecordError (``.offset`` = the record's header),
    ObjectNotFoundError and other StorageErrors; never stops silently on damage.
    """
    return open_records(path, compression_type, verify_crc=verify_crc, max_record_bytes=max_record_bytes)
