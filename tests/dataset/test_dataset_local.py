"""TFRecordDataset on local files: exactly-once, order, resumption, shutdown, errors."""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests import golden
from tests.waiting import wait_until
from tfrecord_s3.dataset import TFRecordDataset

FILES = 5


def record(f: int, i: int) -> bytes:
    return f"file{f}:rec{i}:".encode() + bytes([i % 251]) * (i % 50)


@pytest.fixture
def shards(tmp_path: Path) -> tuple[list[str], list[list[bytes]]]:
    paths, contents = [], []
    for f in range(FILES):
        path = str(tmp_path / f"part-{f:03d}.tfrecord")
        recs = [record(f, i) for i in range(300 + 41 * f)]
        with tfr.TFRecordWriter(path) as writer:
            for r in recs:
                writer.write(r)
        paths.append(path)
        contents.append(recs)
    return paths, contents


def expected_interleave(contents: list[list[bytes]], cycle: int, block: int) -> list[bytes]:
    """TensorFlow's deterministic interleave (InterleaveDatasetOp's loop), as the oracle."""
    queue = [list(recs) for recs in contents]
    slots: list[list[bytes] | None] = [None] * cycle
    out: list[bytes] = []
    cur = taken = 0
    while queue or any(s is not None for s in slots):
        slot = slots[cur]
        if slot is not None and slot:
            out.append(slot.pop(0))
            taken += 1
            if taken == block:
                cur, taken = (cur + 1) % cycle, 0
        elif slot is not None:  # the file ended: free its place, move on
            slots[cur] = None
            cur, taken = (cur + 1) % cycle, 0
        elif queue:
            slots[cur] = queue.pop(0)
        else:
            cur, taken = (cur + 1) % cycle, 0
    return out


