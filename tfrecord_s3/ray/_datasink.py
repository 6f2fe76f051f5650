"""TFRecordDatasink: Ray Data's ``Datasink`` writing one sharded TFRecord set with our writer.

Each write task writes one shard, ``<path>/<prefix>-<task index>.tfrecord[.gz|.zlib]``, of
``tf.train.Example`` records built by :func:`tfrecord_s3.encode_example` from the rows of its
blocks; a retried task rewrites the same shard (on S3 the object appears only when complete).
An uncompressed shard gets our index sidecar (``<shard>.tfrecord-s3.idx``) when it is closed,
so reading the set back knows each shard's records without reading it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from ray.data.block import Block, BlockAccessor
from ray.data.datasource import Datasink

from ..encode import encode_example
from ..errors import ConfigError
from ..records.compression import resolve_compression
from ..records.writer import TFRecordWriter
from ..storage import filesystem
from ..storage.local import strip_file_scheme

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = ["TFRecordDatasink", "rows_of"]

_EXTENSION = {"": ".tfrecord", "GZIP": ".tfrecord.gz", "ZLIB": ".tfrecord.zlib"}


class TFRecordDatasink(Datasink[list[tuple[str, int]]]):
    """Writes a dataset as TFRecord shards under ``path`` (a local directory or an S3 prefix)."""

    def __init__(
        self,
        path: str,
        *,
        compression_type: str | None = None,
        filename_prefix: str = "part",
        min_rows_per_file: int | None = None,
        index: bool = True,
        config: S3Config | None = None,
    ) -> None:
        if not path:
            raise ConfigError("write_tfrecords: path must be a directory or an s3:// prefix")
        if min_rows_per_file is not None and min_rows_per_file < 1:
            raise ConfigError(f"min_rows_per_file must be >= 1, not {min_rows_per_file}")
        self.path = path.rstrip("/")
        self.compression = resolve_compression(compression_type)
        self.filename_prefix = filename_prefix
        self.config = config
        # Sidecars only fit uncompressed shards (a compressed one cannot be entered mid-stream).
        self.index = index and not self.compression
        self._min_rows = min_rows_per_file
        self.written: list[str] = []

    @property
    def min_rows_per_write(self) -> int | None:
        return self._min_rows

    def shard_path(self, index: int) -> str:
        return f"{self.path}/{self.filename_prefix}-{index:05d}{_EXTENSION[self.compression]}"

    def on_write_start(self, schema: Any = None) -> None:
        """Refuse to mix two sets: the output must not hold shards with our prefix yet."""
        if not filesystem.is_s3(self.path):
            os.makedirs(strip_file_scheme(self.path), exist_ok=True)
        found = filesystem.glob(f"{self.path}/{self.filename_prefix}-*", config=self.config)
        if found:
            raise ConfigError(
                f"write_tfrecords: {self.path} already holds {len(found)} shard(s) such as {found[0]}; "
                "write to an empty directory or prefix, or pass another filename_prefix"
            )

    def write(self, blocks: Iterable[Block], ctx: Any) -> list[tuple[str, int]]:
        """Write this task's rows to one shard; no file at all for a task without rows."""
        blocks = iter(blocks)
        writer: TFRecordWriter | None = None
        target = self.shard_path(ctx.task_idx)
        if not filesystem.is_s3(target):
            os.makedirs(os.path.dirname(strip_file_scheme(target)) or ".", exist_ok=True)
        count = 0
        try:
            for block in blocks:
                table = BlockAccessor.for_block(block).to_arrow()
                for row in rows_of(table):
                    if writer is None:
                        writer = TFRecordWriter(target, self.compression, index=self.index, config=self.config)
                    writer.write(encode_example(row))
                    count += 1
        except BaseException as exc:
            if writer is not None:
                writer.__exit__(type(exc), exc, exc.__traceback__)  # drops a partial S3 upload
                if not filesystem.is_s3(target):
                    os.remove(strip_file_scheme(target))  # and a partial local shard
            raise
        if writer is None:
            return []
        writer.close()
        return [(target, count)]

    def on_write_complete(self, write_result: Any) -> None:
        """Keep the shard paths (on the driver), for :func:`write_tfrecords` to return."""
        returns = getattr(write_result, "write_returns", write_result)
        self.written = sorted(path for shards in returns for path, _ in shards)


def rows_of(table: pa.Table) -> Iterable[dict[str, Any]]:
    """Each row as ``{column: value}`` ready for ``encode_example``; nulls are left out
    (the feature is missing from that record, as TensorFlow writes it)."""
    columns = {name: _values(name, table.column(name)) for name in table.column_names}
    for index in range(table.num_rows):
        yield {name: values[index] for name, values in columns.items() if values[index] is not None}


def _values(name: str, column: pa.ChunkedArray) -> list[Any]:
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    kind = array.type
    if isinstance(kind, pa.ExtensionType):  # e.g. Ray's tensor columns
        return list(array.to_numpy(zero_copy_only=False))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _list_values(name, array)
    if pa.types.is_boolean(kind):
        array, kind = array.cast(pa.int64()), pa.int64()  # numpy bools are not ints to encode_feature
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if array.null_count:
            return array.to_pylist()  # type: ignore[no-any-return]
        return list(array.to_numpy(zero_copy_only=False))
    if _is_bytes(kind):
        return array.to_pylist()  # type: ignore[no-any-return]
    raise ConfigError(f"write_tfrecords: column {name!r} of type {kind} has no tf.train.Feature kind")


def _is_bytes(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def _list_values(name: str, array: pa.Array) -> list[Any]:
    """Per row, every leaf value under it (nested lists flattened, as a Feature is flat)."""
    starts, values = _bounds(array)
    while _is_list(values.type):
        inner_starts, values = _bounds(values)
        starts = inner_starts[starts]
    if values.null_count:
        raise ConfigError(f"write_tfrecords: column {name!r} holds null values inside a list")
    leaf = values.type
    if _is_bytes(leaf):
        flat: Any = np.empty(len(values), dtype=object)
        flat[:] = values.to_pylist()
    elif pa.types.is_integer(leaf) or pa.types.is_boolean(leaf) or pa.types.is_floating(leaf):
        flat = values.to_numpy(zero_copy_only=False)
    else:
        raise ConfigError(f"write_tfrecords: column {name!r} holds {leaf} values, which no Feature can hold")
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    bounds = starts.tolist()
    return [flat[bounds[i] : bounds[i + 1]] if valid[i] else None for i in range(len(array))]


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


def _bounds(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(row i's values are child[bounds[i]:bounds[i + 1]], the unsliced child array)."""
    if pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        return (np.arange(len(array) + 1, dtype=np.int64) + array.offset) * size, array.values
    return array.offsets.to_numpy().astype(np.int64), array.values
