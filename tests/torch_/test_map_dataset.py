"""tfrecord_s3.torch.TFRecordMapDataset with DataLoader, samplers and workers; tensors as promised."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tfrecord_s3.records.framing import encode_frame

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from tfrecord_s3.torch import TFRecordIterableDataset, TFRecordMapDataset, collate  # noqa: E402

SPEC = {
    "id": tfr.FixedLenFeature([], "int64"),
    "score": tfr.FixedLenFeature([], "float32"),
    "name": tfr.FixedLenFeature([], "string"),
    "tokens": tfr.VarLenFeature("int64"),
}


def example(i: int) -> bytes:
    return tfr.encode_example(
        {
            "id": np.array([i], dtype=np.int64),
            "score": np.array([i / 2], dtype=np.float32),
            "name": [b"n%d" % i],
            "tokens": np.arange(i % 5, dtype=np.int64),
        }
    )


def write_examples(directory: Path, sizes: list[int]) -> list[str]:
    paths, i = [], 0
    for f, n in enumerate(sizes):
        path = directory / f"ex-{f}.tfrecord"
        path.write_bytes(b"".join(encode_frame(example(i + k)) for k in range(n)))
        i += n
        paths.append(str(path))
    return paths


def test_items_are_tensors_and_scalars_are_0d(tmp_path: Path) -> None:
    ds = TFRecordMapDataset(write_examples(tmp_path, [10]), features=SPEC)
    item = ds[7]
    assert isinstance(item["id"], torch.Tensor)
    assert item["id"].shape == ()
    assert item["id"].item() == 7
    assert item["score"].dtype == torch.float32
    assert item["score"].shape == ()
    assert item["name"] == b"n7"
    assert item["tokens"].tolist() == [0, 1]
    assert ds.__getitems__([7])[0]["id"].shape == ()


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_shuffle_sees_every_record_once(tmp_path: Path, workers: int) -> None:
    paths = write_examples(tmp_path, [23, 17, 40])
    ds = TFRecordMapDataset(paths, features=SPEC, transform=lambda item: {**item, "twice": item["id"] * 2})
    loader = DataLoader(
        ds,
        batch_size=8,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
        multiprocessing_context="fork" if workers else None,
    )
    ids: list[int] = []
    for batch in loader:
        assert batch["id"].dim() == 1
        assert torch.equal(batch["twice"], batch["id"] * 2)
        assert batch["tokens_lengths"].tolist() == [i % 5 for i in batch["id"].tolist()]
        for row, length in zip(batch["tokens"], batch["tokens_lengths"], strict=True):
            assert row[:length].tolist() == list(range(length))
        assert batch["name"] == [b"n%d" % i for i in batch["id"].tolist()]
        ids.extend(batch["id"].tolist())
    assert sorted(ids) == list(range(80))
    assert ids != sorted(ids)


def test_distributed_sampler_two_ranks_two_workers_exactly_once(tmp_path: Path) -> None:
    paths = write_examples(tmp_path, [30, 25, 45])
    seen: Counter[int] = Counter()
    per_rank = []
    for rank in range(2):
        ds = TFRecordMapDataset(paths, features=SPEC)
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        loader = DataLoader(
            ds, batch_size=6, sampler=sampler, num_workers=2, collate_fn=collate, multiprocessing_context="fork"
        )
        ids = [i for batch in loader for i in batch["id"].tolist()]
        per_rank.append(len(ids))
        seen.update(ids)
    assert per_rank == [50, 50]
    assert seen == Counter(range(100))


def test_raw_records_without_features(tmp_path: Path) -> None:
    paths = write_examples(tmp_path, [5])
    ds = TFRecordMapDataset(paths)
    assert ds[2] == example(2)
    assert list(DataLoader(ds, batch_size=2)) == [[example(0), example(1)], [example(2), example(3)], [example(4)]]


def test_collate_modes() -> None:
    samples = [{"v": torch.arange(n), "s": torch.tensor(n), "b": b"x"} for n in (1, 3, 2)]
    padded = collate(samples)
    assert padded["v"].tolist() == [[0, 0, 0], [0, 1, 2], [0, 1, 0]]
    assert padded["v_lengths"].tolist() == [1, 3, 2]
    assert padded["s"].tolist() == [1, 3, 2]
    assert padded["b"] == [b"x", b"x", b"x"]
    nested = partial(collate, ragged="nested")(samples)["v"]
    assert nested.is_nested
    assert [t.tolist() for t in nested.unbind()] == [[0], [0, 1, 2], [0, 1]]
    assert [t.tolist() for t in collate(samples, ragged="ragged")["v"]] == [[0], [0, 1, 2], [0, 1]]
    with pytest.raises(tfr.ConfigError):
        collate(samples, ragged="bogus")


def test_iterable_dataset_one_at_a_time_gives_0d_tensors(tmp_path: Path) -> None:
    paths = write_examples(tmp_path, [4])
    items = list(TFRecordIterableDataset(paths, features=SPEC))
    assert all(item["id"].shape == () for item in items)
    assert [item["id"].item() for item in items] == [0, 1, 2, 3]
    batch = next(iter(TFRecordIterableDataset(paths, features=SPEC, batch_size=4)))
    assert batch["id"].shape == (4,)


def test_dataloader_workers_over_s3(s3_env: S3Env, tmp_path: Path) -> None:
    urls = []
    for path in write_examples(tmp_path, [20, 12]):
        urls.append(s3_env.put(f"ex/{Path(path).name}", Path(path).read_bytes()))
    ds = TFRecordMapDataset(urls, features=SPEC)
    loader = DataLoader(
        ds, batch_size=5, shuffle=True, num_workers=2, collate_fn=collate, multiprocessing_context="fork"
    )
    ids = [i for batch in loader for i in batch["id"].tolist()]
    assert sorted(ids) == list(range(32))
