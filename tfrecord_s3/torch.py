"""PyTorch: TFRecordIterableDataset, split across DataLoader workers and distributed ranks.

With ``tfrecord_s3/_torch``, the only modules that import torch. Who reads what is decided when iteration starts (in
the worker process, after ``torch.distributed`` may have been initialised), never in
``__init__``: each record is read by exactly one (rank, worker) per epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from ._torch.collate import collate
from ._torch.map_dataset import TFRecordMapDataset
from ._torch.tensors import as_tensors
from .dataset.dataset import DEFAULT_MAX_BYTES_IN_FLIGHT, TFRecordDataset
from .dataset.files import resolve_filenames
from .dataset.split import Assignment, iter_assignment, plan
from .errors import ConfigError
from .records.compression import DEFAULT_MAX_RATIO
from .records.framing import DEFAULT_MAX_RECORD_BYTES

if TYPE_CHECKING:
    from .config import S3Config

__all__ = ["TFRecordIterableDataset", "TFRecordMapDataset", "collate", "to_torch"]


class TFRecordIterableDataset(IterableDataset[Any]):
    """TFRecord files (local or ``s3://``) as a ``torch.utils.data.IterableDataset``.

    Without ``features`` it yields raw records (``bytes``); with a feature spec, dicts of
    tensors (one per record, or one per batch of ``batch_size`` records, decoded batch-wise).
    ``rank``/``world_size`` default to ``torch.distributed``'s when it is initialised, else
    0 and 1. ``shuffle_files`` and ``shuffle_buffer`` reshuffle every epoch from ``seed``
    and :meth:`set_epoch`.
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
        compression_type: str | None = None,
        num_parallel_reads: int | None = None,
        verify_crc: bool = True,
        on_corrupt: str = "raise",
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        max_decompression_ratio: float = DEFAULT_MAX_RATIO,
        max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT,
        config: S3Config | None = None,
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
        self._template = TFRecordDataset(
            [],
            compression_type,
            None,
            num_parallel_reads,
            verify_crc=verify_crc,
            on_corrupt=on_corrupt,
            max_record_bytes=max_record_bytes,
            max_decompression_ratio=max_decompression_ratio,
            max_bytes_in_flight=max_bytes_in_flight,
            config=config,
        )

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
        records = self._records(parts)
        if self.shuffle_buffer > 1:
            records = _shuffled(
                records, self.shuffle_buffer, random.Random(f"{self.seed}:{self.epoch}:{self.reader()}")
            )
        if self.features is None and self.batch_size is None:
            yield from records
            return
        from .decode import parse_example, parse_example_batch

        if self.batch_size is None:
            for record in records:
                yield to_torch(parse_example(record, self.features))
            return
        batch: list[bytes] = []
        for record in records:
            batch.append(record)
            if len(batch) == self.batch_size:
                yield self._emit(batch, parse_example_batch)
                batch = []
        if batch and not self.drop_last:
            yield self._emit(batch, parse_example_batch)

    def _emit(self, batch: list[bytes], parse_batch: Any) -> Any:
        if self.features is None:
            return batch
        return to_torch(parse_batch(batch, self.features))

    def _records(self, parts: list[Assignment]) -> Iterator[bytes]:
        if all(part.whole for part in parts):
            # Whole files: the prefetching, interleaving dataset does the reading.
            if parts:
                yield from self._template.with_files([part.path for part in parts])
            return
        for part in parts:
            yield from iter_assignment(part, self._template.options)


def _shuffled(records: Iterator[bytes], size: int, rng: random.Random) -> Iterator[bytes]:
    buffer: list[bytes] = []
    for record in records:
        if len(buffer) < size:
            buffer.append(record)
            continue
        i = rng.randrange(size)
        buffer[i], record = record, buffer[i]
        yield record
    rng.shuffle(buffer)
    yield from buffer


def to_torch(value: Any) -> Any:
    """numpy arrays (also inside dicts, lists and tuples) as tensors, numeric numpy scalars as
    0-d tensors; bytes left as they are."""
    return as_tensors(value)
