"""GZIP/ZLIB in both directions, and damaged or oversized compressed streams."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tfrecord_s3.records.compression import resolve_compression
from tfrecord_s3.records.framing import encode_frame

RECORDS = [bytes([i % 256]) * (i * 37) for i in range(200)]


@pytest.mark.parametrize(("ctype", "suffix"), [("GZIP", ".gz"), ("ZLIB", ".zz"), (None, "")])
def test_writer_round_trip(tmp_path: Path, ctype: str | None, suffix: str) -> None:
    path = str(tmp_path / f"f.tfrecord{suffix}")
    with tfr.TFRecordWriter(path, ctype) as writer:
        for r in RECORDS:
            writer.write(r)
    assert list(tfr.tf_record_iterator(path, ctype)) == RECORDS
    assert list(tfr.tf_record_iterator(path, "auto")) == RECORDS


def test_gzip_written_by_us_is_plain_gzip(tmp_path: Path) -> None:
    path = tmp_path / "f.gz"
    with tfr.TFRecordWriter(str(path), "GZIP") as writer:
        writer.write(b"hello")
    assert gzip.decompress(path.read_bytes()) == encode_frame(b"hello")


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(encode_frame(b"a")) + gzip.compress(encode_frame(b"b")))
    assert list(tfr.tf_record_iterator(str(path), "GZIP")) == [b"a", b"b"]


@pytest.mark.parametrize("ctype", ["GZIP", "ZLIB"])
def test_truncated_stream_names_file_and_record(tmp_path: Path, ctype: str) -> None:
    blob = b"".join(encode_frame(r) for r in RECORDS)
    packed = gzip.compress(blob) if ctype == "GZIP" else zlib.compress(blob)
    path = tmp_path / "cut"
    path.write_bytes(packed[: len(packed) - 10])
    got: list[bytes] = []
    with pytest.raises(tfr.TruncatedRecordError) as caught:
        for r in tfr.tf_record_iterator(str(path), ctype):
            got.append(r)
    assert got == RECORDS[: len(got)]
    assert caught.value.offset == sum(len(r) + 16 for r in got)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("ctype", ["GZIP", "ZLIB"])
def test_corrupt_stream_raises(tmp_path: Path, ctype: str) -> None:
    blob = b"".join(encode_frame(r) for r in RECORDS)
    packed = bytearray(gzip.compress(blob) if ctype == "GZIP" else zlib.compress(blob))
    packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "bad"
    path.write_bytes(bytes(packed))
    with pytest.raises(tfr.RecordError) as caught:
        list(tfr.tf_record_iterator(str(path), ctype))
    assert caught.value.path == str(path)


def test_decompression_bomb_stops_at_the_ratio_cap(tmp_path: Path) -> None:
    # 80 MiB of valid empty records compresses ~1000:1; a cap of 100:1 must stop it.
    one = encode_frame(b"")
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(one * (80 * 1024 * 1024 // len(one)), compresslevel=9))
    with pytest.raises(tfr.CorruptRecordError) as caught:
        for _ in tfr.open_records(str(path), "GZIP", max_decompression_ratio=100):
            pass
    assert "ratio cap" in str(caught.value)


def test_resolve_compression() -> None:
    assert resolve_compression(None) == ""
    assert resolve_compression("") == ""
    assert resolve_compression("gzip") == "GZIP"
    assert resolve_compression("auto", "x.tfrecord.gz") == "GZIP"
    assert resolve_compression("auto", "x.zz") == "ZLIB"
    assert resolve_compression("auto", "x.tfrecord") == ""
    with pytest.raises(tfr.ConfigError):
        resolve_compression("LZ4")


@pytest.mark.parametrize("loop", ["native", "pure"])
@pytest.mark.parametrize("how", ["writer", "module"])
@pytest.mark.parametrize("ctype", ["GZIP", "ZLIB"])
def test_bytes_after_the_stream_end_keep_the_records_before_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctype: str, how: str, loop: str
) -> None:
    # Issue 11's reproducer: TensorFlow yields a, bb, ccc from such a file. We yield them too,
    # then report the trailing byte where it is: after the last frame.
    monkeypatch.setenv("TFRECORD_S3_PURE_PYTHON", "1" if loop == "pure" else "0")
    records = [b"a", b"bb", b"ccc"]
    path = tmp_path / "trailing"
    if how == "writer":
        with tfr.TFRecordWriter(str(path), ctype) as writer:
            for r in records:
                writer.write(r)
    else:
        blob = b"".join(encode_frame(r) for r in records)
        path.write_bytes(gzip.compress(blob) if ctype == "GZIP" else zlib.compress(blob))
    with path.open("ab") as f:
        f.write(b"\x00")
    got: list[bytes] = []
    with pytest.raises(tfr.CorruptRecordError) as caught:
        for r in tfr.tf_record_iterator(str(path), ctype):
            got.append(r)
    assert got == records
    end = sum(len(r) + 16 for r in records)
    assert caught.value.offset == end
    assert f"uncompressed byte {end}" in str(caught.value)
    assert "unexpected bytes after the end of the compressed stream" in str(caught.value)


@pytest.mark.parametrize("ctype", ["GZIP", "ZLIB"])
def test_bytes_after_the_stream_end_inside_a_big_stream(tmp_path: Path, ctype: str) -> None:
    # The trailing bytes come in the same raw read as the stream's last inflated bytes.
    blob = b"".join(encode_frame(r) for r in RECORDS)
    packed = gzip.compress(blob) if ctype == "GZIP" else zlib.compress(blob)
    path = tmp_path / "trailing"
    path.write_bytes(packed + b"garbage")
    got: list[bytes] = []
    with pytest.raises(tfr.CorruptRecordError) as caught:
        for r in tfr.tf_record_iterator(str(path), ctype):
            got.append(r)
    assert got == RECORDS
    assert caught.value.offset == len(blob)
