"""Killed mid-epoch and resumed with torchdata's StatefulDataLoader: no record missing, none repeated."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tests.torch_.test_torch_dataset import write_files

torch = pytest.importorskip("torch")
stateful = pytest.importorskip("torchdata.stateful_dataloader", reason="torchdata is in the test extras")
StatefulDataLoader = stateful.StatefulDataLoader
pytestmark = pytest.mark.filterwarnings("ignore:.set_vital. is deprecated")

from tfrecord_s3.torch import TFRecordIterableDataset  # noqa: E402


def loader_of(ds: TFRecordIterableDataset, workers: int) -> object:
    return StatefulDataLoader(
        ds, batch_size=None, num_workers=workers, multiprocessing_context="fork" if workers else None
    )


def flat(batches: list[list[bytes]]) -> list[bytes]:
    return [record for batch in batches for record in batch]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle_buffer", [0, 50])
def test_kill_and_resume_at_several_points(tmp_path: Path, workers: int, shuffle_buffer: int) -> None:
    paths, everything = write_files(tmp_path, [40, 31, 52, 27, 45, 33])

    def dataset() -> TFRecordIterableDataset:
        ds = TFRecordIterableDataset(paths, batch_size=4, shuffle_files=True, shuffle_buffer=shuffle_buffer, seed=5)
        ds.set_epoch(2)
        return ds

    reference = list(loader_of(dataset(), workers))  # type: ignore[call-overload]
    assert Counter(flat(reference)) == Counter(everything)
    for stop in (1, len(reference) // 2, len(reference) - 1):
        first = loader_of(dataset(), workers)
        seen = []
        for batch in first:  # type: ignore[attr-defined]
            seen.append(batch)
            if len(seen) == stop:
                break
        state = first.state_dict()  # type: ignore[attr-defined]
        del first  # the job dies here
        resumed = loader_of(dataset(), workers)
        resumed.load_state_dict(state)  # type: ignore[attr-defined]
        rest = list(resumed)  # type: ignore[call-overload]
        assert Counter(flat(seen + rest)) == Counter(everything), f"stopped after {stop} batches"
        assert seen + rest == reference


def test_state_is_small_with_a_big_shuffle_buffer(tmp_path: Path) -> None:
    paths, _ = write_files(tmp_path, [300, 300])
    ds = TFRecordIterableDataset(paths, shuffle_buffer=10_000, seed=1)
    it = iter(ds)
    for _ in range(10):
        next(it)
    state = ds.state_dict()
    assert state["records"] == 10
    assert len(repr(state)) < 200


def test_dataset_state_seeks_without_a_shuffle_buffer(tmp_path: Path) -> None:
    paths, everything = write_files(tmp_path, [30, 30])
    ds = TFRecordIterableDataset(paths)
    it = iter(ds)
    head = [next(it) for _ in range(35)]
    state = ds.state_dict()
    assert state["source"] is not None  # file positions, not a count to replay
    again = TFRecordIterableDataset(paths)
    again.load_state_dict(state)
    assert head + list(again) == everything


def test_state_from_another_layout_is_refused(tmp_path: Path) -> None:
    paths, _ = write_files(tmp_path, [10, 10])
    ds = TFRecordIterableDataset(paths, rank=0, world_size=2)
    next(iter(ds))
    state = ds.state_dict()
    other = TFRecordIterableDataset(paths, rank=1, world_size=2)
    other.load_state_dict(state)
    with pytest.raises(tfr.ConfigError, match="reader"):
        next(iter(other))
    with pytest.raises(tfr.ConfigError):
        other.load_state_dict({"nonsense": 1})
