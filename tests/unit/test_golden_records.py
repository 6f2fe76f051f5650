"""Every golden file read as TensorFlow read it; every corrupted file fails where TensorFlow says."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tests import golden


def sha(records: list[bytes]) -> list[str]:
    return [hashlib.sha256(r).hexdigest() for r in records]


@pytest.mark.parametrize("name", golden.golden_files())
def test_records_match_tensorflow(name: str) -> None:
    info = golden.expected()["files"][name]
    records = list(tfr.tf_record_iterator(str(golden.path_of(name)), info["compression"] or None))
    assert len(records) == info["num_records"]
    assert [len(r) for r in records] == info["record_lengths"]
    assert sha(records) == info["record_sha256"]


@pytest.mark.parametrize("name", golden.golden_files())
def test_auto_compression_by_extension(name: str) -> None:
    info = golden.expected()["files"][name]
    records = list(tfr.tf_record_iterator(str(golden.path_of(name)), "auto"))
    assert sha(records) == info["record_sha256"]


def test_file_scheme_reads_like_a_path() -> None:
    path = golden.path_of("raw_records.tfrecord")
    assert list(tfr.tf_record_iterator(f"file://{path}")) == list(tfr.tf_record_iterator(str(path)))


# Where TensorFlow stops silently (a header cut short, trailing bytes) we raise instead.
_EXPECTED_ERROR = {
    "corrupt_data_bitflip.tfrecord": (tfr.CorruptRecordError, "data"),
    "corrupt_data_crc_bitflip.tfrecord": (tfr.CorruptRecordError, "data"),
    "corrupt_length_bitflip.tfrecord": (tfr.CorruptRecordError, "length"),
    "corrupt_length_crc_bitflip.tfrecord": (tfr.CorruptRecordError, "length"),
    "truncated_in_data.tfrecord": (tfr.TruncatedRecordError, None),
    "truncated_in_data_crc.tfrecord": (tfr.TruncatedRecordError, None),
    "truncated_in_header.tfrecord": (tfr.TruncatedRecordError, None),
    "trailing_garbage.tfrecord": (tfr.TruncatedRecordError, None),
    "examples_gzip_truncated.tfrecord.gz": (tfr.TruncatedRecordError, None),
}


@pytest.mark.parametrize("name", golden.corrupted_files())
def test_corrupted_files_fail_at_the_record_tensorflow_names(name: str, tmp_path: Path) -> None:
    info = golden.corruption()["files"][name]
    tf_run = info["tensorflow"]["tf_record_iterator"]
    path = golden.write_corrupted(name, tmp_path)
    seen: list[bytes] = []
    error_cls, part = _EXPECTED_ERROR[name]
    with pytest.raises(error_cls) as caught:
        for record in tfr.tf_record_iterator(str(path), info["compression"] or None):
            seen.append(record)
    # The same records first, exactly as TensorFlow yielded them.
    assert sha(seen) == tf_run["record_sha256"]
    error = caught.value
    assert error.path == str(path)
    assert str(path) in str(error)
    if tf_run["outcome"] == "error":
        # TensorFlow names the header offset for length damage and the data offset for data
        # damage; we always report the record's header offset (and mention the data offset).
        tf_offset = int(tf_run["error"]["message_core"].split(" at ")[1].split("'")[0])
        header_offset = info.get("target_record_offset", tf_offset)
        assert error.offset == header_offset
        assert f"byte {error.offset}" in str(error)
    else:
        # TensorFlow stopped silently: we raise at the first byte it did not turn into a record.
        assert error.offset == sum(len(r) + 16 for r in seen)
    if part is not None:
        assert error.part == part


def test_skip_after_data_crc_error_resumes_at_next_record(tmp_path: Path) -> None:
    path = golden.write_corrupted("corrupt_data_bitflip.tfrecord", tmp_path)
    base = list(tfr.tf_record_iterator(str(golden.path_of("raw_records.tfrecord"))))
    skipped: list[tfr.CorruptRecordError] = []
    got = list(tfr.open_records(str(path), on_data_error=lambda e, size: skipped.append(e)))
    assert [e.offset for e in skipped] == [4253]
    assert got == base[:8] + base[9:]


def test_verify_crc_off_yields_the_damaged_record(tmp_path: Path) -> None:
    path = golden.write_corrupted("corrupt_data_crc_bitflip.tfrecord", tmp_path)
    base = list(tfr.tf_record_iterator(str(golden.path_of("raw_records.tfrecord"))))
    assert list(tfr.tf_record_iterator(str(path), verify_crc=False)) == base


def test_missing_file_is_object_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tfrecord"
    with pytest.raises(tfr.ObjectNotFoundError) as caught:
        tfr.tf_record_iterator(str(missing))
    assert isinstance(caught.value, FileNotFoundError)
    assert str(missing) in str(caught.value)
