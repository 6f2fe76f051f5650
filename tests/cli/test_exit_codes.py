"""The exit code and the one-line message for every kind of error (in process: some kinds,
such as a 403, cannot be provoked from a local moto server)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tests import golden
from tests.cli.conftest import run_cli
from tfrecord_s3.cli import ExitCode
from tfrecord_s3.cli._errors import error_line, exit_code_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (tfr.ConfigError("S3_USE_HTTPS='maybe': expected 1 or 0"), 2),
        (tfr.ObjectNotFoundError("s3://b/k: NoSuchKey", path="s3://b/k"), 3),
        (tfr.AccessDeniedError("s3://b/k: AccessDenied", path="s3://b/k"), 4),
        (tfr.CorruptRecordError("f at byte 5: corrupted", path="f", offset=5, part="data"), 5),
        (tfr.TruncatedRecordError("f at byte 5: truncated", path="f", offset=5), 5),
        (tfr.RecordTooLargeError("f at byte 0: too large", path="f", offset=0, part="length"), 5),
        (tfr.RetriesExhaustedError("s3://b/k: gave up", path="s3://b/k", attempts=8), 6),
        (tfr.ObjectChangedError("s3://b/k: changed", path="s3://b/k"), 6),
        (tfr.StorageError("s3://b/k: EndpointConnectionError", path="s3://b/k"), 6),
        (tfr.DecodeError("f at byte 0: not an Example", path="f", offset=0), 7),
        (RuntimeError("a bug"), 70),
        (KeyboardInterrupt(), 130),
    ],
)
def test_each_error_kind_has_its_own_code(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code
    line = error_line(error)
    assert line.startswith("tfrecord-s3: error: ")
    assert "\n" not in line


def test_the_path_is_named_once() -> None:
    assert (
        error_line(tfr.ObjectNotFoundError("NoSuchKey", path="s3://b/k")) == "tfrecord-s3: error: s3://b/k: NoSuchKey"
    )
    assert error_line(tfr.ObjectNotFoundError("s3://b/k: NoSuchKey", path="s3://b/k")) == (
        "tfrecord-s3: error: s3://b/k: NoSuchKey"
    )


def test_codes_are_distinct() -> None:
    values = [code.value for code in ExitCode]
    assert len(values) == len(set(values))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: no permission error to provoke")
def test_unreadable_local_file_exits_access_denied(tmp_path: Path) -> None:
    path = tmp_path / "locked.tfrecord"
    path.write_bytes(golden.path_of("one_empty_record.tfrecord").read_bytes())
    path.chmod(0)
    result = run_cli("count", str(path))
    assert result.code == 4
    assert str(path) in result.one_error_line()


def test_main_returns_the_code_in_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tfrecord_s3.cli import main

    assert main(["count", str(golden.path_of("one_empty_record.tfrecord"))]) == 0
    assert capsys.readouterr().out.split()[0] == "1"
    assert main(["stat", str(tmp_path / "missing")]) == 3
    assert capsys.readouterr().err.startswith("tfrecord-s3: error: ")
