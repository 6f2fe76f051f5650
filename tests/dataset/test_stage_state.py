"""Every stage resumes from ``state_dict()`` with no element missing and none repeated, keeps
errors in order and joins its threads on close."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests import golden
from tests.dataset.test_dataset_local import new_threads_left
from tests.dataset.test_tf_semantics import plain
from tfrecord_s3 import Dataset

RANGE = Dataset.range


def resumed_after(make: Callable[[], Dataset], k: int) -> tuple[list[Any], list[Any]]:
    """(the first ``k`` elements of a pipeline, what a fresh one gives after loading the state
    saved there, pickled as torch.save would)."""
    ds = make()
    it = iter(ds)
    head = [plain(next(it)) for _ in range(k)]
    state = pickle.loads(pickle.dumps(ds.state_dict()))
    it.close()  # type: ignore[attr-defined]
    again = make()
    again.load_state_dict(state)
    return head, [plain(e) for e in again]


def assert_resumes_everywhere(make: Callable[[], Dataset], points: list[int] | None = None) -> None:
    full = [plain(e) for e in make()]
    for k in points if points is not None else range(len(full) + 1):
        head, rest = resumed_after(make, k)
        assert head + rest == full, f"resumed after {k}"


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    paths = []
    for f in range(3):
        path = str(tmp_path / f"part-{f}.tfrecord")
        with tfr.TFRecordWriter(path) as writer:
            for i in range(20 + 5 * f):
                writer.write(tfr.encode_example({"id": 100 * f + i, "v": np.arange(i % 4, dtype=np.int64)}))
        paths.append(path)
    return paths


SPEC = {"id": tfr.FixedLenFeature([], "int64"), "v": tfr.VarLenFeature("int64")}

PIPELINES: dict[str, Callable[[], Dataset]] = {
    "take(-1)": lambda: RANGE(12).take(-1),
    "skip(-1)": lambda: RANGE(12).skip(-1),
    "repeat(-1)": lambda: RANGE(5).repeat(-1).take(17),
    "repeat(-1) of a filter": lambda: RANGE(6).filter(lambda x: x > 3).repeat().take(7),
    "filter": lambda: RANGE(30).filter(lambda x: x % 3 != 1),
    "map": lambda: RANGE(20).map(lambda x: x * 2),
    "parallel map": lambda: RANGE(30).map(lambda x: x * 2, num_parallel_calls=3),
    "prefetch": lambda: RANGE(30).prefetch(4),
    "shuffle seeded": lambda: RANGE(30).shuffle(8, seed=11),
    "shuffle fixed": lambda: RANGE(30).shuffle(8, seed=11, reshuffle_each_iteration=False).repeat(2),
    "shuffle repeat": lambda: RANGE(15).shuffle(8, seed=2).repeat(3),
    "batch": lambda: RANGE(20).batch(3),
    "padded_batch": lambda: RANGE(1, 12).map(lambda x: np.arange(x % 5)).padded_batch(3, padding_values=-1),
    "unbatch": lambda: RANGE(20).batch(6).unbatch(),
    "sample": lambda: tfr.sample_from_datasets([RANGE(0, 10), RANGE(100, 115)], [0.3, 0.7], seed=5),
    "sample stop": lambda: tfr.sample_from_datasets([RANGE(0, 4), RANGE(100, 115)], seed=5, stop_on_empty_dataset=True),
    "choose": lambda: tfr.choose_from_datasets([RANGE(0, 5), RANGE(10, 20)], RANGE(2).repeat(8)),
    "choose no stop": lambda: tfr.choose_from_datasets(
        [RANGE(0, 3), RANGE(10, 20)], [0, 0, 0, 0, 1, 0, 1, 1], stop_on_empty_dataset=False
    ),
    "everything": lambda: (
        RANGE(40)
        .shuffle(10, seed=1)
        .map(lambda x: (x, x % 4), num_parallel_calls=2)
        .filter(lambda x, y: y != 3)
        .map(lambda x, y: np.full([y], x))
        .padded_batch(4)
        .unbatch()
        .prefetch(3)
        .repeat(2)
    ),
}


@pytest.mark.parametrize("name", list(PIPELINES))
def test_every_stage_resumes_after_every_element(name: str) -> None:
    assert_resumes_everywhere(PIPELINES[name])


def test_record_pipeline_resumes_after_every_batch(files: list[str]) -> None:
    def make() -> Dataset:
        return (
            tfr.TFRecordDataset(files, num_parallel_reads=2)
            .shuffle(16, seed=3)
            .map(lambda r: tfr.parse_single_example(r, SPEC), num_parallel_calls=2)
            .filter(lambda ex: int(ex["id"]) % 5 != 0)
            .padded_batch(4)
            .prefetch(2)
            .unbatch()
            .batch(3)
        )

    assert_resumes_everywhere(make)


def test_unseeded_shuffle_resumes_with_nothing_lost_or_repeated() -> None:
    for k in (0, 3, 11, 29):
        head, rest = resumed_after(lambda: RANGE(30).shuffle(10), k)
        assert sorted(head + rest) == list(range(30))


def test_a_state_saved_with_parallel_map_resumes_inline_and_back() -> None:
    full = list(range(0, 60, 2))
    for before, after in ((4, None), (None, 4)):
        ds = RANGE(30).map(lambda x: x * 2, num_parallel_calls=before)
        it = iter(ds)
        head = [next(it) for _ in range(7)]
        state = ds.state_dict()
        it.close()  # type: ignore[attr-defined]
        again = RANGE(30).map(lambda x: x * 2, num_parallel_calls=after)
        again.load_state_dict(state)
        assert head + list(again) == full


def test_parallel_map_error_comes_in_its_turn_and_the_element_is_retried_on_resume() -> None:
    def fragile(x: int) -> int:
        if x == 5:
            raise KeyError("element 5")
        return x

    ds = RANGE(20).map(fragile, num_parallel_calls=3)
    got: list[int] = []
    with pytest.raises(KeyError, match="element 5"):
        for x in ds:
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    fixed = RANGE(20).map(lambda x: x, num_parallel_calls=3)
    fixed.load_state_dict(ds.state_dict())
    assert list(fixed) == list(range(5, 20))


@pytest.mark.parametrize("stage", ["parallel map", "prefetch"])
def test_a_read_error_comes_after_the_records_before_it(tmp_path: Path, stage: str) -> None:
    bad = golden.write_corrupted("corrupt_data_bitflip.tfrecord", tmp_path)
    base = list(tfr.tf_record_iterator(str(golden.path_of("raw_records.tfrecord"))))
    ds = tfr.TFRecordDataset(str(bad))
    ds = ds.map(bytes, num_parallel_calls=4) if stage == "parallel map" else ds.prefetch(8)
    got: list[bytes] = []
    with pytest.raises(tfr.CorruptRecordError) as caught:
        for r in ds:
            got.append(r)
    assert got == base[:8]
    assert caught.value.offset == 4253


@pytest.mark.parametrize(
    "make",
    [
        lambda paths: tfr.TFRecordDataset(paths, num_parallel_reads=2).map(bytes, num_parallel_calls=3),
        lambda paths: tfr.TFRecordDataset(paths, num_parallel_reads=2).prefetch(2),
        lambda paths: tfr.TFRecordDataset(paths).prefetch(1).map(len, num_parallel_calls=2).prefetch(1),
        lambda paths: tfr.sample_from_datasets([tfr.TFRecordDataset(p).prefetch(2) for p in paths], seed=0),
    ],
    ids=["parallel map", "prefetch", "stacked", "sample"],
)
def test_leaving_early_joins_every_thread(files: list[str], make: Callable[[list[str]], Dataset]) -> None:
    threads = set(threading.enumerate())
    for i, _ in enumerate(make(files)):
        if i == 5:
            break
    assert new_threads_left(threads) == 0
    ds = make(files)
    assert sum(1 for _ in ds) == 75  # and to the end, everything exactly once
    assert new_threads_left(threads) == 0


def test_an_exception_in_the_consumer_joins_the_threads(files: list[str]) -> None:
    threads = set(threading.enumerate())
    with pytest.raises(KeyError):
        for _ in tfr.TFRecordDataset(files).map(bytes, num_parallel_calls=2).prefetch(2):
            raise KeyError("consumer failed")
    assert new_threads_left(threads) == 0


def test_prefetch_holds_at_most_its_buffer(files: list[str]) -> None:
    pulled: list[int] = []
    ready = threading.Condition()

    def note(x: int) -> int:
        with ready:
            pulled.append(x)
            ready.notify_all()
        return x

    ds = RANGE(1000).map(note).prefetch(5)
    it = iter(ds)
    assert next(it) == 0
    with ready:
        assert ready.wait_for(lambda: len(pulled) >= 6, timeout=30)
    state = ds.state_dict()  # taken while the thread waits for room: the queue is full
    assert len(pulled) == 6
    assert state["stages"]["pending"] == [1, 2, 3, 4, 5]
    it.close()  # type: ignore[attr-defined]


def test_stats_of_a_pipeline_count_the_records_read(files: list[str]) -> None:
    ds = tfr.TFRecordDataset(files).map(len, num_parallel_calls=2).prefetch(2).filter(lambda n: n > 0)
    assert sum(1 for _ in ds) == 75
    assert ds.stats.records == 75
    assert ds.stats.files_done == 3


def test_a_state_of_another_pipeline_is_refused() -> None:
    ds = RANGE(10).shuffle(4, seed=1)
    next(iter(ds))
    other = RANGE(10).prefetch(2)
    other.load_state_dict(ds.state_dict())
    with pytest.raises(tfr.ConfigError, match="expected a 'prefetch' stage"):
        list(other)
    mixed = tfr.sample_from_datasets([RANGE(3), RANGE(3)], seed=1)
    next(iter(mixed))
    three = tfr.sample_from_datasets([RANGE(3), RANGE(3), RANGE(3)], seed=1)
    three.load_state_dict(mixed.state_dict())
    with pytest.raises(tfr.ConfigError, match="mixes 2 inputs"):
        list(three)


def test_an_iteration_never_started_leaves_no_stage_thread() -> None:
    # (a generator closed before its first next never runs its cleanup: start threads lazily)
    threads = set(threading.enumerate())
    ds = RANGE(50).map(lambda x: x, num_parallel_calls=2).prefetch(3)
    it = iter(ds)
    assert [next(it) for _ in range(4)] == [0, 1, 2, 3]
    state = ds.state_dict()
    it.close()  # type: ignore[attr-defined]
    again = RANGE(50).map(lambda x: x, num_parallel_calls=2).prefetch(3)
    again.load_state_dict(state)
    unstarted = iter(again)
    assert again.state_dict() == state  # restored, nothing pulled yet
    unstarted.close()  # type: ignore[attr-defined]
    del unstarted
    assert not [t.name for t in set(threading.enumerate()) - threads if t.name.startswith("tfrecord-s3")]


@pytest.mark.parametrize("batch", [None, 7])
@pytest.mark.parametrize("parallel", [None, 3])
def test_stats_count_every_record_handed_out_by_every_path(
    files: list[str], batch: int | None, parallel: int | None
) -> None:
    # records one by one, runs sliced out of chunks, and whole rounds across files: one bookkeeping
    ds = tfr.TFRecordDataset(files, num_parallel_reads=parallel)
    pipeline = ds if batch is None else ds.batch(batch)
    handed = [r for e in pipeline for r in ([e] if batch is None else e)]
    sizes = [len(r) for f in files for r in tfr.tf_record_iterator(f)]
    assert (ds.stats.records, ds.stats.bytes) == (len(handed), sum(sizes)) == (75, sum(map(len, handed)))
    assert ds.stats.first_record_seconds is not None
    assert 0 < ds.stats.first_record_seconds <= ds.stats.elapsed()
