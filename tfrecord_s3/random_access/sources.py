"""Byte ranges of one data file, local (``pread``) or S3 (ranged GETs pinned to one ETag).

A source is cheap to pickle (path and config only): DataLoader workers open their own file
descriptor or HEAD on first use, and check there that the file is still the one indexed.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

from ..errors import StorageError
from ..index import DataStamp, RecordIndex
from ..storage import filesystem
from ..storage.local import open_local

if TYPE_CHECKING:
    from ..config import S3Config


class Source:
    """Reads ``[start, end)`` of ``path``; opened lazily once per process."""

    remote = False  # whether a read is a network round trip (worth overlapping with others)

    def __init__(self, path: str, index: RecordIndex, index_path: str) -> None:
        self.path = path
        self.index = index
        self.index_path = index_path
        self._pid = -1
        self._lock = threading.Lock()

    def read(self, start: int, end: int) -> bytes:
        if self._pid != os.getpid():
            with self._lock:  # several ranges of one file are fetched at once: open it once
                if self._pid != os.getpid():
                    self._open()
                    self._pid = os.getpid()
        return self._read(start, end)

    def close(self) -> None:
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pid"] = -1
        state["_lock"] = None
        self._drop_handles(state)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _check(self, current: DataStamp) -> None:
        self.index.check_fresh(current, path=self.index_path, data_path=self.path)

    def _drop_handles(self, state: dict[str, Any]) -> None:
        pass

    def _open(self) -> None:
        raise NotImplementedError

    def _read(self, start: int, end: int) -> bytes:
        raise NotImplementedError


class LocalSource(Source):
    _file: BinaryIO | None = None

    def _open(self) -> None:
        # Each process opens its own (pread has no shared position; a fresh open also
        # re-checks the very file this process reads).
        file = open_local(self.path, "rb")
        st = os.fstat(file.fileno())
        try:
            self._check(DataStamp(size=st.st_size, mtime_ns=st.st_mtime_ns))
        except BaseException:
            file.close()
            raise
        self._file = file

    def _read(self, start: int, end: int) -> bytes:
        assert self._file is not None
        fd = self._file.fileno()
        want = end - start
        data = os.pread(fd, want, start)
        while len(data) < want:  # a short read before EOF is legal; at EOF the file shrank
            more = os.pread(fd, want - len(data), start + len(data))
            if not more:
                raise StorageError(
                    f"read {self.path}: {len(data)} of {want} bytes at byte {start} (the file shrank)",
                    path=self.path,
                    operation="read",
                )
            data += more
        return data

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None and self._pid == os.getpid():
            file.close()
        super().close()

    def _drop_handles(self, state: dict[str, Any]) -> None:
        state["_file"] = None


class S3Source(Source):
    remote = True

    def __init__(self, path: str, index: RecordIndex, index_path: str, config: S3Config) -> None:
        super().__init__(path, index, index_path)
        self._config = config
        self._reader: Any = None

    def _open(self) -> None:
        from ..storage.s3_files import range_reader
        from ..storage.s3_path import S3Path

        reader = range_reader(S3Path.parse(self.path), self._config)
        self._check(DataStamp(size=reader.size, etag=reader.etag or ""))
        self._reader = reader  # every GET carries If-Match: that ETag

    def _read(self, start: int, end: int) -> bytes:

        from ..storage.retry import policy_for
        from ..storage.stream import BlockStream

        # One GET of exactly this range through the stream's retry and resume logic.
        window = _Window(self._reader, start, end)
        with BlockStream(window, block_size=max(end - start, 1), read_ahead=0, policy=policy_for(self._config)) as s:
            data = s.read()
        if not isinstance(data, bytes) or len(data) != end - start:  # pragma: no cover - the stream raises first
            raise StorageError(f"read {self.path}: short range at byte {start}", path=self.path, operation="read")
        return data

    def _drop_handles(self, state: dict[str, Any]) -> None:
        state["_reader"] = None


class _Window:
    """Bytes ``[base, end)`` of an S3 object seen as an object of their own."""

    def __init__(self, reader: Any, base: int, end: int) -> None:
        self._reader = reader
        self._base = base
        self._size = end - base

    @property
    def size(self) -> int:
        return self._size

    @property
    def path(self) -> str:
        return f"{self._reader.path} (range from byte {self._base})"

    @property
    def faults(self) -> Any:
        """The windowed reader's fault handling (S3's), for BlockStream."""
        return getattr(self._reader, "faults", None)

    def read_range(self, start: int, end: int) -> bytes:
        data: bytes = self._reader.read_range(self._base + start, self._base + end)
        return data

    def iter_range(self, start: int, end: int) -> Any:
        return self._reader.iter_range(self._base + start, self._base + end)

    def readinto_range(self, start: int, end: int, out: memoryview) -> Any:
        return self._reader.readinto_range(self._base + start, self._base + end, out)

    def refresh_credentials(self) -> None:
        refresh = getattr(self._reader, "refresh_credentials", None)
        if refresh is not None:
            refresh()


def open_source(path: str, index: RecordIndex, index_path: str, config: S3Config | None) -> Source:
    if filesystem.is_s3(path):
        from ..config import S3Config

        return S3Source(path, index, index_path, config if config is not None else S3Config.from_env())
    return LocalSource(path, index, index_path)
