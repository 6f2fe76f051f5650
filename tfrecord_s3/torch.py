"""PyTorch: an iterable dataset split across DataLoader workers and distributed ranks
(resumable, optionally with even steps per rank), a map-style dataset with random access
through record indexes, and a collate helper.

With ``tfrecord_s3/_torch``, the only modules that import torch.
"""

from __future__ import annotations

from typing import Any

from ._torch.collate import collate
from ._torch.iterable import TFRecordIterableDataset
from ._torch.map_dataset import TFRecordMapDataset
from ._torch.tensors import as_tensors

__all__ = ["TFRecordIterableDataset", "TFRecordMapDataset", "collate", "to_torch"]


def to_torch(value: Any) -> Any:
    """numpy arrays (also inside dicts, lists and tuples) as tensors, numeric numpy scalars as
    0-d tensors; bytes left as they are."""
    return as_tensors(value)
