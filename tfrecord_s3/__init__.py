"""tfrecord-s3: stream TFRecord datasets from S3 and local disk, without TensorFlow."""

from __future__ import annotations

from .config import S3Config
from .dataset import AUTOTUNE, Dataset, DatasetStats, TFRecordDataset, choose_from_datasets, sample_from_datasets
from .decode import (
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RaggedValues,
    RowLengths,
    RowSplits,
    VarLenFeature,
    parse_example_batch,
    parse_sequence_example,
)
from .encode import encode_example, encode_feature
from .errors import (
    AccessDeniedError,
    ConfigError,
    CorruptIndexError,
    CorruptRecordError,
    DecodeError,
    IndexFileError,
    ObjectChangedError,
    ObjectNotFoundError,
    RecordError,
    RecordTooLargeError,
    ResponseError,
    RetriesExhaustedError,
    StaleIndexError,
    StorageError,
    TFRecordS3Error,
    TruncatedRecordError,
)
from .parsing import parse_example, parse_single_example
from .random_access import TFRecordMapDataset
from .records.reader import open_records, tf_record_iterator
from .records.writer import TFRecordWriter
from .sharded import ShardedWriter
from .storage.base import FileStatistics
from .storage.filesystem import exists, glob, listdir, open, stat

__version__ = "0.1.0"

__all__ = [
    "AUTOTUNE",
    "AccessDeniedError",
    "ConfigError",
    "CorruptIndexError",
    "CorruptRecordError",
    "Dataset",
    "DatasetStats",
    "DecodeError",
    "FileStatistics",
    "FixedLenFeature",
    "FixedLenSequenceFeature",
    "IndexFileError",
    "ObjectChangedError",
    "ObjectNotFoundError",
    "RaggedFeature",
    "RaggedValues",
    "RecordError",
    "RecordTooLargeError",
    "ResponseError",
    "RetriesExhaustedError",
    "RowLengths",
    "RowSplits",
    "S3Config",
    "ShardedWriter",
    "StaleIndexError",
    "StorageError",
    "TFRecordDataset",
    "TFRecordMapDataset",
    "TFRecordS3Error",
    "TFRecordWriter",
    "TruncatedRecordError",
    "VarLenFeature",
    "__version__",
    "choose_from_datasets",
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
    "parse_single_example",
    "sample_from_datasets",
    "stat",
    "tf_record_iterator",
]
