"""The TFRecord frame parser: records out of any binary stream, both CRCs checked.

A TFRecord file is a sequence of frames::

    uint64 length            little-endian
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

This module sees only a binary stream (``read(n)``), never a filesystem or S3. The hot loop
has two implementations behind :func:`iter_frames`: the compiled kernel (``_native.scan``
over large chunks, used when the optional extension built) and the pure-Python loop, which
is the fallback and the oracle (forced with ``TFRECORD_S3_PURE_PYTHON=1``). Both give the
same records and the same errors, messages and offsets.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .._kernels import kernels_enabled
from ..errors import ConfigError, CorruptRecordError, RecordTooLargeError, TruncatedRecordError
from .compression import InflatingReader, StreamDamage
from .crc import mask, masked_crc

try:
    from . import _native

    _HAVE_NATIVE = True
except ImportError:  # the optional extension did not build: the pure-Python loop serves
    _HAVE_NATIVE = False

HEADER_BYTES = 12
FOOTER_BYTES = 4
FRAME_OVERHEAD = HEADER_BYTES + FOOTER_BYTES
DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024

HEADER = struct.Struct("<QI")  # length, masked CRC of the length
_FOOTER = struct.Struct("<I")


# Records up to this size are read together with their footer in one call and sliced;
# larger ones are read on their own so their bytes are copied exactly once.
_SMALL_RECORD = 64 * 1024


def _check_max_record_bytes(max_record_bytes: int) -> None:
    if max_record_bytes < 0:
        raise ConfigError(f"max_record_bytes must be >= 0, not {max_record_bytes}")


def native_available() -> bool:
    """True when the compiled frame kernel is built and not disabled by the environment."""
    return _HAVE_NATIVE and kernels_enabled()


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
    _check_max_record_bytes(max_record_bytes)
    loop = _iter_frames_native if native_available() else _iter_frames_python
    return loop(stream, path, verify_crc, max_record_bytes, start_offset, on_data_error)


def iter_frame_lists(
    stream: BinaryIO,
    *,
    path: str = "<stream>",
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    start_offset: int = 0,
    on_data_error: Callable[[CorruptRecordError, int], None] | None = None,
) -> Iterator[list[bytes]]:
    """:func:`iter_frames` in runs: the same records, checks and errors, as non-empty lists
    (the compiled kernel's: one per call over a chunk of the stream, so a consumer that moves
    records in bulk pays per list, not per record). ``on_data_error`` is called after the list
    of the records before the skipped frame was handed out. Lists are fresh: keep them."""
    _check_max_record_bytes(max_record_bytes)
    if native_available():
        return _frame_lists_native(stream, path, verify_crc, max_record_bytes, start_offset, on_data_error)
    records = _iter_frames_python(stream, path, verify_crc, max_record_bytes, start_offset, on_data_error)
    return ([record] for record in records)


def frames_in(
    buffer: bytes,
    *,
    path: str = "<buffer>",
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    start_offset: int = 0,
) -> list[bytes]:
    """The records of ``buffer``, which must hold whole frames only (a byte range of a file
    between two record boundaries, as an index gives). Checks and errors as :func:`iter_frames`
    (offsets from ``start_offset``), without its stream machinery: one kernel call."""
    if not native_available():
        return list(
            iter_frames(
                io.BytesIO(buffer),
                path=path,
                verify_crc=verify_crc,
                max_record_bytes=max_record_bytes,
                start_offset=start_offset,
            )
        )
    records, end, status, length = _native.scan(buffer, 0, len(buffer), verify_crc, max_record_bytes)
    offset = start_offset + end
    if status == _native.NEED_MORE:
        have = len(buffer) - end
        if not have:
            return records
        if have < HEADER_BYTES:
            raise _truncated(path, offset, f"{have} bytes where a 12-byte record header should be")
        raise _truncated(path, offset, _cut_detail(length, have - HEADER_BYTES))
    if status == _native.DATA_CRC:
        raise _data_crc_error(path, offset)
    if status == _native.LENGTH_CRC:
        raise _corrupt(path, offset, "length", "length CRC mismatch")
    raise _too_large(path, offset, length, max_record_bytes)


def _iter_frames_python(
    stream: BinaryIO,
    path: str,
    verify_crc: bool,
    max_record_bytes: int,
    start_offset: int,
    on_data_error: Callable[[CorruptRecordError, int], None] | None,
) -> Iterator[bytes]:
    # The oracle: one frame at a time with exact-size reads.
    # The hot loop: everything it touches is a local.
    read = stream.read
    unpack_header = HEADER.unpack
    unpack_footer = _FOOTER.unpack_from
    masked = masked_crc
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
            if verify_crc and masked(header[:8]) != stored:
                raise _length_crc_error(path, offset, header)
            if length > cap:
                raise _too_large(path, offset, length, cap)
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
            if verify_crc and masked(data) != stored:
                offset = _skip_bad_data(path, offset, length, on_data_error)
                continue
            offset += FRAME_OVERHEAD + length
            yield data
    except StreamDamage as exc:
        raise _damaged(path, offset, exc) from None


# The compiled loop reads up to this much at a time into one reused buffer: a little more
# than the BufferedReader size of reader.py (1 MiB), so buffered files are read straight
# into it, and small enough to stay in a 2 MiB L2 cache between CRC pass and copy.
_CHUNK = (1 << 20) + (256 << 10)
# Over an inflating stream it reads at most the BufferedReader size at a time, so the raw
# reads are those of the pure-Python loop and damage surfaces in the same record.
_INFLATED_CHUNK = 1 << 20
# The buffer starts this small (short streams, tests of peak memory) and grows while reads fill it.
_FIRST_CHUNK = 64 * 1024
# An incomplete frame this long is finished with exact-size reads straight into its bytes
# (as the pure-Python loop does), and the next header is read alone: big records are
# copied no more than necessary.
_BIG_RECORD = 256 * 1024


def _iter_frames_native(
    stream: BinaryIO,
    path: str,
    verify_crc: bool,
    max_record_bytes: int,
    start_offset: int,
    on_data_error: Callable[[CorruptRecordError, int], None] | None,
) -> Iterator[bytes]:
    for records in _frame_lists_native(stream, path, verify_crc, max_record_bytes, start_offset, on_data_error):
        yield from records


def _frame_lists_native(
    stream: BinaryIO,
    path: str,
    verify_crc: bool,
    max_record_bytes: int,
    start_offset: int,
    on_data_error: Callable[[CorruptRecordError, int], None] | None,
) -> Iterator[list[bytes]]:
    # The compiled loop proper: one list per kernel call (a fresh list the caller may keep).
    scan = _native.scan
    need_more = _native.NEED_MORE
    read = stream.read
    fill, chunk = _filler(stream)
    cap = max_record_bytes
    size = _FIRST_CHUNK
    buf = bytearray(size)
    view = memoryview(buf)
    pos = filled = 0  # buf[pos:filled] holds the start of the frame at `offset`
    offset = start_offset
    big_records = False  # the last frame was big: read the next header alone
    try:
        while True:
            records, end, status, length = scan(buf, pos, filled, verify_crc, cap)
            if records:
                yield records
            offset += end - pos
            pos = end
            if status == need_more:
                have = filled - pos
                was_full = filled == size
                if length >= _BIG_RECORD:
                    data, stored = _finish_big(read, view[pos + HEADER_BYTES : filled], length, path, offset)
                    pos = filled = 0
                    big_records = True
                    if verify_crc and mask(_native.crc32c(data)) != stored:
                        offset = _skip_bad_data(path, offset, length, on_data_error)
                        continue
                    offset += FRAME_OVERHEAD + length
                    yield [data]
                    continue
                if length >= 0:
                    big_records = False
                if size < chunk and (was_full or length + FRAME_OVERHEAD > size):
                    size = min(chunk, max(4 * size, length + FRAME_OVERHEAD))
                    grown = bytearray(size)
                    grown[:have] = view[pos:filled]
                    buf, view = grown, memoryview(grown)
                elif pos:
                    view[:have] = view[pos:filled]
                pos, filled = 0, have
                want = HEADER_BYTES - have if big_records and have < HEADER_BYTES else size - have
                got = fill(view[filled : filled + want]) or 0
                if got:
                    filled += got
                    continue
                # End of stream: clean only at a frame boundary.
                if not have:
                    return
                if have < HEADER_BYTES:
                    raise _truncated(path, offset, f"{have} bytes where a 12-byte record header should be")
                raise _truncated(path, offset, _cut_detail(length, have - HEADER_BYTES))
            if status == _native.DATA_CRC:
                after = _skip_bad_data(path, offset, length, on_data_error)
                pos += after - offset
                offset = after
                continue
            if status == _native.LENGTH_CRC:
                raise _length_crc_error(path, offset, bytes(view[pos : pos + HEADER_BYTES]))
            raise _too_large(path, offset, length, cap)
    except StreamDamage as exc:
        raise _damaged(path, offset, exc) from None


def _finish_big(
    read: Callable[[int], bytes], have: memoryview, length: int, path: str, offset: int
) -> tuple[bytes, int]:
    # (data, stored data CRC) of a frame whose first bytes after the header are `have`; the
    # rest comes in the pure-Python loop's reads (data, then footer) so raw reads match it.
    data_have = min(len(have), length)
    missing = length - data_have
    if missing:
        rest = read(missing)
        if len(rest) != missing:
            rest = _read_more(read, rest, missing)
            if len(rest) != missing:
                raise _truncated(path, offset, _cut_detail(length, data_have + len(rest)))
        data = b"".join((have[:data_have], rest)) if data_have else rest
    else:
        data = bytes(have[:length])
    footer = bytes(have[length:])
    if len(footer) != FOOTER_BYTES:
        more = read(FOOTER_BYTES - len(footer))
        if len(more) != FOOTER_BYTES - len(footer):
            more = _read_more(read, more, FOOTER_BYTES - len(footer))
        footer += more
        if len(footer) != FOOTER_BYTES:
            raise _truncated(path, offset, _cut_detail(length, length + len(footer)))
    stored: int = _FOOTER.unpack(footer)[0]
    return data, stored


def _filler(stream: BinaryIO) -> tuple[Callable[[memoryview], int | None], int]:
    # (readinto-like function, largest read). readinto1 on buffered streams: one raw read at
    # most per call, so bytes read before a damaged part of a compressed stream are never
    # lost with the exception.
    if isinstance(stream, (io.BufferedReader, io.BufferedRandom, io.BytesIO)):
        inflating = isinstance(getattr(stream, "raw", None), InflatingReader)
        return stream.readinto1, _INFLATED_CHUNK if inflating else _CHUNK
    readinto = getattr(type(stream), "readinto", None)
    if readinto is not None and readinto is not io.RawIOBase.readinto:
        return stream.readinto, _CHUNK  # type: ignore[attr-defined]
    read = stream.read

    def fill(view: memoryview) -> int:
        data = read(len(view))
        view[: len(data)] = data
        return len(data)

    return fill, _CHUNK


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


def _skip_bad_data(
    path: str, offset: int, length: int, on_data_error: Callable[[CorruptRecordError, int], None] | None
) -> int:
    """For a frame whose data CRC fails: raise, or (opt-in skipping) hand the error and the
    frame's size to ``on_data_error`` and return the offset of the next frame."""
    error = _data_crc_error(path, offset)
    if on_data_error is None:
        raise error
    on_data_error(error, FRAME_OVERHEAD + length)
    return offset + FRAME_OVERHEAD + length


