"""Every exception tfrecord-s3 raises, in one tree.

::

    TFRecordS3Error
    ├── ConfigError (ValueError)              bad argument or environment value; names it
    ├── StorageError (OSError)                .path .operation; __cause__ = the botocore error
    │   ├── ObjectNotFoundError (FileNotFoundError)   NoSuchKey / NoSuchBucket / 404
    │   ├── AccessDeniedError (PermissionError)       403, ExpiredToken after refresh failed
    │   ├── ObjectChangedError                        412 on If-Match: the object was rewritten
    │   ├── RetriesExhaustedError                     .attempts; last cause chained
    │   └── ResponseError                             a reply that breaks the protocol
    │                                                 (wrong Content-Range, 200 for a range)
    └── RecordError                           .path .offset (byte offset of the record header)
        ├── TruncatedRecordError (EOFError)
        ├── CorruptRecordError                .part = "length" | "data" | "stream"
        │   └── RecordTooLargeError           a length field over the configured cap
        └── DecodeError (ValueError)          bad protobuf, or a value that does not fit the spec
    IndexFileError (ValueError)               .path of the index; a record index that cannot be used
    ├── CorruptIndexError                     unreadable or damaged index (bad magic, checksum, order)
    └── StaleIndexError                       the data file changed since its index was built

Every class can be built from a single message string and pickles with its fields, because
PyTorch's DataLoader re-raises worker exceptions as ``cls(message)``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDeniedError",
    "ConfigError",
    "CorruptIndexError",
    "CorruptRecordError",
    "DecodeError",
    "IndexFileError",
    "ObjectChangedError",
    "ObjectNotFoundError",
    "RecordError",
    "RecordTooLargeError",
    "ResponseError",
    "RetriesExhaustedError",
    "StaleIndexError",
    "StorageError",
    "TFRecordS3Error",
    "TruncatedRecordError",
]


class TFRecordS3Error(Exception):
    """Base class of every error raised by tfrecord-s3."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the message alone, then restore the fields: works for the OSError
        # and EOFError subclasses too, whose own __reduce__ would pass extra args.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


def _rebuild(cls: type[TFRecordS3Error], message: str, state: dict[str, Any]) -> TFRecordS3Error:
    exc = cls(message)
    exc.__dict__.update(state)
    return exc


class ConfigError(TFRecordS3Error, ValueError):
    """A bad argument or environment value; the message names it."""


class StorageError(TFRecordS3Error, OSError):
    """A storage operation failed. ``path`` is the object, ``operation`` what was tried."""

    def __init__(self, message: str = "", *, path: str | None = None, operation: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.operation = operation

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The bucket or key does not exist (NoSuchKey, NoSuchBucket, 404)."""


class AccessDeniedError(StorageError, PermissionError):
    """403: access denied, or credentials expired and could not be refreshed."""


class ObjectChangedError(StorageError):
    """412 on If-Match: the object was rewritten while it was being read."""


class RetriesExhaustedError(StorageError):
    """Transient faults persisted past the retry budget; ``attempts`` says how many tries."""

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        operation: str | None = None,
        attempts: int = 0,
        offset: int | None = None,
    ) -> None:
        super().__init__(message, path=path, operation=operation)
        self.attempts = attempts
        self.offset = offset


class ResponseError(StorageError):
    """The server answered in a way that breaks the protocol; its bytes were not used."""


class RecordError(TFRecordS3Error):
    """A problem with the record at byte ``offset`` (its header) of ``path``."""

    def __init__(self, message: str = "", *, path: str | None = None, offset: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


class TruncatedRecordError(RecordError, EOFError):
    """The file ends inside a record's header, data or CRC, or the compressed stream ends early."""


class CorruptRecordError(RecordError):
    """A CRC check failed. ``part`` is "length" (header), "data", or "stream" (compression)."""

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        offset: int | None = None,
        part: str | None = None,
    ) -> None:
        super().__init__(message, path=path, offset=offset)
        self.part = part


class RecordTooLargeError(CorruptRecordError):
    """A length field (with a valid CRC) over the configured cap; refused before allocating."""


class DecodeError(RecordError, ValueError):
    """Bytes that are not a valid Example, or a value that does not fit the feature spec."""

    def __init__(
        self,
        message: str = "",
        *,
        path: str | None = None,
        offset: int | None = None,
        feature: str | None = None,
    ) -> None:
        super().__init__(message, path=path, offset=offset)
        self.feature = feature


class IndexFileError(TFRecordS3Error, ValueError):
    """A record index (sidecar) that cannot be used; ``path`` is the index, ``data_path`` its data."""

    def __init__(self, message: str = "", *, path: str | None = None, data_path: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.data_path = data_path


class CorruptIndexError(IndexFileError):
    """The index is damaged or not an index: bad magic, failed checksum, offsets out of order."""


class StaleIndexError(IndexFileError):
    """The data file is not the one the index was built for (size, ETag, mtime or framing differ)."""
