"""Random access to TFRecord files by record number, through record indexes."""

from __future__ import annotations

from .dataset import TFRecordMapDataset

__all__ = ["TFRecordMapDataset"]
