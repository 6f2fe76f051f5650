"""TFRecordIterableDataset: split across DataLoader workers and ranks, resumable, even if asked.

Who reads what is decided when iteration starts (in the worker process, after
``torch.distributed`` may have been initialised), never in ``__init__``: each record is read
by exactly one (rank, worker) per epoch.

Resuming (``state_dict`` / ``load_state_dict``, the protocol torchdata's
``StatefulDataLoader`` calls in each worker): the state is the epoch, the reader, and how
many records that reader has handed out. Reading whole files without a shuffle buffer, it
also holds the position of the underlying :class:`~tfrecord_s3.TFRecordDataset` (file and
byte offset per open file), and resuming seeks straight there. Otherwise the reader's
stream is deterministic for a (seed, epoch, reader), so resuming replays it and drops the
records already handed out, undecoded: a state stays a few numbers however large the
shuffle buffer, so taking one after every batch costs nothing.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from ..dataset.dataset import TFRecordDataset, TFRecordKeywords
from ..dataset.decode_stage import Locator, decoder, located
from ..dataset.files import resolve_filenames
from ..dataset.split import Assignment, iter_assignment, locate_in_parts, plan
from ..dataset.stages import shuffled
from ..errors import ConfigError, DecodeError
from ..random_access.even import RecordRun, iter_run, plan_runs, share
from ..records.reader import open_records
from .tensors import as_tensors, check_ragged

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ..index import RecordIndex

__all__ = ["TFRecordIterableDataset"]

_STATE_VERSION = 1


class _Progress:
    """What the live iteration of this process has handed out (read by ``state_dict``)."""

    def __init__(self, epoch: int, reader: tuple[int, int], records: int) -> None:
        self.epoch = epoch
        self.reader = reader
        self.records = records
        self.source: TFRecordDataset | None = None
        # Names a record that fails to decode: (path, offset) of records just handed out.
        self.locate: Locator = lambda records: [None] * len(records)


class TFRecordIterableDataset(IterableDataset[Any]):
    """TFRecord files (local or ``s3://``) as a ``torch.utils.data.IterableDataset``.

    Without ``features`` it yields raw records (``bytes``); with a feature spec, dicts of
    tensors (one per record, or one per batch of ``batch_size`` records, decoded batch-wise);
    a ``FixedLenFeature([])`` is a 0-d tensor per record and a ``[batch]`` tensor per batch.
    Variable-length features of a batch come as ``ragged``: "ragged" (a RaggedValues),
    "padded" (a padded tensor plus ``<key>_lengths``) or "nested" (a ``torch.nested``
    tensor). ``transform`` gets each item last.

    ``rank``/``world_size`` default to ``torch.distributed``'s when it is initialised, else
    0 and 1. ``shuffle_files`` and ``shuffle_buffer`` reshuffle every epoch from ``seed``
    and :meth:`set_epoch`. Every other keyword is :class:`TFRecordDataset`'s
    (``compression_type``, ``num_parallel_reads``, ``verify_crc``, ``on_corrupt``, ...).

    ``even_steps=True``: every (rank, worker) reads the same number of records, so the same
    number of batches (DDP never waits at an epoch's end for a rank that ran out); the last
    ``total % readers`` records of the epoch's order sit it out. The counts come from
    ``record_counts`` (one per file), else each file's index sidecar, else a first pass
    over the files (made once, here); :meth:`from_tfds_dir` takes them from TFDS metadata.
    ``len()`` is this rank's number of items when the counts are known (even steps, or
    whole files per reader); ``num_workers`` is the DataLoader's, for ``len()`` only (its
    workers split the rank's share).
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
        even_steps: bool = False,
        record_counts: Sequence[int] | None = None,
        num_workers: int = 0,
        ragged: str = "ragged",
        transform: Callable[[Any], Any] | None = None,
        **reading: Unpack[TFRecordKeywords],
    ) -> None:
        super().__init__()
        if (rank is None) != (world_size is None):
            raise ConfigError("pass both rank and world_size, or neither")
        if world_size is not None and rank is not None and not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size), not {rank} of {world_size}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, not {batch_size}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, not {num_workers}")
        self.filenames = filenames if isinstance(filenames, str) else list(filenames)
        self.features = features
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.shuffle_files = shuffle_files
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.even_steps = even_steps
        self.num_workers = num_workers
        self.ragged = check_ragged(ragged)
        self.transform = transform
        # In shared memory, so set_epoch() in the main process reaches DataLoader workers that
        # outlive an epoch (persistent_workers=True) and hold their own copy of the dataset.
        self._epoch = torch.zeros((), dtype=torch.int64)
        self._epoch.share_memory_()  # type: ignore[no-untyped-call]
        self._progress: _Progress | None = None
        self._pending: dict[str, Any] | None = None
        # Validated here, so a bad value fails in the main process, not in a worker.
        self._template = TFRecordDataset([], **reading)
        self._files: list[str] | None = None
        self._counts: list[int] | None = None
        self._indexes: list[RecordIndex | None] | None = None
        if record_counts is not None:
            given = resolve_filenames(self.filenames, config=self._template.options.config)
            if len(record_counts) != len(given):
                raise ConfigError(f"record_counts: {len(record_counts)} counts for {len(given)} files")
            count_of = dict(zip(given, (int(c) for c in record_counts), strict=True))
            self._counts = [count_of[path] for path in self._sorted_files()]
        if even_steps:
            self._learn_counts()

    @classmethod
    def from_tfds_dir(cls, path: str, split: str = "train", **kwargs: Any) -> TFRecordIterableDataset:
        """The shards of ``split`` in a TensorFlow Datasets directory (local or ``s3://``), with
        their record counts from ``dataset_info.json``: ``len()`` and ``even_steps`` scan nothing."""
        from ..tfds import read_tfds_split

        info = read_tfds_split(path, split, config=kwargs.get("config"))
        return cls(info.files, record_counts=info.counts, **kwargs)

    # epochs and readers ---------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call before each epoch, as with DistributedSampler; also
        reaches persistent DataLoader workers)."""
        self._epoch.fill_(epoch)

    def reader(self) -> tuple[int, int]:
        """(this reader's index, number of readers) for the current process and worker."""
        rank, world = self._rank()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world * workers

    def _rank(self) -> tuple[int, int]:
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _sorted_files(self) -> list[str]:
        if self._files is None:
            self._files = sorted(resolve_filenames(self.filenames, config=self._template.options.config))
        return self._files

    def _epoch_files(self, epoch: int) -> tuple[list[str], list[int]]:
        """The files in this epoch's order and their positions in the sorted list."""
        files = self._sorted_files()
        order = list(range(len(files)))
        if self.shuffle_files:
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
        return [files[i] for i in order], order

    def assignments(self) -> list[Assignment]:
        """The parts of the files this reader reads this epoch (without ``even_steps``)."""
        options = self._template.options
        files, _ = self._epoch_files(self.epoch)
        index, count = self.reader()
        return plan(files, index, count, compression_type=options.compression_type, config=options.config)

    # counts and len() -----------------------------------------------------------------

    def _learn_counts(self) -> None:
        """Each file's record count: given, else from its sidecar index, else by a first pass."""
        from ..index import find_index, sidecar_path, stamp_of

        files = self._sorted_files()
        config = self._template.options.config
        indexes: list[RecordIndex | None] = []
        for path in files:
            index = find_index(path, config=config)  # a damaged one raises CorruptIndexError
            if index is not None:
                index.check_fresh(stamp_of(path, config=config), path=sidecar_path(path), data_path=path)
            indexes.append(index)
        if self._counts is None:
            options = self._template.options
            self._counts = [
                len(index)
                if index is not None
                else sum(
                    1
                    for _ in open_records(
                        path,
                        options.compression_type,
                        verify_crc=options.verify_crc,
                        max_record_bytes=options.max_record_bytes,
                        max_decompression_ratio=options.max_decompression_ratio,
                        config=config,
                    )
                )
                for path, index in zip(files, indexes, strict=True)
            ]
        # An index only serves to seek when it agrees with the count in use.
        self._indexes = [
            index if index is not None and len(index) == count else None
            for index, count in zip(indexes, self._counts, strict=True)
        ]

    @property
    def record_counts(self) -> list[int] | None:
        """Records per file (in sorted file order) when known."""
        return None if self._counts is None else list(self._counts)

    def __len__(self) -> int:
        """Items this rank yields per epoch, over its ``num_workers`` DataLoader workers."""
        if self._counts is None:
            raise TypeError(
                "len() of a TFRecordIterableDataset needs the record counts: pass record_counts=, "
                "even_steps=True, or build it with from_tfds_dir()"
            )
        rank, world = self._rank()
        workers = max(self.num_workers, 1)
        readers = world * workers
        if self.even_steps:
            return workers * self._items(share(sum(self._counts), readers))
        files = self._sorted_files()
        if readers > len(files):
            raise TypeError("len() is unknown when files are split by byte range (fewer files than readers)")
        total = 0
        counts = dict(zip(files, self._counts, strict=True))
        for worker in range(workers):
            epoch_files, _ = self._epoch_files(self.epoch)
            mine = epoch_files[rank * workers + worker :: readers]
            total += self._items(sum(counts[path] for path in mine))
        return total

    def _items(self, records: int) -> int:
        if self.batch_size is None:
            return records
        full, rest = divmod(records, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    # resuming ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Where this reader is: resume right after the items it has handed out."""
        progress = self._progress
        if progress is None:
            if self._pending is not None:
                return dict(self._pending)
            return {"version": _STATE_VERSION, "epoch": self.epoch, "reader": None, "records": 0, "source": None}
        return {
            "version": _STATE_VERSION,
            "epoch": progress.epoch,
            "reader": list(progress.reader),
            "records": progress.records,
            "source": None if progress.source is None else progress.source.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Make the next iteration continue right after what ``state`` had handed out."""
        if state.get("version") != _STATE_VERSION or "records" not in state:
            raise ConfigError("load_state_dict: not a TFRecordIterableDataset state")
        self._pending = dict(state)
        self._progress = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_progress"] = None  # the live iteration stays in its process
        return state

    # iteration --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        pending, self._pending = self._pending, None
        reader = self.reader()
        epoch = self.epoch
        skip = 0
        source_state = None
        if pending is not None and pending.get("reader") is not None:
            if tuple(pending["reader"]) != reader:
                raise ConfigError(
                    f"load_state_dict: the state is reader {pending['reader'][0]} of {pending['reader'][1]}, "
                    f"this is reader {reader[0]} of {reader[1]} (same world size and num_workers needed)"
                )
            epoch = int(pending["epoch"])
            skip = int(pending["records"])
            source_state = pending.get("source")
        progress = _Progress(epoch, reader, skip)
        self._progress = progress
        records = self._records(epoch, reader, progress, source_state)
        if self.shuffle_buffer > 1:
            rng = random.Random(f"{self.seed}:{epoch}:{reader}")
            records = shuffled(records, self.shuffle_buffer, rng)
        if skip and source_state is None:
            # Replay this reader's deterministic stream up to where the state was taken.
            records = islice(records, skip, None)
        yield from self._emit(records, progress)

    def _records(
        self, epoch: int, reader: tuple[int, int], progress: _Progress, source_state: dict[str, Any] | None
    ) -> Iterator[bytes]:
        options = self._template.options
        files, _ = self._epoch_files(epoch)
        if self.even_steps:
            assert self._counts is not None
            assert self._indexes is not None
            _, order = self._epoch_files(epoch)
            counts = [self._counts[i] for i in order]
            indexes = [self._indexes[i] for i in order]
            runs = plan_runs(files, counts, reader[0], reader[1], indexes)
            for i, run in enumerate(runs):
                progress.locate = functools.partial(locate_in_parts, [_as_part(r) for r in runs[i::-1]], options)
                yield from iter_run(run, options)
            return
        parts = plan(files, reader[0], reader[1], compression_type=options.compression_type, config=options.config)
        if all(part.whole for part in parts):
            # Whole files: the prefetching, interleaving dataset does the reading, and its
            # position is the resumable state when no shuffle buffer holds records back.
            if not parts:
                return
            source = self._template.with_files([part.path for part in parts])
            if self.shuffle_buffer <= 1:
                if source_state is not None:
                    source.load_state_dict(source_state)
                progress.source = source
            progress.locate = source.locate
            yield from source
            return
        for i, part in enumerate(parts):
            # A record that fails to decode is looked for again in this part, then the earlier ones.
            progress.locate = functools.partial(locate_in_parts, parts[i::-1], options)
            yield from iter_assignment(part, options)

    def _emit(self, records: Iterator[bytes], progress: _Progress) -> Iterator[Any]:
        transform = self.transform
        if self.features is None and self.batch_size is None:
            for record in records:
                progress.records += 1
                yield record if transform is None else transform(record)
            return
        decode = decoder(self.features)
        if self.batch_size is None:
            for record in records:
                item = self._decoded(decode, record, progress.locate)
                progress.records += 1
                yield item if transform is None else transform(item)
            return
        while True:
            batch = list(islice(records, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            out = self._decoded(decode, batch, progress.locate)
            progress.records += len(batch)
            yield out if transform is None else transform(out)

    def _decoded(self, decode: Callable[[Any], Any], element: Any, locate: Locator) -> Any:
        """A record or a batch, decoded and as tensors when there are ``features``; a
        DecodeError names the record."""
        if self.features is None:
            return element
        try:
            return as_tensors(decode(element), ragged=self.ragged)
        except DecodeError as exc:
            error = located(exc, element, self.features, locate)
        raise error from error.__cause__


def _as_part(run: RecordRun) -> Assignment:
    """The part of a file a run covers, for locating a record in it again."""
    return Assignment(run.path, start=run.offset or 0)
