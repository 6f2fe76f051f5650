"""Type stub of the optional compiled decoding kernel (tfrecord_s3/decode/_native.c)."""

from collections.abc import Sequence

from typing_extensions import Buffer

FLAG_NONE: int
FLAG_BYTES: int
FLAG_FLOAT: int
FLAG_INT64: int
FLAG_UNKNOWN: int

def gather_columns(
    records: Sequence[Buffer], keys: Sequence[bytes], /
) -> list[tuple[bytearray, bytearray, bytearray, bytearray, list[bytes], int]] | None: ...
