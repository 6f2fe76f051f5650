"""Generated benchmark inputs: ~1 KB ``tf.train.Example`` records with 7 features, and 1 MiB
raw records. The Example wire format is encoded here by hand (a few lines of protobuf) so the
inputs exist before, and independently of, the library's decoder. Files are cached under
``WORK_DIR/data`` by their parameters."""

from __future__ import annotations

import gzip
import os
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import crc32c

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


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 -> two's complement, as protobuf encodes it
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature_bytes(values: list[bytes]) -> bytes:
    return _field(1, b"".join(_field(1, v) for v in values))


def _feature_floats(values: list[float]) -> bytes:
    return _field(2, _field(1, struct.pack(f"<{len(values)}f", *values)))


def _feature_ints(values: list[int]) -> bytes:
    return _field(3, _field(1, b"".join(_varint(v) for v in values)))


def encode_example(features: dict[str, bytes]) -> bytes:
    """Example{features: Features{feature: map<string, Feature>}} from encoded Feature messages."""
    entries = b"".join(_field(1, _field(1, name.encode()) + _field(2, feature)) for name, feature in features.items())
    return _field(1, entries)


def sample_example(rng: random.Random) -> bytes:
    """One ~1 KB Example matching FEATURE_SPEC."""
    return encode_example(
        {
            "image": _feature_bytes([rng.randbytes(rng.randint(420, 540))]),
            "label": _feature_ints([rng.randint(0, 999)]),
            "ids": _feature_ints([rng.randint(-(2**40), 2**40) for _ in range(16)]),
            "embedding": _feature_floats([rng.uniform(-1.0, 1.0) for _ in range(64)]),
            "name": _feature_bytes([f"sample-{rng.randint(0, 10**9):09d}".encode()]),
            "score": _feature_floats([rng.random()]),
            "tags": _feature_bytes([rng.choice([b"cat", b"dog", b"bird", b"fish"]) for _ in range(3)]),
        }
    )


def _masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    header = struct.pack("<Q", len(record))
    return header + struct.pack("<I", _masked_crc(header)) + record + struct.pack("<I", _masked_crc(record))


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
