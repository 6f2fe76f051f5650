"""The command line's messages and options that say what to do (as a subprocess)."""

from __future__ import annotations

import fcntl
import gzip
import os
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.cli.conftest import REPO, CliS3, run_cli
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


def test_bucket_without_key_is_a_clear_usage_error(cli_s3: CliS3) -> None:
    result = run_cli("count", f"s3://{cli_s3.bucket}", env=cli_s3.env)
    assert result.code == 2
    assert result.one_error_line() == (
        f"tfrecord-s3: error: s3://{cli_s3.bucket} is a bucket, not a file: to read the files in it, pass a glob "
        f"such as 's3://{cli_s3.bucket}/*' (or 's3://{cli_s3.bucket}/*.tfrecord')"
    )


def test_prefix_that_ls_lists_is_not_reported_missing(cli_s3: CliS3) -> None:
    cli_s3.put("train/part-0.tfrecord", BLOB)
    assert run_cli("ls", f"s3://{cli_s3.bucket}/train", env=cli_s3.env).code == 0
    result = run_cli("count", f"s3://{cli_s3.bucket}/train", env=cli_s3.env)
    assert result.code == 2
    assert result.one_error_line() == (
        f"tfrecord-s3: error: s3://{cli_s3.bucket}/train is a prefix (a directory), not a file: to read the files "
        f"in it, pass a glob such as 's3://{cli_s3.bucket}/train/*' (or 's3://{cli_s3.bucket}/train/*.tfrecord')"
    )


def test_local_directory_is_a_usage_error_suggesting_a_glob(tmp_path: Path) -> None:
    result = run_cli("count", str(tmp_path))
    assert result.code == 2
    assert result.one_error_line() == (
        f"tfrecord-s3: error: {tmp_path} is a directory, not a file: to read the files in it, pass a glob such as "
        f"'{tmp_path}/*' (or '{tmp_path}/*.tfrecord')"
    )


def test_unknown_profile_exits_2_naming_it(cli_s3: CliS3, tmp_path: Path) -> None:
    env = {**cli_s3.env, "AWS_PROFILE": "nosuch"}
    result = run_cli("count", f"s3://{cli_s3.bucket}/k.tfrecord", env=env)
    assert result.code == 2
    line = result.one_error_line()
    assert line.startswith("tfrecord-s3: error: AWS_PROFILE='nosuch': no such profile in ")
    assert line.endswith("create it (aws configure --profile nosuch) or set AWS_PROFILE to one that exists")


def test_stopped_server_names_the_endpoint(cli_s3: CliS3) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**cli_s3.env, "S3_ENDPOINT": f"127.0.0.1:{port}", "S3_USE_HTTPS": "0"}
    result = run_cli("count", f"s3://{cli_s3.bucket}/k.tfrecord", env=env)
    assert result.code == 6
    assert result.one_error_line() == (
        f"tfrecord-s3: error: stat s3://{cli_s3.bucket}/k.tfrecord: cannot connect to http://127.0.0.1:{port} "
        "(Connection refused): check that a server listens there, and S3_ENDPOINT (HOST:PORT) and S3_USE_HTTPS"
    )


@pytest.mark.parametrize("path", ["gs://bucket/train-0.tfrecord", "s3:/bucket/train-0.tfrecord"])
def test_unsupported_or_mistyped_scheme_is_a_usage_error(path: str) -> None:
    result = run_cli("count", path)
    assert result.code == 2
    line = result.one_error_line()
    assert "(paths are local, file:// or s3://)" in line
    if path.startswith("gs:"):
        assert "S3_ENDPOINT=storage.googleapis.com:443" in line
    else:
        assert "did you mean 's3://bucket/train-0.tfrecord'?" in line


def run_on_terminal(*args: str) -> str:
    """Run the command line with stdout and stderr on one pseudo-terminal, as in a shell;
    returns everything the terminal received."""
    master, slave = os.openpty()
    # A new pseudo-terminal is 0 columns wide, where tqdm draws nothing: make it 100 x 40.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "tfrecord_s3", *args], stdout=slave, stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    received = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, received.decode(errors="replace")
    return received.decode(errors="replace").replace("\r\n", "\n")


def test_result_lines_are_not_glued_to_the_progress_bar(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        path = tmp_path / f"part-{i}.tfrecord"
        path.write_bytes(BLOB)
        paths.append(str(path))
    screen = run_on_terminal("count", *paths)
    assert "count:" in screen  # a bar was drawn (stdout is a terminal)
    lines = screen.split("\n")
    for path in paths:
        [line] = [line for line in lines if line.rstrip().endswith(path)]
        # What stays visible of the line: the text after the last carriage return.
        assert line.split("\r")[-1].rstrip() == f"{20:>12}  {path}", repr(line)
    [total] = [line for line in lines if "total (4 files)" in line]
    assert total.split("\r")[-1].rstrip() == f"{80:>12}  total (4 files)"


def test_version_names_the_compiled_kernels() -> None:
    result = run_cli("--version")
    assert result.code == 0
    from tfrecord_s3 import __version__

    first, *kernels = result.out.splitlines()
    assert first == f"tfrecord-s3 {__version__}"
    assert [line.split(":")[0].strip() for line in kernels] == [
        "tfrecord_s3.records._native (record framing)",
        "tfrecord_s3.decode._native (Example decoding)",
    ]
    off = run_cli("--version", env={"TFRECORD_S3_PURE_PYTHON": "1"}).out.splitlines()[1:]
    assert all(line.endswith("pure Python") for line in off), off


def test_version_says_when_the_kernels_are_not_built() -> None:
    code = (
        "import sys; sys.modules['tfrecord_s3.records._native'] = None; "
        "sys.modules['tfrecord_s3.decode._native'] = None; "
        "from tfrecord_s3.cli import main; sys.exit(main(['--version']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True, timeout=60
    ).stdout
    assert out.splitlines()[1:] == [
        f"  tfrecord_s3.{kind}._native ({what}): not built: pure Python (slower; install from source with a C "
        "compiler to build it)"
        for kind, what in (("records", "record framing"), ("decode", "Example decoding"))
    ]
