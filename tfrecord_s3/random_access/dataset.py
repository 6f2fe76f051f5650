"""TFRecordMapDataset: records by number (``len``, ``ds[i]``, ``ds.__getitems__(indices)``).

Framework-free; follows the sequence protocol Grain's ``RandomAccessDataSource`` and
PyTorch's map-style ``Dataset`` share. Each file needs an index: our sidecar found beside
it, one given per file (``index=``, any of the three formats), or one built by scanning.

A batch is fetched in few requests: its records are sorted per file, neighbours are merged
into one range when the bytes between them are few (``max_gap``), and the ranges are read
concurrently. Every frame in a range goes through the same parser and CRC checks as a
sequential read, and must sit exactly where the index says: anything else is an error,
never a wrong record.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset.files import resolve_filenames
from ..errors import ConfigError, StaleIndexError, TruncatedRecordError
from ..index import RecordIndex, build_index, find_index, read_index, refuse_compressed, sidecar_path, stamp_of
from ..index import write_index as _write_index
from ..records.framing import DEFAULT_MAX_RECORD_BYTES, FRAME_OVERHEAD, frames_in
from .rows import decode_rows
from .sources import Source, open_source
from .spans import Span, coalesce

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = ["TFRecordMapDataset"]

# Bytes between two wanted records worth reading rather than making a second request: a
# round trip to S3 costs far more than 256 KiB; a local pread little more than a page cache hit.
S3_MAX_GAP = 256 * 1024
LOCAL_MAX_GAP = 16 * 1024
DEFAULT_MAX_SPAN = 16 * 1024 * 1024
DEFAULT_CONCURRENCY = 8
_FEW = 16


class TFRecordMapDataset:
    """Uncompressed TFRecord files (local or ``s3://``) as a sequence of records.

    ``filenames``: a path, a glob or a list of both. ``index``: None (our sidecar
    ``<file>.tfrecord-s3.idx`` beside each file, or a scan of the file when there is none;
    ``save_index=True`` writes what the scan found) or a list with one index path per file,
    in our format or DALI's / PyPI tfrecord's ``tfrecord2idx`` text format.

    Without ``features`` an item is the record's ``bytes``; with a feature spec, the dict
    ``parse_example`` gives. ``transform`` is applied to each item last.
    ``max_gap``: bytes between two wanted records below which one range holds both (None:
    256 KiB on S3, 16 KiB locally);
    ``max_span``: the largest range merged; ``max_concurrency``: ranges fetched at once.

    Raises StaleIndexError when a file no longer matches its index, CorruptIndexError for a
    damaged index, ConfigError for a compressed file (a record has no byte offset in it).
    """

    def __init__(
        self,
        filenames: str | Iterable[str],
        *,
        features: Mapping[str, Any] | None = None,
        index: Sequence[str] | None = None,
        transform: Callable[[Any], Any] | None = None,
        compression_type: str | None = "auto",
        verify_crc: bool = True,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        save_index: bool = False,
        max_gap: int | None = None,
        max_span: int = DEFAULT_MAX_SPAN,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        config: S3Config | None = None,
    ) -> None:
        if (max_gap is not None and max_gap < 0) or max_span < 1 or max_concurrency < 1:
            raise ConfigError("max_gap must be >= 0, max_span and max_concurrency >= 1")
        files = resolve_filenames(filenames, config=config)
        if index is not None:
            index = [index] if isinstance(index, str) else list(index)
            if len(index) != len(files):
                raise ConfigError(f"index: {len(index)} index paths for {len(files)} files (one per file)")
        for path in files:
            refuse_compressed(path, compression_type)
        self.files = files
        self.features = features
        self.transform = transform
        self.verify_crc = verify_crc
        self.max_record_bytes = max_record_bytes
        self.max_gap = max_gap
        self.max_span = max_span
        self.max_concurrency = max_concurrency
        self.config = config
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = -1
        given = index
        loaded = self._map(lambda i: self._load(i, given[i] if given else None, save_index), range(len(files)))
        self._sources: list[Source] = [open_source(path, idx, where, config) for path, (idx, where) in loaded]
        counts = np.array([len(src.index) for src in self._sources], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._starts_list: list[int] = self._starts.tolist()
        self._ends = [src.index.ends() for src in self._sources]

    @classmethod
    def from_tfds_dir(cls, path: str, split: str = "train", **kwargs: Any) -> Any:
        """The shards of ``split`` in a TensorFlow Datasets directory (local or ``s3://``);
        each shard's index must agree with the record count ``dataset_info.json`` gives."""
        from ..tfds import read_tfds_split

        info = read_tfds_split(path, split, config=kwargs.get("config"))
        dataset = cls(info.files, **kwargs)
        for source, count in zip(dataset._sources, info.counts, strict=True):
            if len(source.index) != count:
                raise StaleIndexError(
                    f"{source.index_path}: {len(source.index)} records indexed, {path}/dataset_info.json says {count}",
                    path=source.index_path,
                    data_path=source.path,
                )
        return dataset

    # the index of each file -------------------------------------------------------

    def _load(self, i: int, given: str | None, save: bool) -> tuple[str, tuple[RecordIndex, str]]:
        path = self.files[i]
        if given is not None:
            stamp = stamp_of(path, config=self.config)
            index = read_index(given, data_size=stamp.size, config=self.config)
            index.check_fresh(stamp, path=given, data_path=path)
            return path, (index, given)
        beside = sidecar_path(path)
        found = find_index(path, config=self.config)
        if found is not None:
            found.check_fresh(stamp_of(path, config=self.config), path=beside, data_path=path)
            return path, (found, beside)
        built = build_index(
            path,
            compression_type="",
            verify_crc=self.verify_crc,
            max_record_bytes=self.max_record_bytes,
            config=self.config,
        )
        if save:
            _write_index(built, beside, config=self.config)
        return path, (built, beside)

    # the sequence protocol ----------------------------------------------------------

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> Any:
        """Item ``index`` (negative counts from the end); IndexError when out of range."""
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """Items at ``indices`` (any order, repeats allowed), fetched in few ranged reads."""
        wanted = self._locate(indices)
        records = self._fetch(wanted)
        items: list[Any] = records
        if self.features is not None:
            where = [(self.files[f], int(self._sources[f].index.offsets[r])) for f, r in wanted]
            items = decode_rows(records, self.features, where)
        return self._finish(items)

    def _finish(self, items: list[Any]) -> list[Any]:
        """The last step of every item: ``transform`` (subclasses convert first)."""
        if self.transform is not None:
            items = [self.transform(item) for item in items]
        return items

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, len(self), 256):
            yield from self.__getitems__(range(start, min(start + 256, len(self))))

    def records(self, indices: Sequence[int]) -> list[bytes]:
        """The raw records at ``indices``, in that order (no decoding, no transform)."""
        return self._fetch(self._locate(indices))

    def _fetch(self, wanted: list[tuple[int, int]]) -> list[bytes]:
        by_file: dict[int, list[int]] = {}
        for file, record in wanted:
            by_file.setdefault(file, []).append(record)
        spans: list[Span] = []
        for file, records in by_file.items():
            source = self._sources[file]
            gap = self.max_gap if self.max_gap is not None else S3_MAX_GAP if source.remote else LOCAL_MAX_GAP
            spans.extend(
                coalesce(
                    file,
                    sorted(set(records)),
                    source.index.offsets,
                    self._ends[file],
                    max_gap=gap,
                    max_span=self.max_span,
                )
            )
        # Remote ranges are fetched concurrently (latency); local ones in this thread, where
        # a pread costs less than a hand-off to another thread.
        remote = [span for span in spans if self._sources[span.file].remote]
        local = [span for span in spans if not self._sources[span.file].remote]
        fetched: dict[tuple[int, int], bytes] = {}
        for group, results in ((remote, self._map(self._read_span, remote)), (local, map(self._read_span, local))):
            for span, records_in_span in zip(group, results, strict=True):
                for k, record in enumerate(records_in_span):
                    fetched[span.file, span.first + k] = record
        return [fetched[key] for key in wanted]

    def locate(self, index: int) -> tuple[str, int]:
        """(file path, byte offset of the record's header) of item ``index``."""
        file, record = self._locate([index])[0]
        return self.files[file], int(self._sources[file].index.offsets[record])

    def close(self) -> None:
        """Close open files and stop the fetching threads (reopened on next use)."""
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.shutdown(wait=True)
        for source in self._sources:
            source.close()

    def __enter__(self) -> TFRecordMapDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        state["_pool_pid"] = -1
        return state

    # internals --------------------------------------------------------------------

    def _locate(self, indices: Sequence[int]) -> list[tuple[int, int]]:
        n = len(self)
        if len(indices) <= _FEW:  # numpy's per-call cost is more than the work for a few
            starts = self._starts_list
            out = []
            for i in indices:
                i = int(i)
                if not -n <= i < n:
                    raise IndexError(f"index {i} out of range for {n} records")
                if i < 0:
                    i += n
                file = bisect.bisect_right(starts, i) - 1
                out.append((file, i - starts[file]))
            return out
        wanted = np.array([int(i) for i in indices], dtype=np.int64)
        bad = np.flatnonzero((wanted < -n) | (wanted >= n))
        if len(bad):
            raise IndexError(f"index {int(wanted[bad[0]])} out of range for {n} records")
        wanted = np.where(wanted < 0, wanted + n, wanted)
        files = np.searchsorted(self._starts, wanted, side="right") - 1
        locals_ = wanted - self._starts[files]
        return list(zip(files.tolist(), locals_.tolist(), strict=True))

    def _read_span(self, span: Span) -> list[bytes]:
        """The records ``span.first .. span.last`` of one file, checked against its index."""
        source = self._sources[span.file]
        data = source.read(span.start, span.end)
        try:
            records = frames_in(
                data,
                path=source.path,
                verify_crc=self.verify_crc,
                max_record_bytes=self.max_record_bytes,
                start_offset=span.start,
            )
        except TruncatedRecordError as exc:
            # The span ends where the index says a record ends: a frame running past it
            # means the index does not describe this file.
            raise self._misplaced(source, span.first, exc.offset or span.start) from exc
        offsets = source.index.offsets
        offset = span.start
        for k, record in enumerate(records):
            if span.first + k > span.last or int(offsets[span.first + k]) != offset:
                raise self._misplaced(source, span.first + k, offset)
            offset += len(record) + FRAME_OVERHEAD
        if len(records) != span.last - span.first + 1:  # pragma: no cover - the frames cover the span
            raise self._misplaced(source, span.first + len(records), offset)
        return records

    def _misplaced(self, source: Source, number: int, offset: int) -> StaleIndexError:
        return StaleIndexError(
            f"{source.index_path}: stale index for {source.path}: the frames at byte {offset} do not match "
            f"record {number} of the index; rebuild it with `tfrecord-s3 index {source.path}`",
            path=source.index_path,
            data_path=source.path,
        )

    def _map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="tfrecord-s3-ranges")
            self._pool_pid = os.getpid()
        return list(self._pool.map(fn, items))
