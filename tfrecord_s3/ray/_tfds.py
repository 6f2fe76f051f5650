"""Record counts from TensorFlow Datasets' ``dataset_info.json``, so Ray plans (and counts)
without reading: TFDS writes each split's ``shardLengths`` next to shards named
``<dataset>-<split>.tfrecord-<shard>-of-<shards>``.

Only that default file name is understood, and only when the metadata agrees with it (the
dataset name, the split, the number of shards); anything else leaves the counts unknown.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import TYPE_CHECKING, Any

from ..errors import ObjectNotFoundError
from ..storage import filesystem

if TYPE_CHECKING:
    from ..config import S3Config

__all__ = ["tfds_rows"]

_SHARD = re.compile(r"^(?P<dataset>.+)-(?P<split>[^-.]+)\.tfrecord-(?P<shard>\d{5})-of-(?P<shards>\d{5})$")
_INFO = "dataset_info.json"


def tfds_rows(paths: list[str], config: S3Config | None) -> list[int | None]:
    """Records in each file, where a ``dataset_info.json`` beside it says; None elsewhere."""
    infos: dict[str, dict[str, Any] | None] = {}
    rows: list[int | None] = []
    for path in paths:
        directory, name = posixpath.split(path)
        match = _SHARD.match(name)
        if match is None:
            rows.append(None)
            continue
        if directory not in infos:
            infos[directory] = _load(f"{directory}/{_INFO}", config)
        rows.append(_shard_rows(infos[directory], match))
    return rows


def _load(path: str, config: S3Config | None) -> dict[str, Any] | None:
    try:
        with filesystem.open(path, "rb", config=config) as stream:
            info = json.loads(stream.read())
    except (ObjectNotFoundError, ValueError):
        return None  # no metadata (or not JSON): counts stay unknown
    return info if isinstance(info, dict) else None


def _shard_rows(info: dict[str, Any] | None, match: re.Match[str]) -> int | None:
    if info is None or info.get("name") != match["dataset"]:
        return None
    for split in info.get("splits", ()):
        if not isinstance(split, dict) or split.get("name") != match["split"]:
            continue
        lengths = split.get("shardLengths", ())
        if len(lengths) != int(match["shards"]) or int(match["shard"]) >= len(lengths):
            return None
        try:
            return int(lengths[int(match["shard"])])
        except (TypeError, ValueError):
            return None
    return None
