"""PyTorch: TFRecordIterableDataset, split across DataLoader workers and distributed ranks.

The only module that imports torch. Who reads what is decided when iteration starts (in
the worker process, after ``torch.distributed`` may have been initialised), never in
``__init__``: each record is read by exactly one (rank, worker) per epoch.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from .dataset.dataset import TFRecordDataset, TFRecordKeywords
from .dataset.decode_stage import Locator, decoder, located
from .dataset.files import resolve_filenames
from .dataset.split import Assignment, iter_assignment, locate_in_parts, plan
from .dataset.stages import shuffled
from .errors import ConfigError, DecodeError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["TFRecordIterableDataset", "to_torch"]


class TFRecordIterableDataset(IterableDataset[Any]):
    """TFRecord files (local or ``s3://``) as a ``torch.utils.data.IterableDataset``.

    Without ``features`` it yields raw records (``bytes``); with a feature spec, dicts of
    tensors (one per record, or one per batch of ``batch_size`` records, decoded batch-wise).
    ``rank``/``world_size`` default to ``torch.distributed``'s when it is initialised, else
    0 and 1. ``shuffle_files`` and ``shuffle_buffer`` reshuffle every epoch from ``seed``
    and :meth:`set_epoch`. Every other keyword is :class:`TFRecordDataset`'s
    (``compression_type``, ``num_parallel_reads``, ``verify_crc``, ``on_corrupt``, ...).
    """

    def __init__(
        self,
        filenames: str | Iterable[str],
        *,
        features: Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle_files: bool = False,
        shuffle_buffer: int = 0,
        seed: int = 0,
        **reading: Unpack[TFRecordKeywords],
    ) -> None:
        super().__init__()
        if (rank is None) != (world_size is None):
            raise ConfigError("pass both rank and world_size, or neither")
        if world_size is not None and rank is not None and not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size), not {rank} of {world_size}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, not {batch_size}")
        self.filenames = filenames if isinstance(filenames, str) else list(filenames)
        self.features = features
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.shuffle_files = shuffle_files
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        # In shared memory, so set_epoch() in the main process reaches DataLoader workers that
        # outlive an epoch (persistent_workers=True) and hold their own copy of the dataset.
        self._epoch = torch.zeros((), dtype=torch.int64)
        self._epoch.share_memory_()  # type: ignore[no-untyped-call]
        # Validated here, so a bad value fails in the main process, not in a worker.
        self._template = TFRecordDataset([], **reading)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call before each epoch, as with DistributedSampler; also
        reaches persistent DataLoader workers)."""
        self._epoch.fill_(epoch)

    def reader(self) -> tuple[int, int]:
        """(this reader's index, number of readers) for the current process and worker."""
        if self.rank is not None and self.world_size is not None:
            rank, world = self.rank, self.world_size
        elif dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        else:
            rank, world = 0, 1
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def assignments(self) -> list[Assignment]:
        """The parts of the files this reader reads this epoch."""
        options = self._template.options
        files = sorted(resolve_filenames(self.filenames, config=options.config))
        if self.shuffle_files:
            random.Random(f"{self.seed}:{self.epoch}").shuffle(files)
        index, count = self.reader()
        return plan(files, index, count, compression_type=options.compression_type, config=options.config)

    def __iter__(self) -> Iterator[Any]:
        parts = self.assignments()
        locating: list[Locator] = [self._template.locate]  # to name a record that fails to decode
        records = self._records(parts, locating)
        if self.shuffle_buffer > 1:
            records = shuffled(records, self.shuffle_buffer, random.Random(f"{self.seed}:{self.epoch}:{self.reader()}"))
        if self.features is None and self.batch_size is None:
            yield from records
            return
        decode = decoder(self.features)
        if self.batch_size is None:
            for record in records:
                yield self._emit(decode, record, locating[0])
            return
        batch: list[bytes] = []
        for record in records:
            batch.append(record)
            if len(batch) == self.batch_size:
                yield self._emit(decode, batch, locating[0])
                batch = []
        if batch and not self.drop_last:
            yield self._emit(decode, batch, locating[0])

    def _emit(self, decode: Callable[[Any], Any], element: Any, locate: Locator) -> Any:
        """A record or a batch, decoded when there are ``features``; a DecodeError names the record."""
        if self.features is None:
            return element
        try:
            return to_torch(decode(element))
        except DecodeError as exc:
            error = located(exc, element, self.features, locate)
        raise error from error.__cause__

    def _records(self, parts: list[Assignment], locating: list[Locator]) -> Iterator[bytes]:
        if all(part.whole for part in parts):
            # Whole files: the prefetching, interleaving dataset does the reading.
            if parts:
                dataset = self._template.with_files([part.path for part in parts])
                locating[0] = dataset.locate
                yield from dataset
            return
        options = self._template.options
        for i, part in enumerate(parts):
            # A record that fails to decode is looked for again in this part, then the earlier ones.
            locating[0] = functools.partial(locate_in_parts, parts[i::-1], options)
            yield from iter_assignment(part, options)


def to_torch(value: Any) -> Any:
    """numpy arrays (also inside dicts, lists and tuples) as tensors; bytes left as they are."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return value.tolist()
        return torch.from_numpy(value)
    if isinstance(value, dict):
        return {k: to_torch(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(to_torch(v) for v in value)
    if isinstance(value, list):
        return [to_torch(v) for v in value]
    return value
