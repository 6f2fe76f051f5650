"""The dataset layer: many files interleaved through a bounded prefetch pool."""

from __future__ import annotations

from .dataset import DEFAULT_MAX_BYTES_IN_FLIGHT, Dataset, TFRecordDataset
from .stats import DatasetStats

__all__ = ["DEFAULT_MAX_BYTES_IN_FLIGHT", "Dataset", "DatasetStats", "TFRecordDataset"]
