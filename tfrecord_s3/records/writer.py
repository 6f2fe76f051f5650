"""TFRecordWriter: frames records and writes them (optionally compressed) to any path."""

from __future__ import annotations

import warnings
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, cast

from ..storage import filesystem
from .compression import DeflatingWriter, resolve_compression
from .framing import encode_frame

if TYPE_CHECKING:
    from ..config import S3Config

# Compressions whose "the name says so but nothing compresses" warning was given: once per
# process, not once per shard.
_warned_names: set[str] = set()


class TFRecordWriter:
    """Write records to ``path`` (local, ``file://`` or ``s3://``) as TensorFlow does.

    ``compression_type``: None / "" / "GZIP" / "ZLIB" / "auto", or an object with a
    ``compression_type`` attribute (TensorFlow's ``TFRecordOptions``). On S3 the file is a
    multipart upload, visible only after ``close()``.

    ``index=True`` also writes our record index beside the file (``<path>.tfrecord-s3.idx``)
    when it is closed, or to the path given as ``index=``; uncompressed files only.
    """

    def __init__(
        self,
        path: str,
        compression_type: object = None,
        *,
        index: bool | str = False,
        config: S3Config | None = None,
    ) -> None:
        ctype: str | None = (
            compression_type
            if compression_type is None or isinstance(compression_type, str)
            else getattr(compression_type, "compression_type", None)
        )
        compression = resolve_compression(ctype, path)
        if not compression:
            _warn_if_named_compressed(path)
        self.path = path
        self._config = config
        self._index_path: str | None = None
        if index:
            from ..index import refuse_compressed, sidecar_path

            refuse_compressed(path, ctype)
            self._index_path = index if isinstance(index, str) else sidecar_path(path)
        self._offsets: list[int] = []
        self._offset = 0
        raw = filesystem.open(path, "wb", config=config)
        self._raw = raw
        self._sink: BinaryIO = cast(BinaryIO, DeflatingWriter(raw, compression)) if compression else raw
        self._closed = False

    def write(self, record: bytes | bytearray | memoryview) -> None:
        """Append one record."""
        if self._closed:
            raise ValueError(f"write to closed TFRecordWriter for {self.path}")
        frame = encode_frame(record)
        self._sink.write(frame)
        if self._index_path is not None:
            self._offsets.append(self._offset)
            self._offset += len(frame)

    def flush(self) -> None:
        if not self._closed:
            self._sink.flush()

    def close(self) -> None:
        """Finish the file (and the upload, on S3). Idempotent."""
        if not self._closed:
            self._closed = True
            self._sink.close()
            if self._index_path is not None:
                self._write_index(self._index_path)

    def _write_index(self, index_path: str) -> None:
        import numpy as np

        from ..index import DataStamp, RecordIndex, stamp_of, write_index

        # The stamp of what was just published (its mtime, or its ETag: one HEAD on S3).
        stamp = stamp_of(self.path, config=self._config)
        index = RecordIndex(np.array(self._offsets, dtype=np.uint64), stamp)
        index.check(index_path)
        # A file that is not exactly what this writer wrote (another writer raced it) gets no index.
        index.check_fresh(DataStamp(size=self._offset), path=index_path, data_path=self.path)
        write_index(index, index_path, config=self._config)

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        abort = getattr(self._raw, "abort", None)
        if exc is not None:
            self._index_path = None  # a file left by a failure gets no index
        if exc is not None and abort is not None and not self._closed:
            # Leave no half-written object behind on S3 (the multipart upload is dropped).
            self._closed = True
            abort()
            return
        self.close()


def _warn_if_named_compressed(path: str) -> None:
    named = resolve_compression("auto", path)
    if named and named not in _warned_names:
        _warned_names.add(named)
        warnings.warn(
            f"{path}: the name says {named} but the file is written uncompressed; pass "
            f'compression_type="{named}" (or "auto") to compress it, or rename it '
            "(this warning is given once)",
            UserWarning,
            stacklevel=3,
        )
