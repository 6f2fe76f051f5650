"""A DecodeError raised inside a dataset's parse_examples names the file and the failing
record's byte offset (not the batch's), however the records reached the decoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.decode import FixedLenFeature
from tfrecord_s3.encode import encode_example
from tfrecord_s3.records.framing import FRAME_OVERHEAD

SPEC = {"x": FixedLenFeature([1], "int64")}
GARBAGE = b"\xff\xff not an Example"
RECORDS = 3000  # several chunks of the prefetcher per file


def write_files(directory: Path, bad: tuple[int, int]) -> tuple[list[str], int]:
    """Two files of Examples, one record of ``bad`` = (file, index) garbage; returns the
    paths and that record's byte offset, counted here from the frame sizes."""
    paths, bad_offset = [], -1
    for f in range(2):
        path = str(directory / f"part-{f}.tfrecord")
        offset = 0
        with tfr.TFRecordWriter(path) as writer:
            for i in range(RECORDS):
                data = GARBAGE if (f, i) == bad else encode_example({"x": np.array([i], np.int64)})
                if (f, i) == bad:
                    bad_offset = offset
                writer.write(data)
                offset += len(data) + FRAME_OVERHEAD
        paths.append(path)
    return paths, bad_offset


PIPELINES: dict[str, Callable[[list[str]], tfr.Dataset]] = {
    "per record": lambda files: TFRecordDataset(files).parse_examples(SPEC),
    "batched": lambda files: TFRecordDataset(files).batch(64).parse_examples(SPEC),
    "interleaved": lambda files: (
        TFRecordDataset(files, num_parallel_reads=2, block_length=3).batch(50).parse_examples(SPEC)
    ),
    "shuffled": lambda files: TFRecordDataset(files).shuffle(200, seed=1).batch(32).parse_examples(SPEC),
    "decode then batch": lambda files: TFRecordDataset(files).parse_examples(SPEC).batch(16),
}


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
@pytest.mark.parametrize("bad", [(1, 2500), (0, 0), (1, RECORDS - 1)])
def test_decode_error_names_file_and_record_offset(tmp_path: Path, pipeline: str, bad: tuple[int, int]) -> None:
    files, offset = write_files(tmp_path, bad)
    with pytest.raises(tfr.DecodeError) as caught:
        for _ in PIPELINES[pipeline](files):
            pass
    error = caught.value
    assert (error.path, error.offset) == (files[bad[0]], offset)
    assert str(error).startswith(f"Name: {files[bad[0]]} at byte {offset}, Could not parse example input")


def test_a_value_that_does_not_fit_the_spec_is_located_too(tmp_path: Path) -> None:
    path = str(tmp_path / "wrong.tfrecord")
    offset = 0
    with tfr.TFRecordWriter(path) as writer:
        for i in range(10):
            data = encode_example({"x": np.array([i, i], np.int64) if i == 7 else np.array([i], np.int64)})
            if i == 7:
                bad_offset = offset
            writer.write(data)
            offset += len(data) + FRAME_OVERHEAD
    with pytest.raises(tfr.DecodeError, match="values != expected") as caught:
        list(TFRecordDataset(path).batch(4).parse_examples(SPEC))
    assert (caught.value.path, caught.value.offset, caught.value.feature) == (path, bad_offset, "x")
    assert f"{path} at byte {bad_offset}" in str(caught.value)


def test_a_record_shuffled_out_of_reach_says_its_place_is_lost(tmp_path: Path) -> None:
    # The prefetcher keeps about two chunks (1024 records each) per open file: a buffer of
    # 9000 of 10000 records holds the bad one far longer than that.
    path = str(tmp_path / "big.tfrecord")
    with tfr.TFRecordWriter(path) as writer:
        for i in range(10_000):
            writer.write(GARBAGE if i == 5 else encode_example({"x": np.array([i], np.int64)}))
    dataset = TFRecordDataset(path).shuffle(9000, seed=3).parse_examples(SPEC)
    with pytest.raises(tfr.DecodeError) as caught:
        for _ in dataset:
            pass
    assert caught.value.path is None
    assert str(caught.value).endswith(
        "(the record's file and offset are no longer known: it was read too long before it was decoded, "
        "e.g. through a shuffle buffer)"
    )
