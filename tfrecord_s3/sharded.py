"""ShardedWriter: records into numbered shards, rolled by count or size, each with its index.

The pattern names shards with ``{index}`` and ``{count}`` (format specs allowed, e.g.
``"s3://b/train-{index:05d}-of-{count:05d}.tfrecord"``). The number of shards is known only
at the end, so when the pattern uses ``{count}``:

- with ``num_shards=N`` the names are final from the start; needing more than N shards is
  an error, and shards left unused at ``close()`` are written empty, so the set is complete;
- without it, shards are written under temporary names (``<name>.tfrecord-s3-tmp-<id>``
  beside the final ones) and renamed at ``close()`` (a rename locally; a server-side copy
  and a delete on S3). Nothing has its final name before the whole set is written.

On S3 each shard is a multipart upload whose parts go up in background threads while the
caller keeps writing (at most ``upload_concurrency`` parts in flight per shard, so memory
stays under ``(upload_concurrency + 1) * part_size``). On an exception inside the
``with`` block (or :meth:`abort`) the open upload is aborted and temporary shards are
deleted (as is a local shard cut short); shards already under their final names stay.
"""

from __future__ import annotations

import os
import string
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, cast

import numpy as np

from .errors import ConfigError
from .index import DataStamp, RecordIndex, sidecar_path, stamp_of, write_index
from .records.compression import DeflatingWriter, resolve_compression
from .records.framing import encode_frame
from .storage import filesystem
from .storage.local import strip_file_scheme

if TYPE_CHECKING:
    from .config import S3Config

__all__ = ["ShardedWriter"]

_TMP_MARK = ".tfrecord-s3-tmp-"
_SINGLE_COPY_LIMIT = 5 * 1024**3


@dataclass
class _Shard:
    index: int
    path: str  # where it is being written
    offsets: list[int] = field(default_factory=list)
    size: int = 0


