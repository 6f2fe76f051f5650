"""Indexes on storage: stamping a data file, scanning it, reading and writing sidecars.

A scan is one sequential, CRC-checked pass through the same frame parser as every reader
(``records/framing.py``), over a local file or a streamed S3 object; the stamp (size, and
mtime or ETag) is taken from the very version that was read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, cast

import numpy as np

from ..errors import ConfigError, ObjectNotFoundError
from ..records.compression import resolve_compression
from ..records.framing import DEFAULT_MAX_RECORD_BYTES, FRAME_OVERHEAD, iter_frames
from ..storage import filesystem
from .format import INDEX_SUFFIX, DataStamp, RecordIndex, decode_index, encode_index, encode_text_index

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = [
    "build_index",
    "find_index",
    "read_index",
    "read_small_file",
    "sidecar_path",
    "stamp_of",
    "write_index",
]


def sidecar_path(data_path: str, directory: str | None = None) -> str:
    """Where our index of ``data_path`` lives: beside it, or in ``directory`` under the same name."""
    if directory is None:
        return data_path + INDEX_SUFFIX
    name = data_path.rstrip("/").rsplit("/", 1)[-1]
    return directory.rstrip("/") + "/" + name + INDEX_SUFFIX


def stamp_of(path: str, *, config: S3Config | None = None) -> DataStamp:
    """The data file's stamp now: size and mtime (local) or size and ETag (S3, one HEAD)."""
    if filesystem.is_s3(path):
        from ..config import S3Config
        from ..storage.s3_path import S3Path
        from ..storage.s3_reader import head_object

        head = head_object(S3Path.parse(path), config if config is not None else S3Config.from_env())
        return DataStamp(size=int(head["ContentLength"]), etag=str(head.get("ETag") or ""))
    stat = filesystem.stat(path)
    return DataStamp(size=stat.length, mtime_ns=stat.mtime_nsec)


def refuse_compressed(path: str, compression_type: str | None) -> None:
    """Random access needs byte offsets into the file itself: a compressed file has none."""
    compression = resolve_compression(compression_type, path)
    if compression:
        raise ConfigError(
            f"{path}: {compression}-compressed files cannot be indexed or read by record number "
            "(a record's position in the inflated stream is not a byte offset in the file); "
            "rewrite it uncompressed, or read it sequentially with TFRecordDataset"
        )


def build_index(
    path: str,
    *,
    compression_type: str | None = "auto",
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    config: S3Config | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RecordIndex:
    """Scan ``path`` once (CRCs checked) and return its index; ``on_progress(bytes)`` is
    called now and then with the bytes scanned since the last call.

    Raises the first RecordError met (an index of a damaged file would be wrong)."""
    refuse_compressed(path, compression_type)
    stream, stamp = _open_stamped(path, config)
    try:
        offsets: list[int] = []
        offset = 0
        pending = 0
        for record in iter_frames(stream, path=path, verify_crc=verify_crc, max_record_bytes=max_record_bytes):
            offsets.append(offset)
            frame = len(record) + FRAME_OVERHEAD
            offset += frame
            pending += frame
            if on_progress is not None and pending >= 1 << 22:
                on_progress(pending)
                pending = 0
        if on_progress is not None and pending:
            on_progress(pending)
    finally:
        stream.close()
    if offset != stamp.size:  # pragma: no cover - the framing reads to the end or raises
        raise ConfigError(f"{path}: scanned {offset} bytes of {stamp.size}")
    return RecordIndex(np.array(offsets, dtype=np.uint64), stamp)


def _open_stamped(path: str, config: S3Config | None) -> tuple[BinaryIO, DataStamp]:
    # The stamp of the version that is read: on S3 the stream's HEAD (every GET is pinned
    # to its ETag by If-Match); locally the open file's own fstat.
    if filesystem.is_s3(path):
        import io

        from ..config import S3Config
        from ..storage.s3_files import listed_head, range_reader, stream_policy
        from ..storage.s3_path import S3Path
        from ..storage.stream import BlockStream

        config = config if config is not None else S3Config.from_env()
        reader = range_reader(S3Path.parse(path), config, head=listed_head(path))
        raw = BlockStream(reader, **stream_policy(config))
        stamp = DataStamp(size=reader.size, etag=reader.etag or "")
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=1 << 20)), stamp
    import os

    stream = filesystem.open(path, "rb")
    st = os.fstat(stream.fileno())
    return stream, DataStamp(size=st.st_size, mtime_ns=st.st_mtime_ns)


def read_index(index_path: str, *, data_size: int | None = None, config: S3Config | None = None) -> RecordIndex:
    """Read an index in any of the three formats; CorruptIndexError if damaged,
    ObjectNotFoundError if absent."""
    return decode_index(read_small_file(index_path, config=config), path=index_path, data_size=data_size)


def read_small_file(path: str, *, config: S3Config | None = None) -> bytes:
    """The whole of a small file (an index, a metadata file): on S3 one plain GET (no HEAD
    first, no ranges), retried by botocore."""
    if not filesystem.is_s3(path):
        with filesystem.open(path, "rb") as stream:
            return stream.read()
    from ..config import S3Config
    from ..storage.s3_client import get_client
    from ..storage.s3_errors import translate
    from ..storage.s3_path import S3Path

    location = S3Path.parse(path)
    try:
        reply = get_client(config if config is not None else S3Config.from_env()).get_object(
            Bucket=location.bucket, Key=location.key
        )
        return bytes(reply["Body"].read())
    except Exception as exc:
        raise translate(exc, location.url, "read") from exc


def write_index(index: RecordIndex, index_path: str, *, text: bool = False, config: S3Config | None = None) -> None:
    """Write ``index`` to ``index_path`` (ours, or ``text=True`` for the tfrecord2idx format)."""
    data = encode_text_index(index) if text else encode_index(index)
    with filesystem.open(index_path, "wb", config=config) as stream:
        stream.write(data)


def find_index(data_path: str, *, config: S3Config | None = None) -> RecordIndex | None:
    """Our sidecar beside ``data_path`` if there is one (None if not); not yet checked for freshness."""
    try:
        return read_index(sidecar_path(data_path), config=config)
    except ObjectNotFoundError:
        return None
