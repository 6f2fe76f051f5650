"""Local files (plain paths and ``file://``), with TensorFlow's ``file_io`` semantics."""

from __future__ import annotations

import builtins
import glob as _glob
import os
import re
from typing import BinaryIO

from ..errors import AccessDeniedError, ConfigError, ObjectNotFoundError, StorageError
from .base import FileStatistics, not_a_file

_READ_BUFFER = 1 << 20


# "scheme:/" with a scheme of two letters or more (a Windows drive, "C:/", is a local path);
# "s3:" in any spelling, as "s3:/bucket" or "S3://bucket" are typos of an S3 URL.
_URL_LIKE = re.compile(r"(?:([A-Za-z][A-Za-z0-9+.-]+):/|(s3):)", re.IGNORECASE)
SUPPORTED = "paths are local, file:// or s3://"
GCS_HINT = (
    "Google Cloud Storage is read through its S3 interoperability API: the same object as "
    "s3://{rest} with S3_ENDPOINT=storage.googleapis.com:443 and an HMAC key "
    '(README: "Google Cloud Storage (S3 interoperability, HMAC keys)")'
)


def strip_file_scheme(path: str) -> str:
    """The local path of a plain path or ``file://`` URL; ConfigError for any other URL
    (``gs://``, ``s3:/bucket``), which must not silently become a relative local path."""
    if path.startswith("file://"):
        return path[len("file://") :]
    if ":" in path:
        match = _URL_LIKE.match(path)
        if match is not None:
            raise ConfigError(_unsupported(path, (match.group(1) or match.group(2)).lower()))
    return path


def _unsupported(path: str, scheme: str) -> str:
    rest = path.split(":", 1)[1].lstrip("/")
    if scheme == "s3":
        return f"{path!r} is not an s3:// URL: did you mean 's3://{rest}'? ({SUPPORTED})"
    if scheme == "file":
        return f"{path!r} is not a file:// URL: did you mean 'file:///{rest}'? ({SUPPORTED})"
    if scheme in ("gs", "gcs"):
        return f"{path}: the {scheme}:// scheme is not supported ({SUPPORTED}); " + GCS_HINT.format(rest=rest)
    return f"{path}: the {scheme}:// scheme is not supported ({SUPPORTED})"


def _translate(exc: OSError, path: str, operation: str) -> StorageError:
    message = f"{operation} {path}: {exc.strerror or exc}"
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFoundError(message, path=path, operation=operation)
    if isinstance(exc, PermissionError):
        return AccessDeniedError(message, path=path, operation=operation)
    return StorageError(message, path=path, operation=operation)


def open_local(path: str, mode: str) -> BinaryIO:
    local = strip_file_scheme(path)
    try:
        if mode == "rb":
            return builtins.open(local, "rb", buffering=_READ_BUFFER)
        if mode == "wb":
            return builtins.open(local, "wb")
    except IsADirectoryError as exc:
        raise not_a_file(path, "a directory") from exc
    except OSError as exc:
        raise _translate(exc, path, "open") from exc
    raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")


def stat_local(path: str) -> FileStatistics:
    local = strip_file_scheme(path)
    try:
        st = os.stat(local)
    except OSError as exc:
        raise _translate(exc, path, "stat") from exc
    is_dir = os.path.isdir(local)
    return FileStatistics(length=0 if is_dir else st.st_size, mtime_nsec=st.st_mtime_ns, is_directory=is_dir)


def exists_local(path: str) -> bool:
    return os.path.exists(strip_file_scheme(path))


def glob_local(pattern: str) -> list[str]:
    prefix = "file://" if pattern.startswith("file://") else ""
    return sorted(prefix + p for p in _glob.glob(strip_file_scheme(pattern)))


def listdir_local(path: str) -> list[str]:
    try:
        return sorted(os.listdir(strip_file_scheme(path)))
    except OSError as exc:
        raise _translate(exc, path, "listdir") from exc
