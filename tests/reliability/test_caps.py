"""Bad input and resource caps (RELIABILITY.md invariant 6): every cap at its limit and
one past it, crafted lengths refused before any allocation, bombs stopped at the cap,
and bytes that are not an Example refused with DecodeError."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tfrecord_s3 as tfr
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.decode import FixedLenFeature, parse_example, parse_example_batch
from tfrecord_s3.proto.example_pb2 import Example
from tfrecord_s3.records import compression
from tfrecord_s3.records.crc import masked_crc
from tfrecord_s3.records.framing import FRAME_OVERHEAD, encode_frame, iter_frames

MiB = 1024 * 1024


def header_claiming(length: int) -> bytes:
    """A 12-byte record header for ``length`` with a valid length CRC."""
    packed = struct.pack("<Q", length)
    return packed + struct.pack("<I", masked_crc(packed))


def peak_allocation(action: Callable[[], Any]) -> tuple[Any, int]:
    """(what ``action`` returned or raised, peak bytes allocated while it ran)."""
    tracemalloc.start()
    try:
        try:
            result: Any = action()
        except Exception as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


# ---- record length cap ------------------------------------------------------------------


@pytest.mark.parametrize("length", [2**63, 2**64 - 1, 50 * MiB + 1])
def test_crafted_length_is_refused_before_allocating(length: int) -> None:
    blob = encode_frame(b"fine") + header_claiming(length) + b"x" * 100
    error, peak = peak_allocation(
        lambda: list(iter_frames(io.BytesIO(blob), path="crafted", max_record_bytes=50 * MiB))
    )
    assert isinstance(error, tfr.RecordTooLargeError)
    assert error.offset == FRAME_OVERHEAD + 4
    assert error.part == "length"
    assert str(length) in str(error)
    assert "crafted" in str(error)
    assert peak < 256 * 1024


def test_crafted_length_from_a_file_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "crafted.tfrecord"
    path.write_bytes(header_claiming(2**63) + b"\0" * 64)
    error, peak = peak_allocation(lambda: list(tfr.tf_record_iterator(str(path))))
    assert isinstance(error, tfr.RecordTooLargeError)
    assert error.path == str(path)
    assert error.offset == 0
    assert peak < 2 * MiB  # the 1 MiB read buffer of the file, nothing the length asked for


@pytest.mark.parametrize("cap", [0, 1, 1000])
def test_record_length_cap_at_its_limit_and_one_past(cap: int) -> None:
    at_limit = encode_frame(b"a" * cap)
    assert list(iter_frames(io.BytesIO(at_limit), max_record_bytes=cap)) == [b"a" * cap]
    past = encode_frame(b"a" * (cap + 1))
    with pytest.raises(tfr.RecordTooLargeError) as caught:
        list(iter_frames(io.BytesIO(at_limit + past), max_record_bytes=cap))
    assert caught.value.offset == len(at_limit)


def test_dataset_passes_the_record_cap_on(tmp_path: Path) -> None:
    path = tmp_path / "cap.tfrecord"
    path.write_bytes(encode_frame(b"a" * 100) + encode_frame(b"b" * 101))
    with pytest.raises(tfr.RecordTooLargeError):
        list(TFRecordDataset([str(path)], max_record_bytes=100))
    assert list(TFRecordDataset([str(path)], max_record_bytes=101)) == [b"a" * 100, b"b" * 101]


# ---- decompression bombs ------------------------------------------------------------------


def bomb(kind: str, records: int, record_bytes: int) -> bytes:
    """``records`` valid records of zeros, compressed (~1000:1), built without holding them."""
    frame = encode_frame(bytes(record_bytes))
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31 if kind == "GZIP" else 15)
    parts = [deflater.compress(frame) for _ in range(records)]
    parts.append(deflater.flush())
    return b"".join(parts)


@pytest.mark.parametrize("kind", ["GZIP", "ZLIB"])
def test_bomb_stops_at_the_cap_with_flat_memory(tmp_path: Path, kind: str) -> None:
    # 96 MiB of valid records in ~100 KiB: past the 64 MiB floor the ratio cap (100) applies.
    path = tmp_path / "bomb.tfrecord"
    path.write_bytes(bomb(kind, 96, MiB))
    got = 0

    def drain() -> None:
        nonlocal got
        for _ in TFRecordDataset([str(path)], kind, max_decompression_ratio=100):
            got += 1

    error, peak = peak_allocation(drain)
    assert isinstance(error, tfr.CorruptRecordError), error
    assert error.part == "stream"
    assert "ratio cap" in str(error)
    assert str(path) in str(error)
    assert 60 <= got <= 64  # stopped as soon as 64 MiB were inflated, not at the end
    assert peak < 40 * MiB  # a few records and buffers, never the 96 MiB


@pytest.mark.parametrize("kind", ["GZIP", "ZLIB"])
def test_decompression_ratio_cap_at_its_limit_and_one_past(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    # The cap applies past a floor of 64 MiB inflated; lowered here so small data hits it.
    monkeypatch.setattr(compression, "_RATIO_FLOOR_BYTES", 0)
    raw = b"".join(encode_frame(bytes(1000)) for _ in range(50))
    packed = bomb(kind, 50, 1000)
    assert len(packed) < compression._READ_CHUNK  # read in one go: the ratio is checked at the end
    limit = len(raw) / len(packed)
    assert not len(raw) > limit * len(packed)

    def records(ratio: float) -> list[bytes]:
        reader = compression.InflatingReader(io.BytesIO(packed), kind, max_ratio=ratio)  # type: ignore[arg-type]
        return list(iter_frames(io.BufferedReader(reader), path="ratio"))

    assert len(records(limit)) == 50
    with pytest.raises(tfr.CorruptRecordError, match="ratio cap"):
        records((len(raw) - 1) / len(packed))


@pytest.mark.parametrize("kind", ["GZIP", "ZLIB"])
def test_truncated_and_corrupted_compressed_streams_raise(kind: str) -> None:
    packed = bomb(kind, 3, 100)

    def read(blob: bytes) -> list[bytes]:
        reader = compression.InflatingReader(io.BytesIO(blob), kind)  # type: ignore[arg-type]
        return list(iter_frames(io.BufferedReader(reader), path="z"))

    assert read(packed) == [bytes(100)] * 3
    with pytest.raises(tfr.TruncatedRecordError):
        read(packed[:-5])
    damaged = bytearray(packed)
    damaged[len(packed) // 2] ^= 0xFF
    with pytest.raises(tfr.RecordError):
        read(bytes(damaged))
    with pytest.raises(tfr.CorruptRecordError):
        read(packed + b"trailing garbage")


# ---- bytes in flight ----------------------------------------------------------------------


def big_files(directory: Path, files: int, records: int, size: int) -> list[str]:
    paths = []
    for f in range(files):
        path = directory / f"big{f}.tfrecord"
        path.write_bytes(b"".join(encode_frame(os.urandom(size)) for _ in range(records)))
        paths.append(str(path))
    return paths


def settled_memory(timeout: float = 3.0) -> int:
    """Traced memory once it stopped growing for 0.3 s (the readers have stopped)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now, _ = tracemalloc.get_traced_memory()
        if now == last:
            return now
        last = now
        time.sleep(0.3)
    return last