def _data_crc_error(path: str, offset: int) -> CorruptRecordError:
    return _corrupt(path, offset, "data", f"data CRC mismatch (data starts at byte {offset + HEADER_BYTES})")


def _too_large(path: str, offset: int, length: int, cap: int) -> RecordTooLargeError:
    return RecordTooLargeError(
        f"{path} at byte {offset}: record length {length} is over the cap of {cap} bytes "
        "(raise max_record_bytes if this is real)",
        path=path,
        offset=offset,
        part="length",
    )


def _damaged(path: str, offset: int, exc: StreamDamage) -> CorruptRecordError | TruncatedRecordError:
    message = f"{path}: {exc.detail}, in the record at uncompressed byte {offset}"
    if exc.kind == "truncated":
        return TruncatedRecordError(message, path=path, offset=offset)
    return CorruptRecordError(message, path=path, offset=offset, part="stream")


# What a compressed file starts with, when it is read as plain TFRecord by mistake: the
# gzip magic, or a zlib header (deflate, 32 KiB window, each of the four levels' FLEVEL).
_COMPRESSED_STARTS = (
    (b"\x1f\x8b", "GZIP", ".gz or .gzip"),
    (b"\x78\x01", "ZLIB", ".zz or .zlib"),
    (b"\x78\x5e", "ZLIB", ".zz or .zlib"),
    (b"\x78\x9c", "ZLIB", ".zz or .zlib"),
    (b"\x78\xda", "ZLIB", ".zz or .zlib"),
)


def _length_crc_error(path: str, offset: int, header: bytes) -> CorruptRecordError:
    """A bad header; at byte 0 with a gzip/zlib header instead, say what the file is."""
    detail = "length CRC mismatch"
    if offset == 0:
        for magic, kind, suffix in _COMPRESSED_STARTS:
            if header.startswith(magic):
                detail += (
                    f": the file starts with a {kind.lower()} header ({magic.hex(' ')}), so it looks "
                    f'{kind}-compressed; read it with compression_type="{kind}" '
                    f'(or "auto" when its name ends in {suffix})'
                )
                break
    return _corrupt(path, offset, "length", detail)


def _corrupt(path: str, offset: int, part: str, detail: str) -> CorruptRecordError:
    return CorruptRecordError(
        f"{path} at byte {offset}: corrupted record: {detail}", path=path, offset=offset, part=part
    )


def encode_frame(data: bytes | bytearray | memoryview) -> bytes:
    """One complete frame (header, data, footer) for ``data``."""
    length = len(memoryview(data).cast("B"))
    header = struct.pack("<Q", length)
    return b"".join((header, _FOOTER.pack(masked_crc(header)), data, _FOOTER.pack(masked_crc(data))))
