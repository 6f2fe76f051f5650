"""Record indexes: where each record of an uncompressed TFRecord file starts, in three formats.

Ours (binary, little-endian), written by ``tfrecord-s3 index``, ``TFRecordWriter(index=True)``
and the sharded writer, beside the data as ``<data file>.tfrecord-s3.idx``::

    8 bytes  magic b"TFRS3IDX"
    u32      format version (1)
    u32      flags (0)
    u64      record count n
    u64      data file size in bytes
    i64      data file mtime in nanoseconds (0: unknown, e.g. built from S3)
    u16      ETag length, then the ETag as UTF-8 (empty: unknown, e.g. a local file)
    u64 x n  byte offset of each record's header, increasing
    u32      CRC32C of every byte before it

The size, mtime and ETag tell a stale index (the data was rewritten) from a good one; the
CRC tells a damaged index. A record's framed size is the distance to the next offset (or
to the end of the data), so nothing else is stored.

The text format of DALI's and PyPI tfrecord's ``tfrecord2idx`` (one line per record,
``<offset> <framed size>``) is read too, and can be written for those tools.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..errors import CorruptIndexError, StaleIndexError
from ..records.crc import crc32c
from ..records.framing import FRAME_OVERHEAD

__all__ = ["INDEX_SUFFIX", "DataStamp", "RecordIndex", "decode_index", "encode_index", "encode_text_index"]

#: Our sidecar's name is the data file's name plus this.
INDEX_SUFFIX = ".tfrecord-s3.idx"
MAGIC = b"TFRS3IDX"
VERSION = 1
_HEADER = struct.Struct("<8sIIQQqH")
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class DataStamp:
    """What identifies one version of a data file: its size, and its mtime (local files) or
    ETag (S3 objects) when known (0 / "" when not)."""

    size: int
    mtime_ns: int = 0
    etag: str = ""


@dataclass(frozen=True, eq=False)
class RecordIndex:
    """The header offsets of every record of one file, and the stamp of the file they describe.

    ``offsets`` is a read-only ``uint64`` array; record ``i`` spans bytes
    ``[offsets[i], offsets[i + 1])`` (the last one ends at ``stamp.size``).
    """

    offsets: np.ndarray
    stamp: DataStamp

    def __post_init__(self) -> None:
        offsets = np.ascontiguousarray(self.offsets, dtype=np.uint64)
        offsets.flags.writeable = False
        object.__setattr__(self, "offsets", offsets)

    def __len__(self) -> int:
        return len(self.offsets)

    def ends(self) -> np.ndarray:
        """The end of each record's frame (exclusive), ``uint64``."""
        return np.append(self.offsets[1:], np.uint64(self.stamp.size))

    def framed_sizes(self) -> np.ndarray:
        """Each record's frame size (its data length + 16), ``uint64``."""
        sizes: np.ndarray = self.ends() - self.offsets
        return sizes

    def check(self, path: str) -> None:
        """Raise CorruptIndexError unless the offsets can describe a TFRecord file of this size."""
        offsets = self.offsets.astype(np.int64)
        size = self.stamp.size
        if not len(offsets):
            if size:
                raise CorruptIndexError(f"{path}: index lists no records for a {size}-byte file", path=path)
            return
        if offsets[0] != 0:
            raise CorruptIndexError(f"{path}: the first record starts at byte {offsets[0]}, not 0", path=path)
        gaps = np.diff(np.append(offsets, size))
        bad = np.flatnonzero(gaps < FRAME_OVERHEAD)
        if len(bad):
            i = int(bad[0])
            raise CorruptIndexError(
                f"{path}: record {i} at byte {offsets[i]} is {gaps[i]} bytes long, shorter than a frame "
                f"({FRAME_OVERHEAD} bytes); rebuild the index with `tfrecord-s3 index`",
                path=path,
            )

    def check_fresh(self, current: DataStamp, *, path: str, data_path: str) -> None:
        """Raise StaleIndexError unless ``current`` (the data file now) is what the index was built for.

        The size must match; the ETag when both sides know one (S3); the mtime when both do
        (local files). Indexes without a stamp (the text formats) are checked by size only:
        every read also checks each record's framing and CRCs against the index."""
        mine = self.stamp
        reason = None
        if current.size != mine.size:
            reason = f"the data file is {current.size} bytes, the index was built for {mine.size}"
        elif mine.etag and current.etag and mine.etag != current.etag:
            reason = f"the data file's ETag is {current.etag}, the index was built for {mine.etag}"
        elif mine.mtime_ns and current.mtime_ns and mine.mtime_ns != current.mtime_ns:
            reason = f"the data file was modified (mtime {current.mtime_ns} ns, index built at {mine.mtime_ns} ns)"
        if reason is not None:
            raise StaleIndexError(
                f"{path}: stale index for {data_path}: {reason}; rebuild it with `tfrecord-s3 index {data_path}`",
                path=path,
                data_path=data_path,
            )


