"""TFRecordIterableDataset(features=...): a DecodeError names the file and the failing
record's byte offset, in the main process and through DataLoader workers."""

from __future__ import annotations

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
