"""Local files (plain paths and ``file://``), with TensorFlow's ``file_io`` semantics."""

from __future__ import annotations

import builtins
import glob as _glob
import os
from typing import BinaryIO

from ..errors import AccessDeniedError, ObjectNotFoundError, StorageError
from .base import FileStatistics

_READ_BUFFER = 1 << 20


def strip_file_scheme(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


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
