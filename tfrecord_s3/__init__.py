"""tfrecord-s3: stream TFRecord datasets from S3 and local disk, without TensorFlow."""

from __future__ import annotations

from .dataset import Dataset, DatasetStats, TFRecordDataset
from .errors import (
    AccessDeniedError,
    ConfigError,
    CorruptRecordError,
    DecodeError,
    ObjectChangedError,
    ObjectNotFoundError,
    RecordError,
    RecordTooLargeError,
    ResponseError,
    RetriesExhaustedError,
    StorageError,
    TFRecordS3Error,
    TruncatedRecordError,
)
from .records.reader import open_records, tf_record_iterator
from .records.writer import TFRecordWriter
from .storage.base import FileStatistics
from .storage.filesystem import exists, glob, listdir, open, stat

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "DatasetStats",
    "TFRecordDataset",
    "AccessDeniedError",
    "ConfigError",
    "CorruptRecordError",
    "DecodeError",
    "FileStatistics",
    "ObjectChangedError",
    "ObjectNotFoundError",
    "RecordError",
    "RecordTooLargeError",
    "ResponseError",
    "RetriesExhaustedError",
    "StorageError",
    "TFRecordS3Error",
    "TFRecordWriter",
    "TruncatedRecordError",
    "__version__",
    "exists",
    "glob",
    "listdir",
    "open",
    "open_records",
    "stat",
    "tf_record_iterator",
]
