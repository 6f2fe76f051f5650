"""What iterating starts and when: nothing before the first next(), everything joined after."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import tfrecord_s3 as tfr
from tfrecord_s3.dataset import TFRecordDataset


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tfrecord-s3 prefetch")]


def _files(tmp_path: Path, count: int) -> list[str]:
    paths = []
    for f in range(count):
        path = str(tmp_path / f"part-{f}.tfrecord")
        with tfr.TFRecordWriter(path) as writer:
            for i in range(20):
                writer.write(b"f%dr%d" % (f, i))
        paths.append(path)
    return paths


def test_iter_starts_no_thread_until_the_first_next(tmp_path: Path) -> None:
    ds = TFRecordDataset(_files(tmp_path, 3), num_parallel_reads=3).batch(4)
    it = iter(ds)
    assert _prefetch_threads() == []
    assert ds.state_dict() == {"version": 1, "stages": None}  # the start, before anything is opened
    assert next(it) == [b"f0r0", b"f1r0", b"f2r0", b"f0r1"]
    it.close()  # type: ignore[attr-defined]
    assert _prefetch_threads() == []


def test_an_iterator_dropped_before_its_first_next_leaves_nothing(tmp_path: Path) -> None:
    ds = TFRecordDataset(_files(tmp_path, 2), num_parallel_reads=2)
    for _ in range(5):
        iter(ds)
    gc.collect()
    assert _prefetch_threads() == []
    assert len(list(ds)) == 40


def test_a_state_taken_before_the_first_next_resumes_where_it_was_loaded(tmp_path: Path) -> None:
    paths = _files(tmp_path, 2)
    full = list(TFRecordDataset(paths, num_parallel_reads=2))
    ds = TFRecordDataset(paths, num_parallel_reads=2)
    it = iter(ds)
    head = [next(it) for _ in range(7)]
    state = ds.state_dict()
    it.close()  # type: ignore[attr-defined]
    resumed = TFRecordDataset(paths, num_parallel_reads=2)
    resumed.load_state_dict(state)
    it2 = iter(resumed)
    assert resumed.state_dict() == state  # not yet opened: still the loaded position
    assert head + list(it2) == full
