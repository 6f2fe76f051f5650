"""One filesystem API for local paths, ``file://`` and ``s3://`` (TensorFlow's file_io)."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

from . import local
from .base import FileStatistics

if TYPE_CHECKING:
    from ..config import S3Config

S3_SCHEME = "s3://"


def is_s3(path: str) -> bool:
    return path.startswith(S3_SCHEME)


def open(path: str, mode: str = "rb", *, config: S3Config | None = None) -> BinaryIO:
    """Open ``path`` for binary reading ("rb": seekable; ranged GETs on S3) or writing ("wb":
    multipart upload on S3). Raises ObjectNotFoundError, AccessDeniedError, StorageError."""
    if is_s3(path):
        from . import s3_files

        return s3_files.open_s3(path, mode, config=config)
    return local.open_local(path, mode)


def stat(path: str, *, config: S3Config | None = None) -> FileStatistics:
    """Length, mtime and directory flag of ``path``; ObjectNotFoundError if it is absent."""
    if is_s3(path):
        from . import s3_files

        return s3_files.stat_s3(path, config=config)
    return local.stat_local(path)


def exists(path: str, *, config: S3Config | None = None) -> bool:
    """Whether ``path`` is a file or a directory (an S3 prefix with objects under it).

    Only "not found" is False: access or connection errors raise, unlike TensorFlow."""
    if is_s3(path):
        from . import s3_files

        return s3_files.exists_s3(path, config=config)
    return local.exists_local(path)


def glob(pattern: str, *, config: S3Config | None = None) -> list[str]:
    """Sorted paths matching ``pattern`` ('*', '?', '[..]')."""
    if is_s3(pattern):
        from . import s3_files

        return s3_files.glob_s3(pattern, config=config)
    return local.glob_local(pattern)


def listdir(path: str, *, config: S3Config | None = None) -> list[str]:
    """Sorted names of the entries directly under ``path``."""
    if is_s3(path):
        from . import s3_files

        return s3_files.listdir_s3(path, config=config)
    return local.listdir_local(path)
