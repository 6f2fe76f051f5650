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
class S3Env:
    """A running local S3 server and the environment that points the CLI at it."""

    endpoint: str
    env: dict[str, str]
    client: Any

    def put(self, bucket: str, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"


@pytest.fixture(scope="session")
def s3_server() -> Any:
    """moto's S3 server on 127.0.0.1 (a free port) for the whole session."""
    import boto3

    from tfrecord_s3.demo_server import LocalS3Server

    with LocalS3Server() as server:
        env = server.environ()
        client = boto3.client(
            "s3",
            endpoint_url=server.url,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        yield S3Env(server.endpoint, env, client)


_bucket_counter = iter(range(1_000_000))


@pytest.fixture
def bucket(s3_server: S3Env) -> str:
    """A fresh, empty bucket for one test."""
    name = f"cli-test-{os.getpid()}-{next(_bucket_counter)}"
    s3_server.client.create_bucket(Bucket=name)
    return name