class ShardedWriter:
    """Write records into shards named by ``pattern`` (local or ``s3://``).

    A new shard starts when the current one holds ``max_records`` records or adding the
    next record would take it past ``max_bytes`` (a record larger than that gets a shard of
    its own). ``index=True`` (the default) writes our record index beside each shard; it
    needs uncompressed shards. ``paths`` lists the final shard paths after ``close()``.
    """

    def __init__(
        self,
        pattern: str,
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
        num_shards: int | None = None,
        index: bool = True,
        compression_type: str | None = None,
        upload_concurrency: int = 4,
        config: S3Config | None = None,
    ) -> None:
        fields = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
        if "index" not in fields or not fields <= {"index", "count"}:
            raise ConfigError(f"pattern {pattern!r} must use {{index}} (and may use {{count}}), nothing else")
        for name, value in (("max_records", max_records), ("max_bytes", max_bytes), ("num_shards", num_shards)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, not {value}")
        if upload_concurrency < 1:
            raise ConfigError(f"upload_concurrency must be >= 1, not {upload_concurrency}")
        self.pattern = pattern
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.num_shards = num_shards
        self._deferred = "count" in fields and num_shards is None
        self._compression = resolve_compression(compression_type, pattern.format(index=0, count=1))
        if index and self._compression:
            raise ConfigError(f"{pattern}: index=True needs uncompressed shards (pass index=False)")
        self._index = index
        self._concurrency = upload_concurrency
        self._config = config
        self._token = uuid.uuid4().hex[:12]
        self._done: list[_Shard] = []
        self._shard: _Shard | None = None
        self._raw: BinaryIO | None = None
        self._sink: BinaryIO | None = None
        self._closed = False
        self.paths: list[str] = []
        self.records_written = 0
        self.bytes_written = 0

    # writing ------------------------------------------------------------------------

    def write(self, record: bytes | bytearray | memoryview) -> None:
        """Append one record to the current shard, starting a new shard first if it is full."""
        if self._closed:
            raise ValueError(f"write to closed ShardedWriter for {self.pattern}")
        frame = encode_frame(record)
        shard = self._shard
        if shard is not None and self._full(shard, len(frame)):
            self._finish_shard()
            shard = None
        if shard is None:
            shard = self._open_shard()
        assert self._sink is not None
        self._sink.write(frame)
        shard.offsets.append(shard.size)
        shard.size += len(frame)
        self.records_written += 1
        self.bytes_written += len(frame)

    def _full(self, shard: _Shard, frame: int) -> bool:
        if self.max_records is not None and len(shard.offsets) >= self.max_records:
            return True
        return self.max_bytes is not None and bool(shard.offsets) and shard.size + frame > self.max_bytes

    def _final_name(self, index: int, count: int | None) -> str:
        return self.pattern.format(index=index, count=count if count is not None else 0)

    def _open_shard(self) -> _Shard:
        index = len(self._done)
        if self.num_shards is not None and index >= self.num_shards:
            raise ConfigError(
                f"{self.pattern}: the records need more than num_shards={self.num_shards} shards "
                "(raise max_records / max_bytes or num_shards)"
            )
        path = self._final_name(index, self.num_shards)
        if self._deferred:
            path = f"{path}{_TMP_MARK}{self._token}"
        self._shard = _Shard(index, path)
        self._raw = self._open(path)
        self._sink = cast(BinaryIO, DeflatingWriter(self._raw, self._compression)) if self._compression else self._raw
        return self._shard

    def _open(self, path: str) -> BinaryIO:
        if filesystem.is_s3(path):
            from .config import S3Config
            from .storage.s3_parallel_writer import ParallelS3Writer
            from .storage.s3_path import S3Path

            config = self._config if self._config is not None else S3Config.from_env()
            return cast(BinaryIO, ParallelS3Writer(S3Path.parse(path), config, concurrency=self._concurrency))
        return filesystem.open(path, "wb")

    def _finish_shard(self) -> None:
        shard, sink = self._shard, self._sink
        self._shard = self._sink = self._raw = None
        if shard is None or sink is None:
            return
        sink.close()
        self._done.append(shard)
        if not self._deferred:
            self._publish(shard, shard.path)

    def _publish(self, shard: _Shard, final: str) -> None:
        if self._index:
            stamp = stamp_of(final, config=self._config)
            index = RecordIndex(np.array(shard.offsets, dtype=np.uint64), stamp)
            index.check_fresh(DataStamp(size=shard.size), path=sidecar_path(final), data_path=final)
            write_index(index, sidecar_path(final), config=self._config)
        self.paths.append(final)

    # the end ------------------------------------------------------------------------

    def close(self) -> list[str]:
        """Finish the last shard, complete the set (empty shards up to ``num_shards``; final
        names for temporary ones) and return the shard paths. Idempotent."""
        if self._closed:
            return self.paths
        self._finish_shard()
        if self.num_shards is not None:
            while len(self._done) < self.num_shards:
                self._open_shard()
                self._finish_shard()
        if self._deferred:
            count = len(self._done)
            for shard in self._done:
                final = self._final_name(shard.index, count)
                self._rename(shard.path, final, shard.size)
                self._publish(shard, final)
        self._closed = True
        return self.paths

    def abort(self) -> None:
        """Drop the open shard (aborting its upload) and every temporary shard."""
        if self._closed:
            return
        self._closed = True
        raw, sink = self._raw, self._sink
        shard = self._shard
        self._shard = self._sink = self._raw = None
        if raw is not None:
            abort = getattr(raw, "abort", None)
            try:
                if abort is not None:
                    abort()  # S3: the multipart upload is dropped, nothing appears
                else:
                    (sink or raw).close()
            finally:
                if abort is None and shard is not None:
                    self._delete(shard.path)  # a local shard cut short
        if self._deferred:
            for done in self._done:
                self._delete(done.path)

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self.abort()
        else:
            self.close()

    # storage --------------------------------------------------------------------------

    def _rename(self, source: str, target: str, size: int) -> None:
        if not filesystem.is_s3(source):
            os.replace(strip_file_scheme(source), strip_file_scheme(target))
            return
        from .config import S3Config
        from .storage.s3_client import get_client
        from .storage.s3_errors import translate
        from .storage.s3_path import S3Path

        client = get_client(self._config if self._config is not None else S3Config.from_env())
        src, dst = S3Path.parse(source), S3Path.parse(target)
        try:
            # Server-side: one CopyObject up to S3's 5 GB limit (every S3-compatible store has
            # it), boto3's managed multipart copy beyond.
            if size <= _SINGLE_COPY_LIMIT:
                client.copy_object(CopySource={"Bucket": src.bucket, "Key": src.key}, Bucket=dst.bucket, Key=dst.key)
            else:
                client.copy({"Bucket": src.bucket, "Key": src.key}, dst.bucket, dst.key)
            client.delete_object(Bucket=src.bucket, Key=src.key)
        except Exception as exc:
            raise translate(exc, target, "write") from exc

    def _delete(self, path: str) -> None:
        try:
            if not filesystem.is_s3(path):
                os.remove(strip_file_scheme(path))
                return
            from .config import S3Config
            from .storage.s3_client import get_client
            from .storage.s3_path import S3Path

            location = S3Path.parse(path)
            client = get_client(self._config if self._config is not None else S3Config.from_env())
            client.delete_object(Bucket=location.bucket, Key=location.key)
        except Exception:
            pass  # best effort while handling another error; the temporary name says what it is
