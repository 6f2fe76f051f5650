"""tfrecord-s3: stream TFRecord datasets from S3 and local disk, without TensorFlow."""

from __future__ import annotations

from .config import S3Config
from .dataset import Dataset, DatasetStats, TFRecordDataset
from .decode import (
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RaggedValues,
    RowLengths,
    RowLimits,
    RowSplits,
    RowStarts,
    SparseFeature,
    SparseValues,
    UniformRowLength,
    ValueRowIds,
    VarLenFeature,
    parse_example,
    parse_example_batch,
    parse_sequence_example,
)
from .encode import encode_example, encode_feature
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
    "AccessDeniedError",
    "ConfigError",
    "CorruptRecordError",
    "Dataset",
    "DatasetStats",
    "DecodeError",
    "FileStatistics",
    "FixedLenFeature",
    "FixedLenSequenceFeature",
    "ObjectChangedError",
    "ObjectNotFoundError",
    "RaggedFeature",
    "RaggedValues",
    "RecordError",
    "RecordTooLargeError",
    "ResponseError",
    "RetriesExhaustedError",
    "RowLengths",
    "RowLimits",
    "RowSplits",
    "RowStarts",
    "S3Config",
    "SparseFeature",
    "SparseValues",
    "StorageError",
    "TFRecordDataset",
    "TFRecordS3Error",
    "TFRecordWriter",
    "TruncatedRecordError",
    "UniformRowLength",
    "ValueRowIds",
    "VarLenFeature",
    "__version__",
    "encode_example",
    "encode_feature",
    "exists",
    "glob",
    "listdir",
    "open",
    "open_records",
    "parse_example",
    "parse_example_batch",
    "parse_sequence_example",
    "stat",
    "tf_record_iterator",
]
