"""What every storage backend shares: file statistics and the range-reader seam."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import ConfigError


@dataclass(frozen=True)
class FileStatistics:
    """What :func:`tfrecord_s3.stat` returns, as TensorFlow's ``file_io.stat`` does."""

    length: int
    mtime_nsec: int
    is_directory: bool


@runtime_checkable
class RangeReader(Protocol):
    """The one seam under every byte stream: a sized object read by byte ranges.

    ``read_range(start, end)`` returns exactly ``end - start`` bytes (end exclusive) or
    raises a :class:`~tfrecord_s3.errors.StorageError`. Tests and benchmarks plug in an
    in-memory reader; production plugs in S3 and local files. A reader whose transport raises
    its own exceptions also has ``faults``, a :class:`~tfrecord_s3.storage.faults.TransportFaults`
    that tells BlockStream which of them to retry and how to report them.
    """

    @property
    def size(self) -> int: ...

    @property
    def path(self) -> str: ...

    def read_range(self, start: int, end: int) -> bytes: ...


def not_a_file(path: str, what: str) -> ConfigError:
    """A directory (or S3 bucket / prefix, ``what`` says which) given where a file is expected."""
    pattern = path.rstrip("/") + "/*"
    return ConfigError(
        f"{path} is {what}, not a file: to read the files in it, pass a glob such as {pattern!r}"
        f" (or {pattern + '.tfrecord'!r})"
    )
