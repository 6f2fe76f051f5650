"""The dataset layer: many files interleaved through a bounded prefetch pool."""

from __future__ import annotations

from .dataset import DEFAULT_MAX_BYTES_IN_FLIGHT, Dataset, TFRecordDataset
from .mixing import choose_from_datasets, sample_from_datasets
from .parallel import AUTOTUNE
from .stats import DatasetStats

__all__ = [
    "AUTOTUNE",
    "DEFAULT_MAX_BYTES_IN_FLIGHT",
    "Dataset",
    "DatasetStats",
    "TFRecordDataset",
    "choose_from_datasets",
    "sample_from_datasets",
]
