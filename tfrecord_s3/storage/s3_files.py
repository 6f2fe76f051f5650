"""File operations on ``s3://`` paths with TensorFlow's ``file_io`` semantics.

Called by :mod:`tfrecord_s3.storage.filesystem`. Every function takes ``config``: None means
:meth:`S3Config.from_env` (TensorFlow's variables), an explicit config wins over the
environment. Errors name ``s3://bucket/key``: ObjectNotFoundError for a missing bucket or
key, AccessDeniedError for 403, StorageError for the rest.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, cast

from ..config import S3Config
from ..errors import ConfigError, ObjectNotFoundError
from .base import FileStatistics, not_a_file
from .hedging import HedgePolicy
from .retry import policy_for
from .s3_client import get_client
from .s3_errors import translate
from .s3_path import S3Path
from .s3_reader import S3RangeReader, Stat, head_object
from .s3_writer import S3Writer
from .scheduler import process_scheduler
from .stream import BlockStream

__all__ = [
    "ListedObject",
    "exists_s3",
    "glob_s3",
    "listdir_s3",
    "open_s3",
    "open_s3_stream",
    "range_reader",
    "stat_s3",
]

_MAX_BUFFER = 1024 * 1024
_GLOB_CHARS = re.compile(r"[*?\[]")


class ListedObject(str):
    """An ``s3://`` path as a listing returned it, with the object's size and ETag.

    It is a ``str`` (callers see a path); opening it costs no HEAD: the listing's size is
    used, and every GET carries ``If-Match`` with the listed ETag, so an object rewritten
    since the listing raises ObjectChangedError instead of mixing two versions."""

    size: int
    etag: str

    def __new__(cls, path: str, size: int, etag: str) -> ListedObject:
        listed = super().__new__(cls, path)
        listed.size = size
        listed.etag = etag
        return listed

    def __reduce__(self) -> tuple[Any, ...]:
        return (ListedObject, (str(self), self.size, self.etag))


def listed_head(path: str) -> dict[str, Any] | None:
    """What a HEAD would say of ``path``, when a listing already said it."""
    if isinstance(path, ListedObject) and path.etag:
        return {"ContentLength": path.size, "ETag": path.etag}
    return None


def range_reader(
    location: S3Path,
    config: S3Config,
    *,
    head: dict[str, Any] | None = None,
    lazy: bool = False,
    stat: Stat = head_object,
) -> S3RangeReader:
    """The reader of one object over ``config.transport``: ``stat`` HEADs it now unless
    ``head`` says it or, ``lazy``, the first GET's reply will (see S3RangeReader). The CRT
    transport is never lazy: it HEADs now."""
    if config.transport == "crt":
        from .crt_reader import CrtRangeReader  # imports awscrt: only when chosen

        return CrtRangeReader(location, config, head=head, stat=stat)
    return S3RangeReader(location, config, head=head, lazy=lazy, stat=stat)


def open_s3_stream(path: str, *, config: S3Config | None = None, **stream_options: Any) -> BlockStream:
    """The raw :class:`BlockStream` of ``path``: no request now; its first GET says the
    object's size and ETag (a :class:`ListedObject` brings them), later GETs are pinned to
    that ETag. A missing object raises at the first read, as a HEAD at open would have.

    ``stream_options`` go to BlockStream (e.g. ``sleep``, ``rng``) and override the config;
    an explicit ``read_ahead`` there means a fixed window (no scheduler).
    """
    config = config if config is not None else S3Config.from_env()
    location = S3Path.parse(path)
    if not location.key:
        raise not_a_file(path, "a bucket")
    if location.key.endswith("/"):
        raise not_a_file(path, "a prefix (a directory)")
    reader = range_reader(location, config, head=listed_head(path), lazy=True, stat=_head_of_file)
    return BlockStream(reader, **stream_policy(config, stream_options))


def _head_of_file(location: S3Path, config: S3Config) -> dict[str, Any]:
    """HEAD an object given as a file: a key that is not there but is a prefix says so."""
    try:
        return head_object(location, config)
    except ObjectNotFoundError as missing:
        # S3 has no directories: a key that is not there may be a prefix, as `ls` shows it.
        if _has_objects_under(location.child(location.key + "/"), config):
            raise not_a_file(location.url, "a prefix (a directory)") from missing
        raise


def stream_policy(config: S3Config, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """BlockStream's keyword arguments for ``config``: the process's transfer scheduler,
    growing blocks and hedged GETs when ``read_ahead`` is None, a fixed window otherwise."""
    overrides = overrides or {}
    options: dict[str, Any] = {"block_size": config.block_size, "policy": policy_for(config)}
    if config.read_ahead is None and "read_ahead" not in overrides:
        options.update(
            read_ahead=config.max_pool_connections,
            scheduler=process_scheduler(config.max_pool_connections),
            first_block=config.first_block_size,
            max_bytes_in_flight=config.max_bytes_in_flight,
        )
        if config.hedge_after is not None:
            options["hedge"] = HedgePolicy(floor=config.hedge_after, read_timeout=config.read_timeout)
    else:
        options["read_ahead"] = config.read_ahead
    options.update(overrides)
    return options


def open_s3(path: str, mode: str = "rb", *, config: S3Config | None = None) -> BinaryIO:
    """Open an S3 object: "rb" gives a seekable buffered reader (``.raw`` is the
    BlockStream with its counters); "wb" an :class:`S3Writer` (multipart upload)."""
    config = config if config is not None else S3Config.from_env()
    if mode == "rb":
        stream = open_s3_stream(path, config=config)
        return cast(BinaryIO, io.BufferedReader(stream, buffer_size=min(config.block_size, _MAX_BUFFER)))
    if mode == "wb":
        location = S3Path.parse(path)
        if not location.key or location.key.endswith("/"):
            raise ConfigError(f"cannot write to {path}: not an object key")
        return cast(BinaryIO, S3Writer(location, config))
    raise ValueError(f"mode must be 'rb' or 'wb', not {mode!r}")


def stat_s3(path: str, *, config: S3Config | None = None) -> FileStatistics:
    """HEAD the object; a bucket root, or a prefix with objects under it, is a directory."""
    config = config if config is not None else S3Config.from_env()
    location = S3Path.parse(path)
    if not location.key:
        try:
            get_client(config).head_bucket(Bucket=location.bucket)
        except Exception as exc:
            raise translate(exc, location.url, "stat") from exc
        return FileStatistics(length=0, mtime_nsec=0, is_directory=True)
    if not location.key.endswith("/"):
        try:
            head = head_object(location, config)
        except ObjectNotFoundError as missing:
            if _has_objects_under(location.child(location.key + "/"), config):
                return FileStatistics(length=0, mtime_nsec=0, is_directory=True)
            raise missing
        return FileStatistics(
            length=int(head["ContentLength"]), mtime_nsec=_nanoseconds(head.get("LastModified")), is_directory=False
        )
    if _has_objects_under(location, config):
        return FileStatistics(length=0, mtime_nsec=0, is_directory=True)
    raise ObjectNotFoundError(f"stat {location.url}: not found", path=location.url, operation="stat")


def exists_s3(path: str, *, config: S3Config | None = None) -> bool:
    """True for an object or a directory; False only when S3 says "not found"
    (403 and connection errors raise, unlike TensorFlow)."""
    try:
        stat_s3(path, config=config)
    except ObjectNotFoundError:
        return False
    return True


def listdir_s3(path: str, *, config: S3Config | None = None) -> list[str]:
    """Sorted names directly under ``path`` (objects and sub-directories, no trailing '/').
    ObjectNotFoundError when nothing is there and no directory marker exists."""
    config = config if config is not None else S3Config.from_env()
    location = S3Path.parse(path)
    prefix = location.key if not location.key or location.key.endswith("/") else location.key + "/"
    names: set[str] = set()
    marker = False
    for page in _list_pages(location.child(prefix), config, delimiter="/"):
        for item in page.get("Contents", ()):
            name = item["Key"][len(prefix) :]
            if name:
                names.add(name)
            else:
                marker = True
        for common in page.get("CommonPrefixes", ()):
            names.add(common["Prefix"][len(prefix) :].rstrip("/"))
    if not names and not marker and prefix:
        raise ObjectNotFoundError(f"listdir {location.url}: no such directory", path=location.url, operation="list")
    return sorted(names)


def glob_s3(pattern: str, *, config: S3Config | None = None) -> list[str]:
    """Sorted ``s3://`` paths matching ``pattern``: '*', '?' and '[..]' in the key part, none
    of them crossing '/' (TensorFlow's fnmatch with FNM_PATHNAME). Directories (prefixes)
    match as well as objects. Lists every page."""
    config = config if config is not None else S3Config.from_env()
    location = S3Path.parse(pattern)
    if _GLOB_CHARS.search(location.bucket):
        raise ConfigError(f"glob {pattern}: wildcards in the bucket name are not supported")
    first = _GLOB_CHARS.search(location.key)
    if first is None:
        return [location.url] if exists_s3(pattern, config=config) else []
    literal = location.key[: first.start()]
    matcher = _compile_glob(location.key)
    one_level = "/" not in location.key[first.start() :]
    candidates: set[str] = set()
    # Objects keep what the listing says of them: opening one from the glob needs no HEAD.
    listed: dict[str, tuple[int, str]] = {}
    delimiter = "/" if one_level else None
    for page in _list_pages(location.child(literal), config, delimiter=delimiter):
        for item in page.get("Contents", ()):
            key: str = item["Key"]
            candidates.add(key.rstrip("/") if key.endswith("/") else key)
            if not key.endswith("/") and "Size" in item and item.get("ETag"):
                listed[key] = (int(item["Size"]), str(item["ETag"]))
            if not one_level:
                # Directories match too: every ancestor prefix of a key that could match.
                slash = key.find("/", len(literal))
                while slash != -1:
                    candidates.add(key[:slash])
                    slash = key.find("/", slash + 1)
        for common in page.get("CommonPrefixes", ()):
            candidates.add(common["Prefix"].rstrip("/"))
    found: list[str] = []
    for key in sorted(candidates):
        if matcher.fullmatch(key):
            url = f"s3://{location.bucket}/{key}"
            found.append(ListedObject(url, *listed[key]) if key in listed else url)
    return found


def _list_pages(location: S3Path, config: S3Config, *, delimiter: str | None) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {
        "Bucket": location.bucket,
        "Prefix": location.key,
        "PaginationConfig": {"PageSize": config.list_page_size},
    }
    if delimiter:
        params["Delimiter"] = delimiter
    try:
        yield from get_client(config).get_paginator("list_objects_v2").paginate(**params)
    except Exception as exc:
        raise translate(exc, location.url, "list") from exc


def _has_objects_under(location: S3Path, config: S3Config) -> bool:
    try:
        page = get_client(config).list_objects_v2(Bucket=location.bucket, Prefix=location.key, MaxKeys=1)
    except Exception as exc:
        raise translate(exc, location.url, "list") from exc
    return bool(page.get("KeyCount") or page.get("Contents"))


def _compile_glob(pattern: str) -> re.Pattern[str]:
    """fnmatch with FNM_PATHNAME: wildcards never match '/'."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape("["))
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("]", "\\]").replace("[", "\\[")
            out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)


def _nanoseconds(when: datetime | None) -> int:
    if when is None:
        return 0
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000
