"""TFRecordMapDataset for PyTorch: the framework-free core, yielding tensors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from torch.utils.data import Dataset

from ..random_access.dataset import TFRecordMapDataset as _Core

__all__ = ["TFRecordMapDataset"]
from .tensors import as_tensors


class TFRecordMapDataset(_Core, Dataset[Any]):
    """Uncompressed TFRecord files as a map-style ``torch.utils.data.Dataset``.

    ``len(ds)``, ``ds[i]`` and ``ds.__getitems__(indices)`` (which a ``DataLoader`` calls with
    each batch's indices: its records come in few coalesced ranged reads), so any sampler
    works: ``shuffle=True`` is a true global shuffle, ``DistributedSampler`` splits records
    between ranks. Without ``features`` an item is the record's ``bytes``; with them a dict of
    tensors (a ``FixedLenFeature([])`` is a 0-d tensor, bytes stay ``bytes``).
    ``transform`` gets each item after that. Batch items of variable length with
    ``collate_fn=tfrecord_s3.torch.collate``. Every other argument is the core
    :class:`tfrecord_s3.TFRecordMapDataset`'s.
    """

    def __init__(
        self,
        filenames: str | Iterable[str],
        *,
        features: Mapping[str, Any] | None = None,
        index: Sequence[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(filenames, features=features, index=index, **options)
        self.tensor_transform = transform

    def _finish(self, items: list[Any]) -> list[Any]:
        if self.features is not None:
            items = [as_tensors(item) for item in items]
        if self.tensor_transform is not None:
            items = [self.tensor_transform(item) for item in items]
        return items