@pytest.mark.parametrize("cap", [1 * MiB, 8 * MiB])
def test_memory_held_while_the_consumer_pauses_follows_the_cap(tmp_path: Path, cap: int) -> None:
    # 4 files x 12 MiB, cycle 4, consumer paused after one record: the readers stop once
    # their share of the cap is queued. Beyond it each open file holds the chunk being
    # filled and the one being consumed (each <= half its share, plus a record), its 1 MiB
    # file buffer, and the frame parser's 1 MiB buffer with the records scanned from it.
    record = 64 * 1024 + FRAME_OVERHEAD
    paths = big_files(tmp_path, 4, 192, 64 * 1024)
    dataset = TFRecordDataset(paths, num_parallel_reads=4, max_bytes_in_flight=cap)
    tracemalloc.start()
    try:
        it = iter(dataset)
        next(it)
        held = settled_memory()
    finally:
        tracemalloc.stop()
    assert held <= 2 * cap + 4 * (3 * MiB + 3 * record) < 4 * 12 * MiB
    assert sum(1 for _ in it) == 4 * 192 - 1


@pytest.mark.parametrize("extra", [0, 1])
def test_record_as_large_as_the_cap_and_one_past_still_flows(tmp_path: Path, extra: int) -> None:
    # A single record bigger than a file's share of the cap must not deadlock the queue.
    cap = 64 * 1024
    path = tmp_path / "one.tfrecord"
    records = [b"s", bytes(cap - FRAME_OVERHEAD + extra), b"t"]
    path.write_bytes(b"".join(encode_frame(r) for r in records))
    done: list[list[bytes]] = []
    reader = threading.Thread(target=lambda: done.append(list(TFRecordDataset([str(path)], max_bytes_in_flight=cap))))
    reader.start()
    reader.join(10)
    assert not reader.is_alive()
    assert done == [records]


# ---- the Example decoder --------------------------------------------------------------------


def _example(**features: Any) -> bytes:
    example = Example()
    for name, value in features.items():
        feature = example.features.feature[name]
        if isinstance(value, bytes):
            feature.bytes_list.value.append(value)
        elif isinstance(value, float):
            feature.float_list.value.append(value)
        else:
            feature.int64_list.value.append(value)
    return example.SerializeToString()


NOT_EXAMPLES = {
    "random bytes": b"\xff\xfe\xfd\xfc",
    "truncated varint (tag)": b"\x80",
    "truncated varint (length)": b"\x0a\x80",
    "truncated varint (int64 value)": b"\x0a\x0b\x0a\x09\x0a\x01a\x12\x04\x1a\x02\x08\x80",
    "length past the end": b"\x0a\x7fab",
    "a TFRecord frame": encode_frame(b"hello"),
    "text": b"definitely not a protobuf message, just text",
}


@pytest.mark.parametrize("name", sorted(NOT_EXAMPLES))
def test_non_protobuf_and_truncated_varints_raise_decode_error(name: str) -> None:
    data = NOT_EXAMPLES[name]
    with pytest.raises(tfr.DecodeError) as caught:
        parse_example(data, path="s3://b/k", offset=48)
    assert caught.value.path == "s3://b/k"
    assert caught.value.offset == 48
    with pytest.raises(tfr.DecodeError):
        parse_example_batch([_example(x=1), data], {"x": FixedLenFeature([], "int64", default_value=0)})


def test_feature_of_the_wrong_kind_raises_decode_error_naming_it() -> None:
    with pytest.raises(tfr.DecodeError) as caught:
        parse_example(_example(label=b"cat"), {"label": FixedLenFeature([], "int64")})
    assert caught.value.feature == "label"
