"""even_steps=True: every (rank, worker) gets the same number of batches, each record at most once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tests.torch_.test_torch_dataset import write_files
from tfrecord_s3.index import build_index, sidecar_path, write_index

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from tfrecord_s3.torch import TFRecordIterableDataset  # noqa: E402

SIZES = [41, 17, 60, 23]  # 141 records over 4 files


def batches_per_worker(ds: TFRecordIterableDataset, workers: int) -> tuple[list[int], list[bytes]]:
    """Batches each worker of this rank yielded (told apart by a transform run in the worker)."""
    loader = DataLoader(ds, batch_size=None, num_workers=workers, multiprocessing_context="fork" if workers else None)
    per_worker: Counter[int] = Counter()
    records: list[bytes] = []
    for worker, batch in loader:
        per_worker[worker] += 1
        records.extend(batch)
    return [per_worker[w] for w in range(max(workers, 1))], records


def tag_with_worker(batch: list[bytes]) -> tuple[int, list[bytes]]:
    info = torch.utils.data.get_worker_info()
    return (0 if info is None else info.id), batch


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("with_index", [False, True])
def test_three_ranks_over_four_files_get_equal_steps(tmp_path: Path, workers: int, with_index: bool) -> None:
    paths, everything = write_files(tmp_path, SIZES)
    if with_index:
        for p in paths:
            write_index(build_index(p), sidecar_path(p))
    steps: list[int] = []
    seen: list[bytes] = []
    for rank in range(3):
        ds = TFRecordIterableDataset(
            paths,
            batch_size=4,
            drop_last=True,
            rank=rank,
            world_size=3,
            even_steps=True,
            shuffle_files=True,
            shuffle_buffer=8,
            num_workers=workers,
            transform=tag_with_worker,
        )
        ds.set_epoch(1)
        per_worker, records = batches_per_worker(ds, workers)
        assert len(ds) == sum(per_worker)
        steps.extend(per_worker)
        seen.extend(records)
    readers = 3 * max(workers, 1)
    each = len(everything) // readers
    assert steps == [each // 4] * readers
    counts = Counter(seen)
    assert max(counts.values()) == 1
    assert set(counts) <= set(everything)
    assert len(seen) == readers * (each // 4) * 4


def test_without_even_steps_ranks_differ(tmp_path: Path) -> None:
    # The problem even_steps solves: whole files per rank give unequal step counts.
    paths, _ = write_files(tmp_path, SIZES)
    steps = [
        len(list(TFRecordIterableDataset(paths, batch_size=4, drop_last=True, rank=r, world_size=3))) for r in range(3)
    ]
    assert len(set(steps)) > 1


def test_record_counts_given_need_no_scan_and_give_len(tmp_path: Path) -> None:
    paths, everything = write_files(tmp_path, SIZES)
    ds = TFRecordIterableDataset(paths, record_counts=SIZES, batch_size=10)
    assert len(ds) == -(-sum(SIZES) // 10)  # one reader batches across file boundaries
    assert len(list(ds)) == len(ds)
    even = TFRecordIterableDataset(paths, record_counts=SIZES, even_steps=True, rank=0, world_size=2)
    assert len(even) == len(everything) // 2
    assert len(list(even)) == len(everything) // 2


def test_len_unknown_without_counts(tmp_path: Path) -> None:
    paths, _ = write_files(tmp_path, SIZES)
    with pytest.raises(TypeError, match="record counts"):
        len(TFRecordIterableDataset(paths))


def test_stale_counts_are_an_error_not_uneven_steps(tmp_path: Path) -> None:
    paths, _ = write_files(tmp_path, SIZES)
    ds = TFRecordIterableDataset(paths, record_counts=[n + 5 for n in SIZES], even_steps=True)
    with pytest.raises(tfr.ConfigError, match="stale"):
        list(ds)
