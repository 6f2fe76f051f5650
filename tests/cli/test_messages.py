"""The command line's messages and options that say what to do (as a subprocess)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.cli.conftest import run_cli
from tfrecord_s3.records.framing import encode_frame

BLOB = b"".join(encode_frame(b"record %d" % i) for i in range(20))


@pytest.fixture
def gz_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.tfrecord"  # no .gz: "auto" cannot tell
    path.write_bytes(gzip.compress(BLOB))
    return path


@pytest.mark.parametrize("spelling", ["GZIP", "gzip", "Gzip"])
def test_compression_option_is_case_insensitive(gz_file: Path, spelling: str) -> None:
    result = run_cli("count", "--compression", spelling, str(gz_file))
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].split() == ["20", str(gz_file)]


def test_gzip_file_counted_as_plain_says_it_is_gzip(gz_file: Path) -> None:
    result = run_cli("count", "--compression", "none", str(gz_file))
    assert result.code == 5
    assert result.one_error_line() == (
        f"tfrecord-s3: error: {gz_file} at byte 0: corrupted record: length CRC mismatch: the file starts with "
        'a gzip header (1f 8b), so it looks GZIP-compressed; read it with compression_type="GZIP" '
        '(or "auto" when its name ends in .gz or .gzip)'
    )


def test_unknown_compression_is_still_refused(gz_file: Path) -> None:
    result = run_cli("count", "--compression", "LZ4", str(gz_file))
    assert result.code == 2
    assert "invalid choice: 'lz4'" in result.err
