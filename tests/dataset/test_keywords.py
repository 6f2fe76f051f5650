"""The reading keywords have one home: TFRecordDataset's signature, which TFRecordKeywords lists
and TFRecordIterableDataset passes on."""

from __future__ import annotations

import inspect

import pytest

import tfrecord_s3 as tfr
from tfrecord_s3.dataset.dataset import TFRecordKeywords


def test_the_keyword_list_is_the_signature() -> None:
    parameters = inspect.signature(tfr.TFRecordDataset).parameters
    assert set(TFRecordKeywords.__annotations__) == set(parameters) - {"filenames"}


def test_the_pytorch_dataset_takes_every_reading_keyword() -> None:
    torch_dataset = pytest.importorskip("tfrecord_s3.torch", reason="torch is not installed")
    ds = torch_dataset.TFRecordIterableDataset(
        "x.tfrecord", compression_type="GZIP", num_parallel_reads=3, block_length=2, on_corrupt="skip_record"
    )
    template = ds._template
    assert (template.num_parallel_reads, template.block_length) == (3, 2)
    assert (template.options.compression_type, template.options.on_corrupt) == ("GZIP", "skip_record")
    with pytest.raises(tfr.ConfigError):
        torch_dataset.TFRecordIterableDataset("x.tfrecord", on_corrupt="ignore")
    with pytest.raises(TypeError):
        torch_dataset.TFRecordIterableDataset("x.tfrecord", no_such_keyword=1)
