"""Record indexes (sidecars): read DALI's and PyPI tfrecord's text indexes, read and write ours."""

from __future__ import annotations

from .files import build_index, find_index, read_index, refuse_compressed, sidecar_path, stamp_of, write_index
from .format import INDEX_SUFFIX, DataStamp, RecordIndex, decode_index, encode_index, encode_text_index

__all__ = [
    "INDEX_SUFFIX",
    "DataStamp",
    "RecordIndex",
    "build_index",
    "decode_index",
    "encode_index",
    "encode_text_index",
    "find_index",
    "read_index",
    "refuse_compressed",
    "sidecar_path",
    "stamp_of",
    "write_index",
]
