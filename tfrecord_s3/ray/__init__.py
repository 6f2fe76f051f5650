"""Ray Data: read and write TFRecord files without TensorFlow (``pip install "tfrecord-s3[ray]"``).

The only package that imports ray. What runs where: :func:`read_tfrecords` lists the files
and their sizes and, without ``features``, infers them from a sample of records, on the
driver; each read task then opens its own files (or byte range of a large file) in a Ray
worker, checks every CRC, decodes records batch-wise with our decoder into pyarrow Tables
and builds its own S3 clients from the environment of the node it runs on (TensorFlow's
``S3_ENDPOINT``, ``AWS_REGION``, ... and boto3's credential chain), unless an explicit
``config`` was passed. Credentials never travel with a task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ray.data

from ..arrow import arrow_type
from ..dataset.files import resolve_filenames
from ..dataset.prefetch import ReadOptions
from ..decode.specs import FeatureSpec
from ..errors import ConfigError
from ..records.compression import DEFAULT_MAX_RATIO, resolve_compression
from ..records.framing import DEFAULT_MAX_RECORD_BYTES
from ._datasink import TFRecordDatasink
from ._datasource import TFRecordDatasource
from ._index import index_rows
from ._plan import sized_files
from ._read import TaskOptions
from ._schema import infer_features, sample_records
from ._tfds import tfds_rows

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = ["TFRecordDatasink", "TFRecordDatasource", "read_tfrecords", "tfrecord_datasource", "write_tfrecords"]

#: Without ``override_num_blocks``, a file is cut into byte ranges of at least this size.
DEFAULT_MIN_RANGE_BYTES = 64 << 20
_BATCH_BYTES = 16 << 20


def read_tfrecords(
    paths: str | Iterable[str],
    *,
    features: Mapping[str, FeatureSpec] | None = None,
    columns: Sequence[str] | None = None,
    compression_type: str | None = None,
    override_num_blocks: int | None = None,
    config: S3Config | None = None,
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_decompression_ratio: float = DEFAULT_MAX_RATIO,
    schema_sample: int = 1000,
    batch_size: int = 1024,
    use_index: bool | None = None,
    **read_args: Any,
) -> ray.data.Dataset:
    """A Ray Dataset of the ``tf.train.Example`` records in ``paths`` (local, ``file://`` or
    ``s3://``; a path, a glob, or a list of both), one row per record, in file order.

    ``features``: TensorFlow-style specs (``FixedLenFeature`` -> a plain or fixed-size-list
    column, ``VarLenFeature`` -> a list column, ...; see :mod:`tfrecord_s3.arrow`). Without
    them the features are inferred from the first ``schema_sample`` records (see
    ``TFRecordDatasource.features``): a later record that does not fit raises ``DecodeError``
    naming its file and offset. ``columns``: decode only these features (``select_columns``
    on the dataset is pushed down the same way).

    ``compression_type``: None / "" / "GZIP" / "ZLIB" / "auto" (by extension), as in
    TensorFlow. Uncompressed files are split into byte ranges when Ray asks for more read
    tasks than there are files (``override_num_blocks``, or Ray's own choice for files of
    64 MiB and more). Record counts, so that ``ds.count()`` reads nothing, come from TensorFlow
    Datasets' ``dataset_info.json`` where one describes the files, and from our index sidecars
    (``tfrecord-s3 index``, ``TFRecordWriter(index=True)``) where they are fresh:
    ``use_index`` None (default) looks for those of local files only, True of ``s3://`` files
    too (one GET each while planning), False never. ``batch_size``: records decoded per
    block. Other keyword arguments (``concurrency``, ``num_cpus``, ``ray_remote_args``, ...)
    go to ``ray.data.read_datasource``. Errors are our typed errors, raised from
    ``ray.exceptions.RayTaskError`` subclasses of them: ``except DecodeError`` catches them.
    """
    if override_num_blocks is not None and override_num_blocks < 1:
        raise ConfigError(f"override_num_blocks must be >= 1, not {override_num_blocks}")
    source = tfrecord_datasource(
        paths,
        features=features,
        columns=columns,
        compression_type=compression_type,
        config=config,
        verify_crc=verify_crc,
        max_record_bytes=max_record_bytes,
        max_decompression_ratio=max_decompression_ratio,
        schema_sample=schema_sample,
        batch_size=batch_size,
        use_index=use_index,
        # Asked for so many blocks: cut files as finely as that takes.
        min_range_bytes=1 if override_num_blocks is not None else DEFAULT_MIN_RANGE_BYTES,
    )
    dataset: ray.data.Dataset = ray.data.read_datasource(source, override_num_blocks=override_num_blocks, **read_args)
    return dataset


def tfrecord_datasource(
    paths: str | Iterable[str],
    *,
    features: Mapping[str, FeatureSpec] | None = None,
    columns: Sequence[str] | None = None,
    compression_type: str | None = None,
    config: S3Config | None = None,
    verify_crc: bool = True,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    max_decompression_ratio: float = DEFAULT_MAX_RATIO,
    schema_sample: int = 1000,
    batch_size: int = 1024,
    use_index: bool | None = None,
    min_range_bytes: int = DEFAULT_MIN_RANGE_BYTES,
) -> TFRecordDatasource:
    """The :class:`TFRecordDatasource` :func:`read_tfrecords` reads (files listed and sized,
    features settled); for ``ray.data.read_datasource`` with options of your own."""
    resolve_compression(compression_type)  # a bad value fails here, not in a worker
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, not {batch_size}")
    if schema_sample < 1:
        raise ConfigError(f"schema_sample must be >= 1, not {schema_sample}")
    files = resolve_filenames(paths, config=config)
    if not files:
        raise ConfigError("read_tfrecords: no paths given")
    files, sizes = sized_files(files, config)
    read = ReadOptions(compression_type, verify_crc, max_record_bytes, max_decompression_ratio, "raise", config)
    inferred_from = None
    if features is None:
        sample = sample_records(files, schema_sample, read)
        features = infer_features(sample)
        inferred_from = sample.describe()
    specs = _checked(features)
    if columns is not None:
        specs = _projected(specs, columns, inferred=inferred_from is not None)
    options = TaskOptions(read, specs, batch_size, _BATCH_BYTES, inferred_from)
    rows = tfds_rows(files, config)
    if use_index is not False and None in rows:
        indexed = index_rows(files, sizes, config, compression_type=compression_type, s3=bool(use_index))
        rows = [known if known is not None else found for known, found in zip(rows, indexed, strict=True)]
    return TFRecordDatasource(files, sizes, options, min_range_bytes=max(1, min_range_bytes), rows=rows)


def write_tfrecords(
    dataset: ray.data.Dataset,
    path: str,
    *,
    compression_type: str | None = None,
    filename_prefix: str = "part",
    min_rows_per_file: int | None = None,
    index: bool = True,
    config: S3Config | None = None,
    **write_args: Any,
) -> list[str]:
    """Write ``dataset`` as ``tf.train.Example`` TFRecord shards under ``path`` (a directory
    or an ``s3://`` prefix, which must not hold ``<filename_prefix>-*`` files yet), one
    shard per write task: ``part-00000.tfrecord``, ... (``.gz`` / ``.zlib`` when compressed).

    Columns become features: integers and booleans int64, floats float32 (TFRecords hold no
    float64), strings and binary bytes; list, fixed-size-list and tensor columns their
    flattened values; a null leaves the feature out of that record. ``index``: each
    uncompressed shard also gets our index sidecar (``<shard>.tfrecord-s3.idx``), so
    :func:`read_tfrecords` (and random access) know its records without reading it. Returns
    the shard paths.
    Other keyword arguments go to ``Dataset.write_datasink`` (``concurrency``, ...).
    """
    sink = TFRecordDatasink(
        path,
        compression_type=compression_type,
        filename_prefix=filename_prefix,
        min_rows_per_file=min_rows_per_file,
        index=index,
        config=config,
    )
    dataset.write_datasink(sink, **write_args)
    return sink.written


def _checked(features: Mapping[str, FeatureSpec]) -> dict[str, FeatureSpec]:
    if not isinstance(features, Mapping):
        raise ConfigError(f"features must be a mapping of name -> spec, got {type(features).__name__}")
    for key, spec in features.items():
        try:
            arrow_type(spec)
        except (ConfigError, AttributeError, KeyError) as exc:
            raise ConfigError(f"feature {key!r}: {spec!r} is not a feature spec read_tfrecords supports") from exc
    return dict(features)


def _projected(features: dict[str, FeatureSpec], columns: Sequence[str], *, inferred: bool) -> dict[str, FeatureSpec]:
    if isinstance(columns, str):
        raise ConfigError(f"columns must be a list of feature names, not the string {columns!r}")
    unknown = [name for name in columns if name not in features]
    if unknown:
        source = "the sampled records hold" if inferred else "features has"
        raise ConfigError(f"columns {unknown} not found: {source} {sorted(features)}")
    return {name: features[name] for name in columns}
