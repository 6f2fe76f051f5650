"""Run the command line as a person would: a subprocess, ``python -m tfrecord_s3 ...``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

# S3 settings of the parent process never leak into the child unless a test passes them.
_S3_VARS = (
    "S3_ENDPOINT",
    "S3_USE_HTTPS",
    "S3_VERIFY_SSL",
    "S3_CONNECT_TIMEOUT_MSEC",
    "S3_REQUEST_TIMEOUT_MSEC",
    "S3_CA_FILE",
)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def one_error_line(self) -> str:
        """The single ``tfrecord-s3: error: ...`` line on stderr (and no traceback)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert "Traceback" not in self.err, self.err
        assert len(lines) == 1, self.err
        assert lines[0].startswith("tfrecord-s3: error: "), lines[0]
        return lines[0]


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> Result:
    child_env = {k: v for k, v in os.environ.items() if k not in _S3_VARS}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    child_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "tfrecord_s3", *args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
        cwd=REPO,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli


@dataclass
class CliS3:
    """The shared moto server (tests/conftest.py ``s3_env``: a fresh bucket, fake keys, no
    ~/.aws) and the S3 variables to hand to the child process."""

    bucket: str
    env: dict[str, str]
    client: Any

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"


@pytest.fixture
def cli_s3(s3_env: Any) -> CliS3:
    # s3_env set the variables in this process with monkeypatch; run_cli passes the process
    # environment on but drops S3_* (so nothing leaks by accident): hand those over explicitly.
    env = {var: os.environ[var] for var in _S3_VARS if var in os.environ}
    return CliS3(bucket=s3_env.bucket, env=env, client=s3_env.client)
