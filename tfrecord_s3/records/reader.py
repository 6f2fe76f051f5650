"""Open a TFRecord file by path (local, ``file://`` or ``s3://``) and iterate its records."""

from __future__ import annotations

import io
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, cast

from ..storage import filesystem
from .compression import DEFAULT_MAX_RATIO, InflatingReader, resolve_compression
from .framing import DEFAULT_MAX_RECORD_BYTES, FrameReader

if TYPE_CHECKING:
    from ..config import S3Config

_INFLATED_BUFFER = 1 << 20


class RecordFileReader(FrameReader):
    """A :class:`FrameReader` that owns its file and closes it when iteration ends.

    Usable as a context manager; ``close()`` is idempotent.
    """

    __slots__ = ("_stream",)

    def __init__(
        self, stream: BinaryIO, *, path: str, verify_crc: bool, max_record_bytes: int, start_offset: int
    ) -> None:
        super().__init__(
            stream, path=path, verify_crc=verify_crc, max_record_bytes=max_record_bytes, start_offset=start_offset
        )
        self._stream: BinaryIO | None = stream

    def __next__(self) -> bytes:
        try:
            return super().__next__()
        except StopIteration:
            self.close()
            raise
        except BaseException as exc:
            # A data CRC failure leaves the stream usable (skip_record); anything else ends it.
            if getattr(exc, "part", None) != "data":
                self.close()
            raise

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def __enter__(self) -> RecordFileReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_records(
    path: str,
    compression_type: str | None = None,
    *,
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_decompression_ratio: float = DEFAULT_MAX_RATIO,
    start_offset: int = 0,
    config: S3Config | None = None,
) -> RecordFileReader:
    """A reader of the records of ``path``, starting at the record header at ``start_offset``
    (an offset in the uncompressed stream, as :attr:`FrameReader.offset` reports)."""
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
    return RecordFileReader(
        stream, path=path, verify_crc=verify_crc, max_record_bytes=max_record_bytes, start_offset=start_offset
    )


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