def encode_index(index: RecordIndex) -> bytes:
    """Our binary format (see the module docstring)."""
    etag = index.stamp.etag.encode()
    header = _HEADER.pack(MAGIC, VERSION, 0, len(index), index.stamp.size, index.stamp.mtime_ns, len(etag))
    body = b"".join((header, etag, index.offsets.astype("<u8").tobytes()))
    return body + _CRC.pack(crc32c(body))


def encode_text_index(index: RecordIndex) -> bytes:
    """The ``tfrecord2idx`` text format of DALI and PyPI tfrecord."""
    sizes = index.framed_sizes()
    return "".join(f"{int(o)} {int(s)}\n" for o, s in zip(index.offsets, sizes, strict=True)).encode()


def decode_index(data: bytes, *, path: str, data_size: int | None = None) -> RecordIndex:
    """An index from ``data`` in any of the three formats (ours by its magic, else text).

    ``data_size`` is the data file's size, needed only for an empty text index (which has no
    last record to end the file). Raises CorruptIndexError naming ``path``."""
    index = _decode_binary(data, path) if data.startswith(MAGIC) else _decode_text(data, path, data_size)
    index.check(path)
    return index


def _decode_binary(data: bytes, path: str) -> RecordIndex:
    if len(data) < _HEADER.size + _CRC.size:
        raise CorruptIndexError(f"{path}: index truncated ({len(data)} bytes)", path=path)
    _, version, _flags, count, size, mtime, etag_len = _HEADER.unpack_from(data)
    if version != VERSION:
        raise CorruptIndexError(
            f"{path}: index format version {version}, this tfrecord-s3 reads version {VERSION}; "
            "rebuild it with `tfrecord-s3 index`",
            path=path,
        )
    expected = _HEADER.size + etag_len + 8 * count + _CRC.size
    if len(data) != expected:
        raise CorruptIndexError(
            f"{path}: index is {len(data)} bytes, its header says {expected} (truncated or damaged)", path=path
        )
    (stored,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if crc32c(data[: -_CRC.size]) != stored:
        raise CorruptIndexError(
            f"{path}: index checksum mismatch (damaged); rebuild it with `tfrecord-s3 index`", path=path
        )
    start = _HEADER.size + etag_len
    try:
        etag = data[_HEADER.size : start].decode()
    except UnicodeDecodeError as exc:
        raise CorruptIndexError(f"{path}: index ETag is not UTF-8", path=path) from exc
    offsets = np.frombuffer(data, dtype="<u8", count=count, offset=start)
    return RecordIndex(offsets, DataStamp(size=size, mtime_ns=mtime, etag=etag))


def _decode_text(data: bytes, path: str, data_size: int | None) -> RecordIndex:
    try:
        table = np.array([line.split() for line in data.decode("ascii").splitlines() if line.strip()], dtype=np.int64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptIndexError(
            f"{path}: not a tfrecord-s3 index nor a tfrecord2idx text index (lines of '<offset> <size>')",
            path=path,
        ) from exc
    if not len(table):
        return RecordIndex(np.zeros(0, np.uint64), DataStamp(size=data_size or 0))
    if table.ndim != 2 or table.shape[1] != 2 or (table < 0).any():
        raise CorruptIndexError(f"{path}: every line of a text index must be '<offset> <size>'", path=path)
    offsets, sizes = table[:, 0], table[:, 1]
    ends = offsets + sizes
    bad = np.flatnonzero(ends[:-1] != offsets[1:])
    if len(bad):
        i = int(bad[0])
        raise CorruptIndexError(
            f"{path}: line {i + 1} ends at byte {ends[i]} but line {i + 2} starts at byte {offsets[i + 1]}",
            path=path,
        )
    return RecordIndex(offsets.astype(np.uint64), DataStamp(size=int(ends[-1])))
