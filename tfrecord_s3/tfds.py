"""TensorFlow Datasets build directories, without TensorFlow: shards and record counts of a split.

A TFDS directory (``<data_dir>/<name>/<config>/<version>/``) holds ``dataset_info.json``
and the shards. Its ``splits`` list gives each split's ``shardLengths`` (records per shard,
as strings: protobuf's JSON for int64) and, in newer versions, ``filepathTemplate``; the
default template is ``{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}``, with shard numbers
padded to 5 digits (``mnist-train.tfrecord-00000-of-00001``). The counts make ``len()`` and
even steps per rank free: no shard is opened to count it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .index.files import read_small_file

if TYPE_CHECKING:
    from .config import S3Config

__all__ = ["TfdsSplit", "read_tfds_split"]

INFO_FILE = "dataset_info.json"
DEFAULT_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
_SHARD_DIGITS = 5


@dataclass(frozen=True)
class TfdsSplit:
    """One split of a TFDS directory: its shard paths in order and each shard's record count."""

    name: str
    files: list[str]
    counts: list[int]
    num_bytes: int

    @property
    def num_records(self) -> int:
        return sum(self.counts)


def read_tfds_split(path: str, split: str = "train", *, config: S3Config | None = None) -> TfdsSplit:
    """The shards and counts of ``split`` in the TFDS directory ``path`` (local or ``s3://``).

    Raises ObjectNotFoundError when there is no ``dataset_info.json``, ConfigError for a
    split it does not list or a file format other than TFRecord."""
    directory = path.rstrip("/")
    where = f"{directory}/{INFO_FILE}"
    try:
        info: Any = json.loads(read_small_file(where, config=config))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: not a TFDS dataset_info.json ({exc})") from exc
    if not isinstance(info, dict) or not isinstance(info.get("splits"), list):
        raise ConfigError(f"{where}: not a TFDS dataset_info.json (no 'splits' list)")
    file_format = str(info.get("fileFormat") or "tfrecord")
    if file_format != "tfrecord":
        raise ConfigError(f"{where}: the shards are {file_format!r}, not TFRecord")
    splits = {str(s.get("name")): s for s in info["splits"] if isinstance(s, dict)}
    if split not in splits:
        raise ConfigError(f"{where}: no split {split!r} (the directory has {sorted(splits)}); slices are not supported")
    entry = splits[split]
    try:
        counts = [int(n) for n in entry.get("shardLengths", [])]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: split {split!r} has shardLengths that are not integers") from exc
    template = str(entry.get("filepathTemplate") or DEFAULT_TEMPLATE)
    name = str(info.get("name") or "")
    shards = len(counts)
    files = [f"{directory}/{shard_name(template, name, split, file_format, i, shards)}" for i in range(shards)]
    return TfdsSplit(split, files, counts, int(entry.get("numBytes") or 0))


def shard_name(template: str, dataset: str, split: str, file_format: str, index: int, count: int) -> str:
    """A shard's file name from a TFDS template (its variables are in braces, upper case)."""
    digits = _SHARD_DIGITS
    values = {
        "DATASET": dataset,
        "SPLIT": split,
        "FILEFORMAT": file_format,
        "SHARD_INDEX": f"{index:0{digits}d}",
        "NUM_SHARDS": f"{count:0{digits}d}",
        "SHARD_X_OF_Y": f"{index:0{digits}d}-of-{count:0{digits}d}",
    }
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    if "{" in out:
        raise ConfigError(f"TFDS file template {template!r}: unknown variable in {out!r}")
    return out
