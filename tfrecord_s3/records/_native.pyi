"""Type stub of the optional compiled kernel (tfrecord_s3/records/_native.c)."""

from typing_extensions import Buffer

NEED_MORE: int
LENGTH_CRC: int
TOO_LARGE: int
DATA_CRC: int
CRC_IMPLEMENTATION: str

def crc32c(data: Buffer, value: int = 0, /) -> int: ...
def _crc32c_portable(data: Buffer, value: int = 0, /) -> int: ...
def scan(
    buffer: Buffer, start: int, end: int, verify_crc: bool, max_record_bytes: int, /
) -> tuple[list[bytes], int, int, int]: ...
