"""Messages that say what to do: a compressed file read as plain TFRecord, a writer whose
file name says GZIP but which writes uncompressed."""

from __future__ import annotations

import gzip
import warnings
import zlib
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.records import writer as writer_module
from tfrecord_s3.records.framing import encode_frame, native_available
from tfrecord_s3.records.reader import open_records

BLOB = b"".join(encode_frame(b"record %d" % i) for i in range(50))
KERNELS = ["native", "python"] if native_available() else ["python"]


def hint(kind: str, magic: str, suffixes: str) -> str:
    return (
        f"at byte 0: corrupted record: length CRC mismatch: the file starts with a {kind.lower()} header "
        f'({magic}), so it looks {kind}-compressed; read it with compression_type="{kind}" '
        f'(or "auto" when its name ends in {suffixes})'
    )


@pytest.fixture(params=KERNELS)
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setenv("TFRECORD_S3_PURE_PYTHON", "1")
    return str(request.param)


@pytest.mark.parametrize(
    ("name", "data", "kind", "magic", "suffixes"),
    [
        ("a.tfrecord", gzip.compress(BLOB), "GZIP", "1f 8b", ".gz or .gzip"),
        ("b.tfrecord", zlib.compress(BLOB, 6), "ZLIB", "78 9c", ".zz or .zlib"),
        ("c.tfrecord", zlib.compress(BLOB, 1), "ZLIB", "78 01", ".zz or .zlib"),
        ("d.tfrecord", zlib.compress(BLOB, 9), "ZLIB", "78 da", ".zz or .zlib"),
        ("e.tfrecord", zlib.compress(BLOB, 3), "ZLIB", "78 5e", ".zz or .zlib"),
    ],
)
def test_compressed_file_read_as_plain_says_which_compression(
    tmp_path: Path, kernel: str, name: str, data: bytes, kind: str, magic: str, suffixes: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(tfr.CorruptRecordError) as caught:
        list(open_records(str(path), None))
    assert str(caught.value) == f"{path} " + hint(kind, magic, suffixes)
    assert (caught.value.offset, caught.value.part) == (0, "length")
    with pytest.raises(tfr.CorruptRecordError, match=f'compression_type="{kind}"'):
        list(TFRecordDataset(str(path)))
    assert len(list(open_records(str(path), kind))) == 50  # and the advice works


def test_plain_damage_at_byte_0_gets_no_compression_hint(tmp_path: Path, kernel: str) -> None:
    path = tmp_path / "plain.tfrecord"
    path.write_bytes(b"\x00" * 7 + b"\x01" + BLOB[8:])
    with pytest.raises(tfr.CorruptRecordError) as caught:
        list(open_records(str(path)))
    assert str(caught.value) == f"{path} at byte 0: corrupted record: length CRC mismatch"


def test_gzip_bytes_later_in_the_file_get_no_hint(tmp_path: Path, kernel: str) -> None:
    path = tmp_path / "later.tfrecord"
    path.write_bytes(encode_frame(b"ok") + gzip.compress(BLOB))
    with pytest.raises(tfr.CorruptRecordError) as caught:
        list(open_records(str(path)))
    assert str(caught.value) == f"{path} at byte 18: corrupted record: length CRC mismatch"


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "_warned_names", set())


def test_writer_warns_once_when_the_name_says_gzip(tmp_path: Path, fresh_warnings: None) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            with tfr.TFRecordWriter(str(tmp_path / f"part-{i}.tfrecord.gz")) as writer:
                writer.write(b"x")
    assert [w.category for w in caught] == [UserWarning]
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 'part-0.tfrecord.gz'}: the name says GZIP but the file is written uncompressed; "
        'pass compression_type="GZIP" (or "auto") to compress it, or rename it (this warning is given once)'
    ]
    assert caught[0].filename == __file__  # points at the caller's line


@pytest.mark.parametrize(
    ("name", "ctype"), [("a.tfrecord.gz", "GZIP"), ("a.tfrecord.gz", "auto"), ("a.tfrecord", None)]
)
def test_writer_does_not_warn_when_name_and_compression_agree(
    tmp_path: Path, fresh_warnings: None, name: str, ctype: str | None
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tfr.TFRecordWriter(str(tmp_path / name), ctype) as writer:
            writer.write(b"x")
    assert len(list(open_records(str(tmp_path / name), ctype))) == 1


def test_local_directory_where_a_file_is_expected_suggests_a_glob(tmp_path: Path) -> None:
    expected = (
        f"{tmp_path} is a directory, not a file: to read the files in it, pass a glob such as "
        f"'{tmp_path}/*' (or '{tmp_path}/*.tfrecord')"
    )
    with pytest.raises(tfr.ConfigError) as caught:
        list(open_records(str(tmp_path)))
    assert str(caught.value) == expected
    with pytest.raises(tfr.ConfigError) as in_dataset:
        list(TFRecordDataset(str(tmp_path)))
    assert str(in_dataset.value) == expected


SUPPORTED = "(paths are local, file:// or s3://)"
GCS = (
    "Google Cloud Storage is read through its S3 interoperability API: the same object as s3://bucket/a.tfrecord "
    'with S3_ENDPOINT=storage.googleapis.com:443 and an HMAC key (README: "Google Cloud Storage (S3 '
    'interoperability, HMAC keys)")'
)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("gs://bucket/a.tfrecord", f"gs://bucket/a.tfrecord: the gs:// scheme is not supported {SUPPORTED}; {GCS}"),
        (
            "s3:/bucket/a.tfrecord",
            f"'s3:/bucket/a.tfrecord' is not an s3:// URL: did you mean 's3://bucket/a.tfrecord'? {SUPPORTED}",
        ),
        (
            "S3://bucket/a.tfrecord",
            f"'S3://bucket/a.tfrecord' is not an s3:// URL: did you mean 's3://bucket/a.tfrecord'? {SUPPORTED}",
        ),
        (
            "file:/tmp/a.tfrecord",
            f"'file:/tmp/a.tfrecord' is not a file:// URL: did you mean 'file:///tmp/a.tfrecord'? {SUPPORTED}",
        ),
        ("hdfs://nn/a.tfrecord", f"hdfs://nn/a.tfrecord: the hdfs:// scheme is not supported {SUPPORTED}"),
    ],
)
def test_other_schemes_are_refused_not_read_as_local_paths(path: str, message: str) -> None:
    for call in (tfr.exists, tfr.stat, lambda p: list(open_records(p)), lambda p: list(TFRecordDataset(p))):
        with pytest.raises(tfr.ConfigError) as caught:
            call(path)
        assert str(caught.value) == message


def test_paths_with_colons_that_are_not_urls_stay_local(tmp_path: Path) -> None:
    path = tmp_path / "run-12:30" / "a.tfrecord"
    path.parent.mkdir()
    path.write_bytes(BLOB)
    assert len(list(open_records(str(path)))) == 50
    assert tfr.exists(f"file://{path}")
