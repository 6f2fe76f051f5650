"""TFRecordIterableDataset(features=...): a DecodeError names the file and the failing
record's byte offset, in the main process and through DataLoader workers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tfrecord_s3.decode import FixedLenFeature
from tfrecord_s3.encode import encode_example
from tfrecord_s3.records.framing import FRAME_OVERHEAD

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from tfrecord_s3.torch import TFRecordIterableDataset  # noqa: E402

SPEC = {"x": FixedLenFeature([1], "int64")}


def write_file(path: Path, bad: int, n: int = 2000) -> int:
    """Examples with record ``bad`` garbage; returns that record's byte offset."""
    offset = bad_offset = 0
    with tfr.TFRecordWriter(str(path)) as writer:
        for i in range(n):
            data = b"\xff\xff junk" if i == bad else encode_example({"x": np.array([i], np.int64)})
            if i == bad:
                bad_offset = offset
            writer.write(data)
            offset += len(data) + FRAME_OVERHEAD
    return bad_offset


@pytest.mark.parametrize("batch_size", [None, 64, 7])
def test_decode_error_in_main_process_names_the_record(tmp_path: Path, batch_size: int | None) -> None:
    good, bad = tmp_path / "a.tfrecord", tmp_path / "b.tfrecord"
    write_file(good, bad=-1)
    offset = write_file(bad, bad=1999)  # the last record: in the final (partial) batch
    dataset = TFRecordIterableDataset([str(good), str(bad)], features=SPEC, batch_size=batch_size, shuffle_buffer=50)
    with pytest.raises(tfr.DecodeError) as caught:
        for _ in dataset:
            pass
    assert (caught.value.path, caught.value.offset) == (str(bad), offset)
    assert f"Name: {bad} at byte {offset}, Could not parse example input" in str(caught.value)


def test_decode_error_from_a_worker_keeps_the_location_in_its_message(tmp_path: Path) -> None:
    path = tmp_path / "w.tfrecord"
    offset = write_file(path, bad=1234)
    dataset = TFRecordIterableDataset(str(path), features=SPEC, batch_size=32)
    loader = DataLoader(dataset, batch_size=None, num_workers=1)
    with pytest.raises(tfr.DecodeError, match=f"{path} at byte {offset}, Could not parse example input"):
        for _ in loader:
            pass


@pytest.mark.parametrize("gz", [False, True])
def test_decode_error_in_a_split_file_names_the_record(tmp_path: Path, gz: bool) -> None:
    # One file, three readers: the file is cut into byte ranges (or, compressed, every third
    # record) and each reader finds the failing record again in its own part.
    import gzip

    path = tmp_path / "one.tfrecord"
    offset = write_file(path, bad=1500, n=2000)
    if gz:
        packed = tmp_path / "one.tfrecord.gz"
        packed.write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
        path = packed
    messages = []
    for rank in range(3):
        dataset = TFRecordIterableDataset(
            str(path), features=SPEC, batch_size=16, rank=rank, world_size=3, shuffle_buffer=20, compression_type="auto"
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # compressed: "cannot be split by byte range"
                for _ in dataset:
                    pass
        except tfr.DecodeError as exc:
            messages.append((exc.path, exc.offset))
    assert messages == [(str(path), offset)]  # exactly one reader holds it, and names it


def test_a_directory_among_split_files_is_refused_not_read_as_empty(tmp_path: Path) -> None:
    write_file(tmp_path / "a.tfrecord", bad=-1, n=10)
    (tmp_path / "sub").mkdir()
    dataset = TFRecordIterableDataset([str(tmp_path / "a.tfrecord"), str(tmp_path / "sub")], rank=0, world_size=4)
    with pytest.raises(tfr.ConfigError, match=f"{tmp_path / 'sub'} is a directory, not a file"):
        list(dataset)
