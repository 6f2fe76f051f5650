"""A local S3 server for the benchmarks: s3rver (npm, pinned) on 127.0.0.1.

moto's server re-reads a whole object for every ranged GET (~44 MB/s on 256 MB), which would
measure moto rather than the clients, so the benchmarks use s3rver. Its quirks: it ignores
``If-Match`` and mishandles a range GET on a 0-byte object (we never upload empty objects here).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._common import REPO, WORK_DIR
from .peers._common import fetch_stats
from .shaper import PROFILES

S3RVER_VERSION = "3.7.1"
S3RVER_DIR = WORK_DIR / "s3rver"
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"


def s3rver_script() -> Path:
    """The s3rver entry script, installed into WORK_DIR/s3rver on first use."""
    script = S3RVER_DIR / "node_modules" / "s3rver" / "bin" / "s3rver.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm not found: install Node.js (Debian: apt-get install nodejs npm)")
        S3RVER_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(S3RVER_DIR),
                "--no-audit",
                "--no-fund",
                "--silent",
                f"s3rver@{S3RVER_VERSION}",
            ],
            check=True,
        )
    return script


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class S3rver:
    """A running s3rver; ``endpoint`` is its http URL."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
        self.process = process
        self.server_port = port
        #: Where clients connect: the server itself, or a shaping proxy in front of it.
        self.port = port
        self.directory = directory
        self.network = PROFILES["loopback"]
        self.stats_url: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def network_stats(self, *, reset: bool = False) -> dict[str, Any] | None:
        """The shaping proxy's counters (None on loopback); ``reset`` restarts its peaks."""
        if self.stats_url is None:
            return None
        return fetch_stats(self.stats_url, reset=reset)

    def credentials_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def env_ours(self) -> dict[str, str]:
        """TensorFlow's documented variables, as a user of our library sets them."""
        return {**self.credentials_env(), "S3_ENDPOINT": f"127.0.0.1:{self.port}", "S3_USE_HTTPS": "0"}

    def env_tfio(self) -> dict[str, str]:
        # tensorflow-io ignores S3_USE_HTTPS; only a full http:// endpoint keeps it off HTTPS.
        return {**self.credentials_env(), "S3_ENDPOINT": self.endpoint, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0"}

    def client(self, *, direct: bool = False) -> Any:  # mypy_boto3_s3.S3Client with boto3-stubs
        """A boto3 client through the network profile (``direct``: to the server itself)."""
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path"},
            # Recent botocore signs uploads with streaming trailer checksums s3rver cannot parse.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 2},
        )
        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.server_port}" if direct else self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=config,
        )

    def upload(self, bucket: str, files: Mapping[str, Path]) -> None:
        """Creates ``bucket`` (if needed) and PUTs each file under its key, in one request each,
        straight to the server (never through the network profile)."""
        client = self.client(direct=True)
        try:
            client.create_bucket(Bucket=bucket)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        for key, path in files.items():
            if path.stat().st_size == 0:
                raise ValueError(f"{path}: s3rver mishandles ranges on empty objects; not uploading")
            with path.open("rb") as body:
                client.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=path.stat().st_size)


def _wait_until_answering(process: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"s3rver exited with {process.returncode} before answering")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if sock.recv(12).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"s3rver did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


@contextmanager
def s3rver(*, startup_timeout: float = 30.0) -> Iterator[S3rver]:
    """Starts s3rver on a free loopback port with a fresh data directory; stops it (by PID) and
    removes the directory on exit."""
    script = s3rver_script()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="s3rver-data-", dir=WORK_DIR))
    port = _free_port()
    command = [
        node,
        "--openssl-legacy-provider",
        str(script),
        "--directory",
        str(directory),
        "--address",
        "127.0.0.1",
        "--port",
        str(port),
        "--silent",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_answering(process, port, startup_timeout)
        yield S3rver(process, port, directory)
    finally:
        _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def network(server: S3rver, profile: str, *, stragglers: str = "") -> Iterator[S3rver]:
    """Puts the shaping proxy of ``profile`` (benchmarks/shaper.py, its own process) between the
    clients and ``server`` for the block; "loopback" leaves them connected directly.
    ``stragglers``: the shaper's ``FRACTION:SECONDS`` (a share of responses that come late)."""
    shaped = PROFILES[profile].with_stragglers(stragglers) if stragglers else PROFILES[profile]
    if not shaped.shaped:
        yield server
        return
    with shaper(server.server_port, profile, stragglers=stragglers) as port:
        server.port = port
        server.network = shaped
        server.stats_url = f"http://127.0.0.1:{port}/__shaper__/"
        try:
            yield server
        finally:
            server.port, server.network, server.stats_url = server.server_port, PROFILES["loopback"], None


@contextmanager
def shaper(upstream_port: int, profile: str, *, stragglers: str = "") -> Iterator[int]:
    """The shaping proxy of ``profile`` in front of 127.0.0.1:``upstream_port``, in its own
    process, for the block; yields the port it listens on, stops it (by PID) after."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.shaper",
            "--upstream",
            f"127.0.0.1:{upstream_port}",
            "--profile",
            profile,
            *(["--stragglers", stragglers] if stragglers else []),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"shaper did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[Any]) -> None:
    """Terminate a process we started (by its PID), killing it if it does not exit."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Sets environment variables for the block and restores the previous values."""
    saved: dict[str, Any] = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