def new_threads_left(before: set[threading.Thread], timeout: float = 2.0) -> int:
    """How many threads started since ``before`` are still alive after up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(set(threading.enumerate()) - before)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("parallel", [None, 1, 2, 3, 8])
@pytest.mark.parametrize("deterministic", [True, False])
def test_every_record_exactly_once(
    shards: tuple[list[str], list[list[bytes]]], parallel: int | None, deterministic: bool
) -> None:
    paths, contents = shards
    got = list(TFRecordDataset(paths, num_parallel_reads=parallel, deterministic=deterministic))
    assert Counter(got) == Counter(r for recs in contents for r in recs)
    assert len(got) == sum(map(len, contents))


@pytest.mark.parametrize(("parallel", "block"), [(None, 1), (2, 1), (3, 4), (8, 2)])
def test_deterministic_order_is_tensorflows_interleave(
    shards: tuple[list[str], list[list[bytes]]], parallel: int | None, block: int
) -> None:
    paths, contents = shards
    ds = TFRecordDataset(paths, num_parallel_reads=parallel, block_length=block)
    first = list(ds)
    assert first == list(ds)
    assert first == expected_interleave(contents, parallel or 1, block if parallel else 1 << 40)


def test_glob_is_expanded_and_sorted(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, contents = shards
    pattern = str(Path(paths[0]).parent / "part-*.tfrecord")
    ds = TFRecordDataset(pattern)
    assert ds.files == sorted(paths)
    assert list(ds) == [r for recs in contents for r in recs]


def test_glob_matching_nothing_names_the_pattern(tmp_path: Path) -> None:
    with pytest.raises(tfr.ObjectNotFoundError, match="nothing-here"):
        list(TFRecordDataset(str(tmp_path / "nothing-here-*.tfrecord")))


@pytest.mark.parametrize("parallel", [None, 3])
@pytest.mark.parametrize("k", [0, 1, 299, 777])
def test_state_dict_resumes_right_after_record_k(
    shards: tuple[list[str], list[list[bytes]]], parallel: int | None, k: int
) -> None:
    paths, _ = shards
    full = list(TFRecordDataset(paths, num_parallel_reads=parallel))
    ds = TFRecordDataset(paths, num_parallel_reads=parallel)
    it = iter(ds)
    head = [next(it) for _ in range(k)]
    state = ds.state_dict()
    it.close()  # type: ignore[attr-defined]
    resumed = TFRecordDataset(paths, num_parallel_reads=parallel)
    resumed.load_state_dict(state)
    assert head + list(resumed) == full


def test_state_survives_a_pipeline_with_shuffle_batch_repeat(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, _ = shards

    def pipeline() -> tfr.Dataset:
        return TFRecordDataset(paths, num_parallel_reads=2).shuffle(64, seed=7).repeat(2).batch(10).skip(3)

    full = list(pipeline())
    ds = pipeline()
    it = iter(ds)
    head = [next(it) for _ in range(100)]
    state = pickle.loads(pickle.dumps(ds.state_dict()))  # as torch.save would store it
    del it
    resumed = pipeline()
    resumed.load_state_dict(state)
    assert head + list(resumed) == full


def test_state_after_the_loop_ends_is_kept(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, _ = shards
    ds = TFRecordDataset(paths)
    for i, _ in enumerate(ds):
        if i == 9:
            break
    resumed = TFRecordDataset(paths)
    resumed.load_state_dict(ds.state_dict())
    assert list(resumed) == list(TFRecordDataset(paths))[10:]


def test_state_of_another_file_list_is_refused(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, _ = shards
    ds = TFRecordDataset(paths)
    next(iter(ds))
    other = TFRecordDataset(paths[:2])
    other.load_state_dict(ds.state_dict())
    with pytest.raises(tfr.ConfigError, match="different list of files"):
        list(other)


@pytest.mark.parametrize("parallel", [None, 4])
def test_breaking_early_leaves_no_thread_and_no_file_open(
    shards: tuple[list[str], list[list[bytes]]], parallel: int | None
) -> None:
    paths, _ = shards
    threads, fds = set(threading.enumerate()), open_fds()
    for i, _ in enumerate(TFRecordDataset(paths, num_parallel_reads=parallel, buffer_size=64)):
        if i == 10:
            break
    assert new_threads_left(threads) == 0
    assert open_fds() == fds


def test_an_exception_in_the_consumer_closes_everything(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, _ = shards
    threads = set(threading.enumerate())
    with pytest.raises(KeyError):
        for _ in TFRecordDataset(paths, num_parallel_reads=3):
            raise KeyError("consumer failed")
    assert new_threads_left(threads) == 0


def test_error_in_one_file_comes_after_its_earlier_records(
    tmp_path: Path, shards: tuple[list[str], list[list[bytes]]]
) -> None:
    paths, contents = shards
    bad = golden.write_corrupted("corrupt_data_bitflip.tfrecord", tmp_path)
    base = list(tfr.tf_record_iterator(str(golden.path_of("raw_records.tfrecord"))))
    got: list[bytes] = []
    with pytest.raises(tfr.CorruptRecordError) as caught:
        for r in TFRecordDataset([paths[0], str(bad)]):
            got.append(r)
    assert got == contents[0] + base[:8]
    assert caught.value.path == str(bad)
    assert caught.value.offset == 4253


def test_skip_record_drops_only_the_bad_record_and_counts_it(tmp_path: Path) -> None:
    bad = golden.write_corrupted("corrupt_data_bitflip.tfrecord", tmp_path)
    base = list(tfr.tf_record_iterator(str(golden.path_of("raw_records.tfrecord"))))
    ds = TFRecordDataset(str(bad), on_corrupt="skip_record")
    assert list(ds) == base[:8] + base[9:]
    assert ds.stats.skipped_records == 1
    # the position accounts for the skipped frame: resuming after record 8 gives 9..end
    ds2 = TFRecordDataset(str(bad), on_corrupt="skip_record")
    it = iter(ds2)
    [next(it) for _ in range(9)]
    state = ds2.state_dict()
    ds3 = TFRecordDataset(str(bad), on_corrupt="skip_record")
    ds3.load_state_dict(state)
    assert list(ds3) == base[10:]


def test_skip_record_still_raises_when_the_frame_boundary_is_lost(tmp_path: Path) -> None:
    bad = golden.write_corrupted("corrupt_length_bitflip.tfrecord", tmp_path)
    with pytest.raises(tfr.CorruptRecordError):
        list(TFRecordDataset(str(bad), on_corrupt="skip_record"))


def test_skip_file_drops_the_rest_of_the_file_and_counts_it(
    tmp_path: Path, shards: tuple[list[str], list[list[bytes]]]
) -> None:
    paths, contents = shards
    bad = golden.write_corrupted("truncated_in_header.tfrecord", tmp_path)
    base = list(tfr.tf_record_iterator(str(golden.path_of("raw_records.tfrecord"))))
    ds = TFRecordDataset([str(bad), paths[1]], on_corrupt="skip_file")
    assert list(ds) == base[:8] + contents[1]
    assert ds.stats.skipped_files == 1


def test_transformations(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, contents = shards
    flat = [r for recs in contents for r in recs]
    ds = TFRecordDataset(paths)
    assert list(ds.map(len)) == [len(r) for r in flat]
    assert list(ds.take(5)) == flat[:5]
    assert list(ds.skip(len(flat) - 3)) == flat[-3:]
    assert list(ds.shard(3, 1)) == flat[1::3]
    assert list(ds.repeat(2)) == flat + flat
    batches = list(ds.batch(100))
    assert [len(b) for b in batches] == [100] * (len(flat) // 100) + [len(flat) % 100]
    assert [r for b in batches for r in b] == flat
    assert all(len(b) == 100 for b in ds.batch(100, drop_remainder=True))
    arrays = list(ds.map(lambda r: np.frombuffer(r[:4], dtype=np.uint8)).batch(8).take(1))
    assert arrays[0].shape == (8, 4)


def test_shuffle_is_reproducible_and_a_permutation(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, contents = shards
    flat = [r for recs in contents for r in recs]
    a = list(TFRecordDataset(paths).shuffle(100, seed=3))
    b = list(TFRecordDataset(paths).shuffle(100, seed=3))
    c = list(TFRecordDataset(paths).shuffle(100, seed=4))
    assert a == b
    assert a != c
    assert a != flat
    assert sorted(a) == sorted(flat)
    epochs = list(TFRecordDataset(paths).shuffle(100, seed=3).repeat(2))
    assert epochs[: len(flat)] == a
    assert epochs[len(flat) :] != a  # each epoch reshuffles


def test_memory_stays_within_the_cap(tmp_path: Path) -> None:
    # 4 files x 8 MiB read with a 1 MiB cap: the queues never hold more than the cap plus
    # one chunk per file, whatever the consumer does.
    paths = []
    for f in range(4):
        path = str(tmp_path / f"big{f}.tfrecord")
        with tfr.TFRecordWriter(path) as writer:
            for _ in range(128):
                writer.write(os.urandom(64 * 1024))
        paths.append(path)
    ds = TFRecordDataset(paths, num_parallel_reads=4, max_bytes_in_flight=1 << 20)
    it = iter(ds)
    next(it)
    source = ds._box.top
    record = 64 * 1024 + 16

    def feeds() -> list[Any]:
        return [s.feed for s in source._slots if s is not None]  # type: ignore[union-attr]

    def readers_ran_ahead_as_far_as_they_may() -> bool:
        # Each reader's queue is within one hand-off chunk (plus a record) of its share.
        found = feeds()
        return len(found) == 4 and all(f._bytes > f._cap - f._chunk_bytes - record for f in found)

    assert wait_until(readers_ran_ahead_as_far_as_they_may)
    queued = sum(f._bytes for f in feeds())
    assert queued <= (1 << 20) + 4 * record * 2
    assert sum(1 for _ in it) == 4 * 128 - 1


def test_bad_arguments_raise_config_error(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, _ = shards
    with pytest.raises(tfr.ConfigError):
        TFRecordDataset(paths, on_corrupt="ignore")
    with pytest.raises(tfr.ConfigError):
        TFRecordDataset(paths, num_parallel_reads=0)
    with pytest.raises(tfr.ConfigError):
        TFRecordDataset(paths, compression_type="LZMA")
    with pytest.raises(tfr.ConfigError):
        TFRecordDataset(paths).shard(2, 2)


def test_parse_examples_after_batch_matches_tensorflow() -> None:
    spec_json = golden.expected()["files"]["examples_none.tfrecord"]["parse_example"]
    expected = spec_json["results"]["fixed"]["per_record"]
    spec = {"id": tfr.FixedLenFeature([], "int64", -1), "label": tfr.FixedLenFeature([], "int64", -1)}
    ds = TFRecordDataset(str(golden.path_of("examples_none.tfrecord"))).batch(32).parse_examples(spec)
    batches = list(ds)
    ids = np.concatenate([b["id"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches])
    assert ids.tolist() == [r["id"] for r in expected]
    assert labels.tolist() == [r["label"] for r in expected]
    # before batch: one dict per record, stacked by batch
    per_record = next(
        iter(TFRecordDataset(str(golden.path_of("examples_none.tfrecord"))).parse_examples(spec).batch(5))
    )
    assert per_record["id"].tolist() == [r["id"] for r in expected[:5]]


@pytest.mark.parametrize(
    ("parallel", "block", "batch"), [(None, 1, 7), (2, 1, 64), (3, 1, 5), (4, 3, 100), (8, 1, 256)]
)
def test_batches_keep_the_interleave_order(
    shards: tuple[list[str], list[list[bytes]]], parallel: int | None, block: int, batch: int
) -> None:
    # batch() slices runs and whole rounds out of the prefetched chunks: same order as next().
    paths, contents = shards
    ds = TFRecordDataset(paths, num_parallel_reads=parallel, block_length=block).batch(batch)
    flat = [r for b in ds for r in b]
    assert flat == expected_interleave(contents, parallel or 1, block if parallel else 1 << 40)


def test_batches_around_skipped_records_keep_order_and_positions(tmp_path: Path) -> None:
    bad = str(golden.write_corrupted("corrupt_data_bitflip.tfrecord", tmp_path))
    good = str(golden.path_of("raw_records.tfrecord"))
    base = list(tfr.tf_record_iterator(good))
    damaged = base[:8] + base[9:]
    ds = TFRecordDataset([bad, good], num_parallel_reads=2, on_corrupt="skip_record").batch(3)
    flat = [r for b in ds for r in b]
    assert flat == expected_interleave([damaged, base], 2, 1)
    assert ds.stats.skipped_records == 1
    # a position taken between batches resumes exactly
    ds2 = TFRecordDataset([bad, good], num_parallel_reads=2, on_corrupt="skip_record").batch(3)
    it = iter(ds2)
    head = [r for _ in range(6) for r in next(it)]
    state = ds2.state_dict()
    ds3 = TFRecordDataset([bad, good], num_parallel_reads=2, on_corrupt="skip_record").batch(3)
    ds3.load_state_dict(state)
    assert head + [r for b in ds3 for r in b] == flat


def test_stats_rates_stop_the_clock_when_the_iteration_ends(shards: tuple[list[str], list[list[bytes]]]) -> None:
    paths, contents = shards
    ds = TFRecordDataset(paths)
    assert sum(1 for _ in ds) == sum(map(len, contents))
    first = ds.stats.as_dict()
    time.sleep(0.05)
    later = ds.stats.as_dict()
    assert first["records"] == later["records"] == sum(map(len, contents))
    assert first["seconds"] == later["seconds"] > 0
    assert first["records_per_s"] == later["records_per_s"]
