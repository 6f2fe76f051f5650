"""Subcommands over s3:// paths on a local moto server, as a subprocess, including failures:
a missing key or bucket, a corrupted object, a wrong endpoint, a bad environment value."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import pytest

from tests import golden
from tests.cli.conftest import CliS3, run_cli

# Small files only: moto re-reads a whole object for every ranged GET.
FILES = ("raw_records.tfrecord", "sequence_examples.tfrecord", "examples_gzip.tfrecord.gz", "one_empty_record.tfrecord")


@pytest.fixture
def dataset(cli_s3: CliS3) -> dict[str, str]:
    """The golden files uploaded under s3://bucket/data/; name -> s3 path."""
    return {name: cli_s3.put(f"data/{name}", golden.path_of(name).read_bytes()) for name in FILES}


def num_records(name: str) -> int:
    return int(golden.expected()["files"][name]["num_records"])


def test_stat_object_and_prefix(cli_s3: CliS3, dataset: dict[str, str]) -> None:
    path = dataset["raw_records.tfrecord"]
    [obj] = run_cli("stat", "--json", path, env=cli_s3.env).json_lines()
    assert obj["length"] == golden.path_of("raw_records.tfrecord").stat().st_size
    assert obj["is_directory"] is False
    assert obj["mtime_nsec"] > 0
    [prefix] = run_cli("stat", "--json", f"s3://{cli_s3.bucket}/data", env=cli_s3.env).json_lines()
    assert prefix["is_directory"] is True


def test_ls_glob_and_prefix(cli_s3: CliS3, dataset: dict[str, str]) -> None:
    expected = {dataset[name]: golden.path_of(name).stat().st_size for name in FILES}
    for pattern in (f"s3://{cli_s3.bucket}/data/*", f"s3://{cli_s3.bucket}/data/"):
        entries = run_cli("ls", "--json", pattern, env=cli_s3.env).json_lines()
        assert {e["path"]: e["length"] for e in entries} == expected, pattern


def test_count_s3_glob(cli_s3: CliS3, dataset: dict[str, str]) -> None:
    result = run_cli("count", "--json", f"s3://{cli_s3.bucket}/data/*", env=cli_s3.env)
    assert result.code == 0, result.err
    *files, total = result.json_lines()
    assert {f["path"]: f["records"] for f in files} == {dataset[n]: num_records(n) for n in FILES}
    assert total["total"] == sum(num_records(n) for n in FILES)


def test_head_raw_from_s3(cli_s3: CliS3, dataset: dict[str, str]) -> None:
    name = "raw_records.tfrecord"
    lines = run_cli("head", "--raw", "-n", "5", dataset[name], env=cli_s3.env).json_lines()
    digests = [hashlib.sha256(base64.b64decode(line["raw"])).hexdigest() for line in lines]
    assert digests == golden.expected()["files"][name]["record_sha256"][:5]


def test_head_decodes_sequence_examples_from_s3(cli_s3: CliS3, dataset: dict[str, str]) -> None:
    lines = run_cli("head", "-n", "3", dataset["sequence_examples.tfrecord"], env=cli_s3.env).json_lines()
    expected = golden.expected()["files"]["sequence_examples.tfrecord"]["records"]
    assert len(lines) == 3
    for line, record in zip(lines, expected[:3], strict=True):
        assert line["context"]["length"] == record["context"]["length"]["value"]


def test_verify_reports_a_corrupted_object(cli_s3: CliS3, tmp_path: Path) -> None:
    damaged = golden.write_corrupted("corrupt_length_bitflip.tfrecord", tmp_path).read_bytes()
    bad = cli_s3.put("bad/part-0.tfrecord", damaged)
    good = cli_s3.put("bad/part-1.tfrecord", golden.path_of("raw_records.tfrecord").read_bytes())
    result = run_cli("verify", f"s3://{cli_s3.bucket}/bad/*", env=cli_s3.env)
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith(f"BAD  {bad}  offset 4253  corrupt-length:")
    assert lines[1] == f"OK   {good}  (20 records)"
    counted = run_cli("count", bad, env=cli_s3.env)
    assert counted.code == 5
    assert f"{bad} at byte 4253" in counted.one_error_line()


def test_missing_key_and_bucket_exit_not_found(cli_s3: CliS3) -> None:
    missing_key = f"s3://{cli_s3.bucket}/no/such.tfrecord"
    missing_bucket = "s3://no-such-bucket-here/x.tfrecord"
    for command, path in [(c, missing_key) for c in ("stat", "count", "verify", "head")] + [("count", missing_bucket)]:
        result = run_cli(command, path, env=cli_s3.env)
        assert result.code == 3, (command, path, result.err)
        assert path in result.one_error_line()
    nothing = run_cli("count", f"s3://{cli_s3.bucket}/none-*.tfrecord", env=cli_s3.env)
    assert nothing.code == 3
    assert "no files match" in nothing.one_error_line()


def test_wrong_endpoint_fails_fast_with_the_storage_code(cli_s3: CliS3) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on: bind, never listen
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        env = {**cli_s3.env, "S3_ENDPOINT": f"127.0.0.1:{port}", "S3_CONNECT_TIMEOUT_MSEC": "200"}
        started = time.monotonic()
        result = run_cli("count", "s3://some-bucket/x.tfrecord", env=env)
        elapsed = time.monotonic() - started
    assert result.code == 6, result.err
    line = result.one_error_line()
    assert "s3://some-bucket/x.tfrecord" in line
    assert elapsed < 20


@pytest.mark.parametrize(
    ("variable", "value"),
    [("S3_USE_HTTPS", "maybe"), ("S3_CONNECT_TIMEOUT_MSEC", "soon"), ("S3_VERIFY_SSL", "2")],
)
def test_bad_environment_value_is_a_config_error(cli_s3: CliS3, variable: str, value: str) -> None:
    result = run_cli("stat", "s3://b/k", env={**cli_s3.env, variable: value})
    assert result.code == 2
    line = result.one_error_line()
    assert variable in line
    assert value in line
