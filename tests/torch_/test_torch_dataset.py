"""TFRecordIterableDataset with DataLoader workers and ranks: every record exactly once."""

from __future__ import annotations

import gzip
import warnings
from collections import Counter
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tfrecord_s3.records.framing import encode_frame

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from tfrecord_s3.torch import TFRecordIterableDataset  # noqa: E402


def write_files(directory: Path, sizes: list[int], *, gz: bool = False) -> tuple[list[str], list[bytes]]:
    paths, everything = [], []
    for f, n in enumerate(sizes):
        recs = [f"f{f}-r{i}-".encode() + b"x" * (i % 97) for i in range(n)]
        path = directory / (f"part-{f}.tfrecord" + (".gz" if gz else ""))
        blob = b"".join(encode_frame(r) for r in recs)
        path.write_bytes(gzip.compress(blob) if gz else blob)
        paths.append(str(path))
        everything.extend(recs)
    return paths, everything


def read_all(ds: TFRecordIterableDataset, workers: int, context: str | None = None) -> list[bytes]:
    loader = DataLoader(ds, batch_size=None, num_workers=workers, multiprocessing_context=context if workers else None)
    return list(loader)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("world", [1, 2])
def test_workers_times_ranks_see_each_record_once(tmp_path: Path, workers: int, world: int) -> None:
    paths, everything = write_files(tmp_path, [50, 61, 72, 83, 94, 15, 26, 37])
    seen: list[bytes] = []
    for rank in range(world):
        ds = TFRecordIterableDataset(paths, rank=rank, world_size=world)
        seen.extend(read_all(ds, workers, "fork"))
    assert Counter(seen) == Counter(everything)


def test_spawned_workers(tmp_path: Path) -> None:
    paths, everything = write_files(tmp_path, [40, 41, 42, 43])
    seen = read_all(TFRecordIterableDataset(paths), 2, "spawn")
    assert Counter(seen) == Counter(everything)


@pytest.mark.parametrize("readers", [2, 3, 4, 7])
def test_fewer_files_than_readers_split_by_byte_range(tmp_path: Path, readers: int) -> None:
    paths, everything = write_files(tmp_path, [500, 3])
    seen: list[bytes] = []
    per_reader = []
    for rank in range(readers):
        got = list(TFRecordIterableDataset(paths, rank=rank, world_size=readers))
        per_reader.append(len(got))
        seen.extend(got)
    assert Counter(seen) == Counter(everything)
    assert min(per_reader[:-1]) > 0  # the work is really shared


def test_compressed_files_are_strided_with_a_warning(tmp_path: Path) -> None:
    paths, everything = write_files(tmp_path, [100], gz=True)
    seen: list[bytes] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for rank in range(3):
            seen.extend(TFRecordIterableDataset(paths, rank=rank, world_size=3, compression_type="auto"))
    assert Counter(seen) == Counter(everything)
    assert any("cannot be split by byte range" in str(w.message) for w in caught)


def test_set_epoch_reshuffles_reproducibly(tmp_path: Path) -> None:
    paths, everything = write_files(tmp_path, [30, 30, 30, 30])
    ds = TFRecordIterableDataset(paths, shuffle_files=True, shuffle_buffer=50, seed=5)
    first = list(ds)
    again = list(ds)
    ds.set_epoch(1)
    second = list(ds)
    assert first == again
    assert first != second
    assert sorted(first) == sorted(second) == sorted(everything)


def test_rank_is_decided_at_iteration_not_construction(tmp_path: Path) -> None:
    paths, _ = write_files(tmp_path, [10, 10])
    ds = TFRecordIterableDataset(paths)
    ds.rank, ds.world_size = 1, 2  # e.g. a process group that started after construction
    assert [a.path for a in ds.assignments()] == [paths[1]]


def test_errors_cross_the_worker_boundary_typed(tmp_path: Path) -> None:
    paths, _ = write_files(tmp_path, [20])
    blob = bytearray(Path(paths[0]).read_bytes())
    blob[30] ^= 1
    Path(paths[0]).write_bytes(bytes(blob))
    with pytest.raises(tfr.CorruptRecordError, match=r"part-0\.tfrecord"):
        read_all(TFRecordIterableDataset(paths), 1, "fork")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(tfr.ConfigError):
        TFRecordIterableDataset("x", rank=1)
    with pytest.raises(tfr.ConfigError):
        TFRecordIterableDataset("x", rank=2, world_size=2)
    with pytest.raises(tfr.ConfigError):
        TFRecordIterableDataset("x", on_corrupt="nope")


def test_features_give_dicts_of_tensors_batched_and_per_record() -> None:
    from tests import golden

    path = str(golden.path_of("examples_none.tfrecord"))
    spec = {"id": tfr.FixedLenFeature([], "int64", -1), "vec3": tfr.FixedLenFeature([3], "float32", [0.0, 0.0, 0.0])}
    expected = golden.expected()["files"]["examples_none.tfrecord"]["parse_example"]["results"]["fixed"]["per_record"]
    batches = list(DataLoader(TFRecordIterableDataset(path, features=spec, batch_size=64), batch_size=None))
    assert [b["id"].shape[0] for b in batches] == [64, 64, 64, 8]
    ids = torch.cat([b["id"] for b in batches])
    assert ids.dtype == torch.int64
    assert ids.tolist() == [r["id"] for r in expected]
    assert batches[0]["vec3"].shape == (64, 3)
    assert batches[0]["vec3"].dtype == torch.float32
    one = next(iter(TFRecordIterableDataset(path, features=spec)))
    assert one["id"].item() == expected[0]["id"]


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_set_epoch_reaches_persistent_workers(tmp_path: Path, context: str) -> None:
    paths, everything = write_files(tmp_path, [30, 31, 32, 33, 34, 35])
    ds = TFRecordIterableDataset(paths, shuffle_files=True, shuffle_buffer=50, seed=7)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True, multiprocessing_context=context)
    epochs = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        epochs.append(list(loader))
    for seen in epochs:
        assert Counter(seen) == Counter(everything)
    assert len({tuple(seen) for seen in epochs}) == 3  # each epoch its own order
    # The order of an epoch is the one a fresh worker gives for that epoch.
    fresh = TFRecordIterableDataset(paths, shuffle_files=True, shuffle_buffer=50, seed=7)
    fresh.set_epoch(2)
    assert Counter(list(DataLoader(fresh, batch_size=None, num_workers=2, multiprocessing_context=context))) == Counter(
        epochs[2]
    )
    assert sorted(epochs[2]) == sorted(everything)
