"""TFRecord files of Examples for the Ray tests: ids that say which record is which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import tfrecord_s3 as tfr

SPEC: dict[str, Any] = {
    "id": tfr.FixedLenFeature([], "int64"),
    "embedding": tfr.FixedLenFeature([4], "float32"),
    "name": tfr.FixedLenFeature([], "bytes"),
    "tags": tfr.VarLenFeature("int64"),
}


def example(index: int, padding: int = 0) -> bytes:
    values: dict[str, Any] = {
        "id": index,
        "embedding": np.arange(4, dtype=np.float32) + index,
        "name": f"record-{index}",
        "tags": np.arange(index % 5, dtype=np.int64),
    }
    if padding:
        values["pad"] = b"\0" * padding
    return tfr.encode_example(values)


def write_shards(directory: str, counts: list[int], *, padding: int = 0, suffix: str = ".tfrecord") -> list[str]:
    """Files ``part-<n><suffix>`` holding ``counts[n]`` records each, ids 0.. in order across
    them; ``padding`` extra bytes per record make files big without many records."""
    paths = []
    next_id = 0
    for shard, count in enumerate(counts):
        path = f"{directory.rstrip('/')}/part-{shard}{suffix}"
        if not path.startswith("s3://"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with tfr.TFRecordWriter(path, "auto") as writer:
            for _ in range(count):
                writer.write(example(next_id, padding))
                next_id += 1
        paths.append(path)
    return paths


def records_of(paths: list[str], compression_type: str | None = None) -> list[bytes]:
    return [record for path in paths for record in tfr.tf_record_iterator(path, compression_type)]
