"""The TFRecord frame parser: records out of any binary stream, both CRCs checked.

A TFRecord file is a sequence of frames::

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

This module sees only a binary stream (``read(n)``), never a filesystem or S3. Its hot loop
lives in :func:`iter_frames` alone so it can be profiled or swapped for a compiled
kernel without touching callers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..errors import ConfigError, CorruptRecordError, RecordTooLargeError, TruncatedRecordError
from .compression import StreamDamage
from .crc import crc32c, masked_crc

HEADER_BYTES = 12
FOOTER_BYTES = 4
FRAME_OVERHEAD = HEADER_BYTES + FOOTER_BYTES
DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


# Records up to this size are read together with their footer in one call and sliced;
# larger ones are read on their own so their bytes are copied exactly once.
_SMALL_RECORD = 64 * 1024
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def iter_frames(
    stream: BinaryIO,
    *,
    path: str = "<stream>",
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    start_offset: int = 0,
    on_data_error: Callable[[CorruptRecordError, int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the records of ``stream`` in order, each a fresh ``bytes``.

    ``start_offset`` is the stream's position (used in error offsets). A record's offset is
    ``start_offset`` plus the sizes of the frames before it (``len(record) + 16`` each), so
    callers that need positions derive them without any cost here.

    Raises :class:`TruncatedRecordError` when the stream ends inside a frame (including
    trailing bytes too short for a header), :class:`CorruptRecordError` on a CRC mismatch or
    damaged compressed stream, and :class:`RecordTooLargeError` for a length over
    ``max_record_bytes`` (before allocating). A data CRC mismatch leaves the frame boundary
    intact: with ``on_data_error`` set, the error and the size of the skipped frame are passed
    to it and iteration continues with the next record (opt-in skipping); otherwise it is raised.
    """
    if max_record_bytes < 0:
        raise ConfigError(f"max_record_bytes must be >= 0, not {max_record_bytes}")
    # The hot loop: everything it touches is a local.
    read = stream.read
    unpack_header = _HEADER.unpack
    unpack_footer = _FOOTER.unpack_from
    crc = crc32c
    delta = _MASK_DELTA
    u32 = _U32
    small = _SMALL_RECORD
    cap = max_record_bytes
    offset = start_offset
    try:
        while True:
            header = read(HEADER_BYTES)
            if len(header) != HEADER_BYTES:
                header = _read_more(read, header, HEADER_BYTES)
                if not header:
                    return
                if len(header) != HEADER_BYTES:
                    raise _truncated(path, offset, f"{len(header)} bytes where a 12-byte record header should be")
            length, stored = unpack_header(header)
            if verify_crc:
                c = crc(header[:8])
                if ((c >> 15 | c << 17) + delta) & u32 != stored:
                    raise _corrupt(path, offset, "length", "length CRC mismatch")
            if length > cap:
                raise RecordTooLargeError(
                    f"{path} at byte {offset}: record length {length} is over the cap of {cap} bytes "
                    "(raise max_record_bytes if this is real)",
                    path=path,
                    offset=offset,
                    part="length",
                )
            if length <= small:
                want = length + FOOTER_BYTES
                body = read(want)
                if len(body) != want:
                    body = _read_more(read, body, want)
                    if len(body) != want:
                        raise _truncated(path, offset, _cut_detail(length, len(body)))
                data = body[:length]
                stored = unpack_footer(body, length)[0]
            else:
                data = read(length)
                if len(data) != length:
                    data = _read_more(read, data, length)
                    if len(data) != length:
                        raise _truncated(path, offset, _cut_detail(length, len(data)))
                footer = read(FOOTER_BYTES)
                if len(footer) != FOOTER_BYTES:
                    footer = _read_more(read, footer, FOOTER_BYTES)
                    if len(footer) != FOOTER_BYTES:
                        raise _truncated(path, offset, _cut_detail(length, length + len(footer)))
                stored = unpack_footer(footer, 0)[0]
            if verify_crc:
                c = crc(data)
                if ((c >> 15 | c << 17) + delta) & u32 != stored:
                    error = _corrupt(
                        path, offset, "data", f"data CRC mismatch (data starts at byte {offset + HEADER_BYTES})"
                    )
                    if on_data_error is None:
                        raise error
                    on_data_error(error, FRAME_OVERHEAD + length)
                    offset += FRAME_OVERHEAD + length
                    continue
            offset += FRAME_OVERHEAD + length
            yield data
    except StreamDamage as exc:
        message = f"{path}: {exc.detail}, in the record at uncompressed byte {offset}"
        if exc.kind == "truncated":
            raise TruncatedRecordError(message, path=path, offset=offset) from None
        raise CorruptRecordError(message, path=path, offset=offset, part="stream") from None


def _read_more(read: Callable[[int], bytes], first: bytes, size: int) -> bytes:
    # Slow path for streams that return short reads: keep reading until size or EOF.
    parts = [first]
    got = len(first)
    while got < size:
        more = read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _cut_detail(length: int, got: int) -> str:
    if got <= length:
        return f"record of {length} bytes cut after {got} bytes of data"
    return f"record of {length} bytes cut inside its data CRC"


def _truncated(path: str, offset: int, detail: str) -> TruncatedRecordError:
    return TruncatedRecordError(f"{path} at byte {offset}: truncated record: {detail}", path=path, offset=offset)


def _corrupt(path: str, offset: int, part: str, detail: str) -> CorruptRecordError:
    return CorruptRecordError(
        f"{path} at byte {offset}: corrupted record: {detail}", path=path, offset=offset, part=part
    )


def encode_frame(data: bytes | bytearray | memoryview) -> bytes:
    """One complete frame (header, data, footer) for ``data``."""
    length = len(memoryview(data).cast("B"))
    header = struct.pack("<Q", length)
    return b"".join((header, _FOOTER.pack(masked_crc(header)), data, _FOOTER.pack(masked_crc(data))))
