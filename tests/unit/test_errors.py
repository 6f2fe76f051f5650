"""Every error is built from one message and pickles with its fields (PyTorch workers)."""

from __future__ import annotations

import inspect
import pickle

import pytest

import tfrecord_s3 as tfr
from tfrecord_s3 import errors

ALL = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, tfr.TFRecordS3Error)]


@pytest.mark.parametrize("cls", ALL)
def test_constructible_from_a_message_and_picklable(cls: type[tfr.TFRecordS3Error]) -> None:
    exc = cls("s3://b/k at byte 12: boom")
    assert str(exc) == "s3://b/k at byte 12: boom"
    for name, value in (("path", "s3://b/k"), ("offset", 12), ("part", "data"), ("attempts", 3)):
        if hasattr(exc, name):
            setattr(exc, name, value)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)
    assert back.__dict__ == exc.__dict__


def test_standard_bases() -> None:
    assert issubclass(tfr.ObjectNotFoundError, FileNotFoundError)
    assert issubclass(tfr.AccessDeniedError, PermissionError)
    assert issubclass(tfr.TruncatedRecordError, EOFError)
    assert issubclass(tfr.DecodeError, ValueError)
    assert issubclass(tfr.ConfigError, ValueError)
    assert issubclass(tfr.StorageError, OSError)
