"""Find where records start inside an uncompressed TFRecord file, from any byte offset.

Used to split one file between several readers by byte range: a reader whose range starts
mid-file scans forward to the first offset where a header's length CRC and the record's
data CRC both verify. A random 12 bytes pass the length check once in 2**32; the data CRC
makes a false start practically impossible (short of records that embed TFRecord frames).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .crc import masked_crc
from .framing import FOOTER_BYTES, HEADER, HEADER_BYTES

_WINDOW = 1 << 20


def find_record_start(stream: BinaryIO, start: int, end: int, *, max_record_bytes: int) -> int | None:
    """The first offset in ``[start, end)`` where a fully valid record begins, or None.

    ``stream`` must be seekable and hold uncompressed TFRecord bytes."""
    position = start
    while position < end:
        stream.seek(position)
        window = stream.read(min(_WINDOW, end - position) + HEADER_BYTES - 1)
        if len(window) < HEADER_BYTES:
            return None
        last = min(len(window) - HEADER_BYTES, end - position - 1)
        for i in range(last + 1):
            length, stored = HEADER.unpack_from(window, i)
            if length > max_record_bytes or masked_crc(window[i : i + 8]) != stored:
                continue
            if _data_verifies(stream, position + i, length):
                return position + i
        position += last + 1
    return None


def _data_verifies(stream: BinaryIO, offset: int, length: int) -> bool:
    stream.seek(offset + HEADER_BYTES)
    body = stream.read(length + FOOTER_BYTES)
    if len(body) != length + FOOTER_BYTES:
        return False
    stored: int = struct.unpack_from("<I", body, length)[0]
    return masked_crc(body[:length]) == stored
