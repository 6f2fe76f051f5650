"""Record indexes: the three formats round-trip; stale, damaged and foreign indexes are typed errors."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests import golden
from tfrecord_s3.cli import main
from tfrecord_s3.index import (
    INDEX_SUFFIX,
    DataStamp,
    RecordIndex,
    build_index,
    decode_index,
    encode_index,
    encode_text_index,
    find_index,
    read_index,
    sidecar_path,
    write_index,
)
from tfrecord_s3.records.framing import encode_frame

PLAIN = [n for n in golden.golden_files() if not golden.expected()["files"][n]["compression"]]


def text_index_as_tools_write_it(path: Path, *, trailing_newline: bool = True) -> bytes:
    """What DALI's and PyPI tfrecord's ``tfrecord2idx`` write: walk the frames by their
    length fields, one ``<offset> <framed size>`` line per record."""
    data = path.read_bytes()
    lines, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<q", data, pos)
        lines.append(f"{pos} {length + 16}")
        pos += length + 16
    text = "\n".join(lines) + ("\n" if trailing_newline and lines else "")
    return text.encode()


def expected_offsets(name: str) -> list[int]:
    lengths = golden.expected()["files"][name]["record_lengths"]
    return [sum(n + 16 for n in lengths[:i]) for i in range(len(lengths))]


@pytest.mark.parametrize("name", PLAIN)
def test_scan_finds_every_record_start(name: str) -> None:
    index = build_index(str(golden.path_of(name)))
    assert index.offsets.tolist() == expected_offsets(name)
    assert index.stamp.size == golden.path_of(name).stat().st_size
    assert index.stamp.mtime_ns == os.stat(golden.path_of(name)).st_mtime_ns


@pytest.mark.parametrize("name", PLAIN)
def test_binary_round_trip(name: str) -> None:
    index = build_index(str(golden.path_of(name)))
    back = decode_index(encode_index(index), path="x.idx")
    assert back.offsets.tolist() == index.offsets.tolist()
    assert back.stamp == index.stamp


def test_binary_round_trip_keeps_the_etag() -> None:
    index = RecordIndex(np.array([0, 20, 57], dtype=np.uint64), DataStamp(size=100, etag='"abc-2"'))
    back = decode_index(encode_index(index), path="x.idx")
    assert back.stamp == index.stamp
    assert back.framed_sizes().tolist() == [20, 37, 43]


@pytest.mark.parametrize("tool_style", ["dali", "pypi-tfrecord"])
@pytest.mark.parametrize("name", PLAIN)
def test_text_indexes_of_the_other_tools_read(name: str, tool_style: str) -> None:
    # DALI's script ends every line with a newline; some copies of PyPI tfrecord's omit the last.
    text = text_index_as_tools_write_it(golden.path_of(name), trailing_newline=tool_style == "dali")
    size = golden.path_of(name).stat().st_size
    index = decode_index(text, path="x.idx", data_size=size)
    assert index.offsets.tolist() == expected_offsets(name)
    assert index.stamp.size == size
    assert encode_text_index(index) == text_index_as_tools_write_it(golden.path_of(name))


def test_sidecar_beside_the_data_and_elsewhere(tmp_path: Path) -> None:
    assert sidecar_path("s3://b/train-00001.tfrecord") == "s3://b/train-00001.tfrecord" + INDEX_SUFFIX
    assert sidecar_path("/d/a.tfrecord", "s3://b/idx/") == "s3://b/idx/a.tfrecord" + INDEX_SUFFIX
    data = tmp_path / "a.tfrecord"
    data.write_bytes(b"".join(encode_frame(b"r%d" % i) for i in range(5)))
    assert find_index(str(data)) is None
    write_index(build_index(str(data)), sidecar_path(str(data)))
    found = find_index(str(data))
    assert found is not None
    assert len(found) == 5


def test_globs_never_match_our_sidecars(tmp_path: Path) -> None:
    data = tmp_path / "train-0.tfrecord"
    data.write_bytes(encode_frame(b"x"))
    write_index(build_index(str(data)), sidecar_path(str(data)))
    assert list(tfr.TFRecordDataset(str(tmp_path / "train-*"))) == [b"x"]


def damaged(blob: bytes, at: int) -> bytes:
    out = bytearray(blob)
    out[at] ^= 0x10
    return bytes(out)


@pytest.mark.parametrize("where", ["magic", "count", "offset", "crc", "truncated"])
def test_damaged_binary_index_is_a_corrupt_index_error(where: str) -> None:
    index = build_index(str(golden.path_of("examples_none.tfrecord")))
    blob = encode_index(index)
    bad = {
        "magic": damaged(blob, 3),
        "count": damaged(blob, 16),
        "offset": damaged(blob, len(blob) - 30),
        "crc": damaged(blob, len(blob) - 1),
        "truncated": blob[:-9],
    }[where]
    with pytest.raises(tfr.CorruptIndexError) as caught:
        decode_index(bad, path="the.idx")
    assert caught.value.path == "the.idx"
    assert "the.idx" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [b"0 20\n21 30\n", b"0 20\nnot numbers\n", b"5 20\n25 30\n", b"0 10\n10 30\n", b"\x00\xff garbage"],
)
def test_inconsistent_text_index_is_a_corrupt_index_error(text: bytes) -> None:
    with pytest.raises(tfr.CorruptIndexError):
        decode_index(text, path="t.idx")


def test_stale_index_after_the_file_changed(tmp_path: Path) -> None:
    data = tmp_path / "a.tfrecord"
    data.write_bytes(b"".join(encode_frame(b"%03d" % i) for i in range(10)))
    index = build_index(str(data))
    index.check_fresh(build_index(str(data)).stamp, path="i", data_path=str(data))
    # Same size, new contents: the mtime tells.
    data.write_bytes(b"".join(encode_frame(b"%03d" % (i + 1)) for i in range(10)))
    os.utime(data, ns=(1, index.stamp.mtime_ns + 1_000_000))
    with pytest.raises(tfr.StaleIndexError) as caught:
        index.check_fresh(build_index(str(data)).stamp, path="i", data_path=str(data))
    assert "tfrecord-s3 index" in str(caught.value)
    # Appended records: the size tells, even for a text index (no stamp).
    text = decode_index(encode_text_index(index), path="t.idx")
    with data.open("ab") as f:
        f.write(encode_frame(b"more"))
    with pytest.raises(tfr.StaleIndexError):
        text.check_fresh(build_index(str(data)).stamp, path="t.idx", data_path=str(data))


def test_etag_tells_a_rewritten_object() -> None:
    index = RecordIndex(np.array([0], dtype=np.uint64), DataStamp(size=17, etag='"one"'))
    index.check_fresh(DataStamp(size=17, etag='"one"'), path="i", data_path="s3://b/k")
    with pytest.raises(tfr.StaleIndexError):
        index.check_fresh(DataStamp(size=17, etag='"two"'), path="i", data_path="s3://b/k")


def test_damaged_data_gets_no_index(tmp_path: Path) -> None:
    name = golden.corrupted_files()[0]
    bad = golden.write_corrupted(name, tmp_path)
    if golden.corruption()["files"][name]["compression"]:
        pytest.skip("first corrupted file is compressed")
    with pytest.raises(tfr.RecordError):
        build_index(str(bad))


def test_writer_writes_the_index_as_it_goes(tmp_path: Path) -> None:
    path = str(tmp_path / "w.tfrecord")
    records = [os.urandom(n) for n in (0, 1, 700, 70_000, 3)]
    with tfr.TFRecordWriter(path, index=True) as writer:
        for record in records:
            writer.write(record)
    index = read_index(sidecar_path(path))
    assert index.offsets.tolist() == build_index(path).offsets.tolist()
    assert index.stamp == build_index(path).stamp


def test_writer_index_refuses_compression(tmp_path: Path) -> None:
    with pytest.raises(tfr.ConfigError, match="compressed"):
        tfr.TFRecordWriter(str(tmp_path / "w.tfrecord.gz"), "GZIP", index=True)


def test_writer_leaves_no_index_after_an_error(tmp_path: Path) -> None:
    path = tmp_path / "w.tfrecord"
    with pytest.raises(RuntimeError), tfr.TFRecordWriter(str(path), index=True) as writer:
        writer.write(b"x")
        raise RuntimeError("boom")
    assert not Path(sidecar_path(str(path))).exists()


def test_cli_index_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for f in range(3):
        p = tmp_path / f"part-{f}.tfrecord"
        p.write_bytes(b"".join(encode_frame(b"f%d-%d" % (f, i)) for i in range(10 + f)))
        paths.append(str(p))
    assert main(["index", str(tmp_path / "part-*.tfrecord")]) == 0
    out = capsys.readouterr().out
    assert "33  total (3 files indexed)" in out
    for p in paths:
        assert read_index(sidecar_path(p)).offsets.tolist() == build_index(p).offsets.tolist()
    assert main(["index", "--text", "--out-dir", str(tmp_path / "idx"), paths[0]]) != 0  # no such directory
    (tmp_path / "idx").mkdir()
    assert main(["index", "--text", "--out-dir", str(tmp_path / "idx"), paths[0]]) == 0
    text = (tmp_path / "idx" / "part-0.tfrecord.idx").read_bytes()
    assert text == text_index_as_tools_write_it(Path(paths[0]))


def test_cli_index_refuses_compressed_and_damaged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(golden.path_of("examples_gzip.tfrecord.gz"))]) == 2
    assert "compressed" in capsys.readouterr().err
    data = tmp_path / "cut.tfrecord"
    data.write_bytes(golden.path_of("raw_records.tfrecord").read_bytes()[:-3])
    assert main(["index", str(data)]) == 5
    assert not Path(sidecar_path(str(data))).exists()
