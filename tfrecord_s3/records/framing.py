"""The TFRecord frame parser: records out of any binary stream, both CRCs checked.

A TFRecord file is a sequence of frames::

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

This module sees only a binary stream (``read(n)``), never a filesystem or S3. Its hot loop
lives in :meth:`FrameReader.__next__` alone so it can be profiled or swapped for a compiled
kernel without touching callers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import ConfigError, CorruptRecordError, RecordTooLargeError, TruncatedRecordError
from .compression import StreamDamage
from .crc import crc32c, masked_crc, unmask

HEADER_BYTES = 12
FOOTER_BYTES = 4
FRAME_OVERHEAD = HEADER_BYTES + FOOTER_BYTES
DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


class FrameReader(Iterator[bytes]):
    """Iterate the records of ``stream`` as fresh ``bytes``.

    ``offset`` is the byte offset (in the uncompressed stream) of the next record's header;
    ``record_offset`` that of the record most recently returned. Raises
    :class:`TruncatedRecordError` when the stream ends inside a frame (including trailing
    bytes too short for a header), :class:`CorruptRecordError` on a CRC mismatch and
    :class:`RecordTooLargeError` for a length over ``max_record_bytes`` (before allocating).
    """

    __slots__ = ("_done", "_read", "max_record_bytes", "offset", "path", "record_offset", "records", "verify_crc")

    def __init__(
        self,
        stream: BinaryIO,
        *,
        path: str = "<stream>",
        verify_crc: bool = True,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        start_offset: int = 0,
    ) -> None:
        if max_record_bytes < 0:
            raise ConfigError(f"max_record_bytes must be >= 0, not {max_record_bytes}")
        self._read = stream.read
        self.path = path
        self.offset = start_offset
        self.record_offset = start_offset
        self.verify_crc = verify_crc
        self.max_record_bytes = max_record_bytes
        self.records = 0
        self._done = False

    def __iter__(self) -> FrameReader:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        offset = self.offset
        try:
            header = self._read(HEADER_BYTES)
            if len(header) != HEADER_BYTES:
                header = self._read_exact(header, HEADER_BYTES)
                if not header:
                    self._done = True
                    raise StopIteration
                if len(header) != HEADER_BYTES:
                    raise self._truncated(offset, f"{len(header)} bytes where a 12-byte record header should be")
            length, length_crc = _HEADER.unpack(header)
            if self.verify_crc and crc32c(header[:8]) != unmask(length_crc):
                raise self._corrupt(offset, "length", "length CRC mismatch")
            if length > self.max_record_bytes:
                self._done = True
                raise RecordTooLargeError(
                    f"{self.path} at byte {offset}: record length {length} is over the cap of "
                    f"{self.max_record_bytes} bytes (raise max_record_bytes if this is real)",
                    path=self.path,
                    offset=offset,
                    part="length",
                )
            data = self._read(length)
            if len(data) != length:
                data = self._read_exact(data, length)
                if len(data) != length:
                    raise self._truncated(offset, f"record of {length} bytes cut after {len(data)} bytes of data")
            footer = self._read(FOOTER_BYTES)
            if len(footer) != FOOTER_BYTES:
                footer = self._read_exact(footer, FOOTER_BYTES)
                if len(footer) != FOOTER_BYTES:
                    raise self._truncated(offset, f"record of {length} bytes cut inside its data CRC")
            if self.verify_crc and crc32c(data) != unmask(_FOOTER.unpack(footer)[0]):
                raise self._corrupt(
                    offset, "data", f"data CRC mismatch (data starts at byte {offset + HEADER_BYTES})", length
                )
        except StreamDamage as exc:
            self._done = True
            if exc.kind == "truncated":
                raise TruncatedRecordError(
                    f"{self.path}: {exc.detail}, in the record at uncompressed byte {offset}",
                    path=self.path,
                    offset=offset,
                ) from None
            raise CorruptRecordError(
                f"{self.path}: {exc.detail}, in the record at uncompressed byte {offset}",
                path=self.path,
                offset=offset,
                part="stream",
            ) from None
        self.record_offset = offset
        self.offset = offset + FRAME_OVERHEAD + length
        self.records += 1
        return data

    def _read_exact(self, first: bytes, size: int) -> bytes:
        # Slow path for streams that return short reads: keep reading until size or EOF.
        parts = [first]
        got = len(first)
        while got < size:
            more = self._read(size - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def _truncated(self, offset: int, detail: str) -> TruncatedRecordError:
        self._done = True
        return TruncatedRecordError(
            f"{self.path} at byte {offset}: truncated record: {detail}", path=self.path, offset=offset
        )

    def _corrupt(self, offset: int, part: str, detail: str, length: int = 0) -> CorruptRecordError:
        # A bad length loses the frame boundary for good; a bad data CRC leaves the stream
        # positioned at the next frame, so a caller that opted in may continue (skip_record).
        if part == "length":
            self._done = True
        else:
            self.record_offset = offset
            self.offset = offset + FRAME_OVERHEAD + length
        return CorruptRecordError(
            f"{self.path} at byte {offset}: corrupted record: {detail}", path=self.path, offset=offset, part=part
        )


def iter_records(
    stream: BinaryIO,
    *,
    path: str = "<stream>",
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[bytes]:
    """Records of ``stream`` in order; see :class:`FrameReader` for the errors."""
    return FrameReader(stream, path=path, verify_crc=verify_crc, max_record_bytes=max_record_bytes)


def encode_frame(data: bytes | bytearray | memoryview) -> bytes:
    """One complete frame (header, data, footer) for ``data``."""
    length = len(memoryview(data).cast("B"))
    header = struct.pack("<Q", length)
    return b"".join((header, _FOOTER.pack(masked_crc(header)), data, _FOOTER.pack(masked_crc(data))))
