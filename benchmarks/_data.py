"""Generated benchmark inputs: ~1 KB ``tf.train.Example`` records with 7 features, and 1 MiB
raw records, written with the library's encoder (which shares no code with its decoder).
Files are cached under ``WORK_DIR/data`` by their parameters."""

from __future__ import annotations

import gzip
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tfrecord_s3.encode import encode_example
from tfrecord_s3.records.framing import encode_frame

from ._common import WORK_DIR

DATA_DIR = WORK_DIR / "data"
MB = 1_000_000

# The one feature spec every decoder in the benchmarks uses: name -> (dtype, shape).
# Fixed shapes so TensorFlow's parse_example and ours produce the same dense batch.
FEATURE_SPEC: dict[str, tuple[str, list[int]]] = {
    "image": ("bytes", []),
    "label": ("int64", []),
    "ids": ("int64", [16]),
    "embedding": ("float32", [64]),
    "name": ("bytes", []),
    "score": ("float32", []),
    "tags": ("bytes", [3]),
}


# The numeric features only: what a torch DataLoader's default collate can stack for every
# reader (PyPI tfrecord hands variable-length bytes to collate as ragged uint8 arrays).
NUMERIC_FEATURES = ("label", "ids", "embedding", "score")


def sample_example(rng: random.Random) -> bytes:
    """One ~1 KB Example matching FEATURE_SPEC."""
    return encode_example(
        {
            "image": rng.randbytes(rng.randint(420, 540)),
            "label": rng.randint(0, 999),
            "ids": [rng.randint(-(2**40), 2**40) for _ in range(16)],
            "embedding": [rng.uniform(-1.0, 1.0) for _ in range(64)],
            "name": f"sample-{rng.randint(0, 10**9):09d}".encode(),
            "score": rng.random(),
            "tags": [rng.choice([b"cat", b"dog", b"bird", b"fish"]) for _ in range(3)],
        }
    )


def frame(record: bytes) -> bytes:
    return encode_frame(record)


@dataclass(frozen=True)
class RecordFile:
    path: Path
    records: int
    bytes: int
    kind: str  # "examples" | "raw"


def _write(path: Path, frames: Iterator[bytes]) -> RecordFile:
    """Writes frames to ``path`` atomically (tmp + rename) so an interrupted run never leaves a
    half file that a later run would trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    count = 0
    with tmp.open("wb", buffering=8 << 20) as out:
        for data in frames:
            out.write(data)
            count += 1
        # Flush to disk now: otherwise the kernel writes the dirty pages back during the first
        # measurements and steals their CPU and I/O (seen as 2x slower first runs).
        out.flush()
        os.fsync(out.fileno())
    tmp.rename(path)
    (path.parent / (path.name + ".count")).write_text(str(count))
    return RecordFile(path, count, path.stat().st_size, "")


def _cached(path: Path, kind: str) -> RecordFile | None:
    count_file = path.parent / (path.name + ".count")
    if path.exists() and count_file.exists():
        return RecordFile(path, int(count_file.read_text()), path.stat().st_size, kind)
    return None


def _example_frames(target_bytes: int, seed: int) -> Iterator[bytes]:
    # A pool of distinct records cycled to size: generation stays fast, and 997 distinct
    # records (a prime) keep every record boundary from lining up with a block boundary.
    rng = random.Random(seed)
    pool = [frame(sample_example(rng)) for _ in range(997)]
    written = 0
    index = 0
    while written < target_bytes:
        data = pool[index % len(pool)]
        index += 1
        written += len(data)
        yield data


def example_file(total_mb: int, *, seed: int = 1, name: str = "examples") -> RecordFile:
    """A file of ~1 KB Examples, ``total_mb`` MB (1e6 bytes) long."""
    path = DATA_DIR / f"{name}-1k-{total_mb}MB-s{seed}.tfrecord"
    cached = _cached(path, "examples")
    if cached is not None:
        return cached
    print(f"  generating {path.name} ...", flush=True)
    written = _write(path, _example_frames(total_mb * MB, seed))
    return RecordFile(written.path, written.records, written.bytes, "examples")


def raw_file(total_mb: int, record_bytes: int = 1 << 20, *, seed: int = 2) -> RecordFile:
    """A file of ``record_bytes`` random records, ``total_mb`` MB long."""
    path = DATA_DIR / f"raw-{record_bytes}B-{total_mb}MB-s{seed}.tfrecord"
    cached = _cached(path, "raw")
    if cached is not None:
        return cached
    print(f"  generating {path.name} ...", flush=True)
    rng = random.Random(seed)
    pool = [frame(rng.randbytes(record_bytes)) for _ in range(7)]
    count = -(-total_mb * MB // record_bytes)
    written = _write(path, (pool[i % len(pool)] for i in range(count)))
    return RecordFile(written.path, written.records, written.bytes, "raw")


def example_shards(total_mb: int, shards: int, *, seed: int = 3) -> list[RecordFile]:
    """``shards`` files of ~1 KB Examples adding up to ``total_mb`` MB."""
    each = max(1, total_mb // shards)
    return [example_file(each, seed=seed + i, name=f"shard{i:02d}of{shards:02d}") for i in range(shards)]


def gzip_file(source: RecordFile, level: int = 6) -> RecordFile:
    """``source`` GZIP-compressed (as TFRecordWriter with GZIP writes it: one gzip stream).
    ``bytes`` stays the uncompressed size, so MB/s compares with the plain file."""
    path = source.path.with_name(source.path.stem + f"-l{level}.tfrecord.gz")
    if not path.exists():
        print(f"  generating {path.name} ...", flush=True)
        tmp = path.with_suffix(".tmp")
        with source.path.open("rb") as plain, tmp.open("wb") as raw_out:
            with gzip.GzipFile(fileobj=raw_out, mode="wb", compresslevel=level, mtime=0) as out:
                while chunk := plain.read(8 << 20):
                    out.write(chunk)
            raw_out.flush()
            os.fsync(raw_out.fileno())
        tmp.rename(path)
    return RecordFile(path, source.records, source.bytes, "gzip")


def small_objects(count: int, records: int, *, seed: int = 5) -> list[RecordFile]:
    """``count`` small files of ``records`` ~900-byte Examples each (~100 KB with 110): the
    many-small-objects scenario."""
    directory = DATA_DIR / f"small-{count}x{records}-s{seed}"
    found: list[RecordFile] = []
    rng = random.Random(seed)
    pool: list[bytes] | None = None
    for i in range(count):
        path = directory / f"obj-{i:05d}.tfrecord"
        cached = _cached(path, "examples")
        if cached is None:
            if pool is None:
                print(f"  generating {directory.name} ...", flush=True)
                pool = [frame(sample_example(rng)) for _ in range(997)]
            start = i * records
            cached = _write(path, iter([pool[(start + j) % len(pool)] for j in range(records)]))
        found.append(RecordFile(cached.path, cached.records, cached.bytes, "examples"))
    return found
