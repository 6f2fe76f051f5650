"""Shared fixtures: a real S3 server (moto, on 127.0.0.1) configured the way a user would.

``moto_server``  (session)   the running ThreadedMotoServer's ``MotoServer(host, port, endpoint_url)``
``moto_admin_client`` (session) a plain boto3 client for it (fake keys, path-style)
``s3_server``    (session)   the S3 server of the test: moto, unless the test is parametrized
                             over the real servers (``tests.servers.pool.parametrize_servers``)
``s3_env``       (function)  TensorFlow's S3 variables set with monkeypatch to point at that
                             server, no ~/.aws leakage, a fresh bucket; yields :class:`S3Env`
``s3_counter``   (function)  an :class:`HttpCounter` of the HTTP requests our clients send
``tf_python``    (session)   ``Path`` of a python with TensorFlow 2.16 and this clone's
                             tfrecord_s3 importable (see tests/tensorflow_env.py); skips when
                             TensorFlow cannot be installed here
"""

from __future__ import annotations

import functools
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from hypothesis import settings
from moto.server import ThreadedMotoServer

from tests import tensorflow_env
from tests.servers.base import S3Server, ServerUnavailable
from tests.servers.pool import ServerPool, skip_unlisted, summary_lines
from tfrecord_s3.storage import s3_client

# No per-example deadline anywhere: it is a timed assert, and on a loaded 2-core machine an
# example's first run (imports, warm caches) can miss hypothesis' 200 ms at random. Slow code
# shows in benchmarks/, not here. (`no-deadline` is kept for .ci/run's explicit flag.)
settings.register_profile("no-deadline", deadline=None)
settings.register_profile("tfrecord-s3", deadline=None)
settings.load_profile("tfrecord-s3")

FAKE_KEY_ID = "AKIAFAKEFAKEFAKEFAKE"
FAKE_SECRET = "fake/secret+never+printed/0123456789abcd"


#: Variables from the machine (profiles, endpoints, tokens, TLS and timeout settings) that a
#: test clears, so only what it sets itself reaches the library.
MACHINE_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "S3_VERIFY_SSL",
    "S3_CA_FILE",
    "S3_CONNECT_TIMEOUT_MSEC",
    "S3_REQUEST_TIMEOUT_MSEC",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip_unlisted(items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in summary_lines():
        terminalreporter.write_line(line)


@dataclass(frozen=True)
class MotoServer:
    host: str
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class S3Env:
    """One test's bucket on its S3 server, with a plain boto3 client to set things up."""

    bucket: str
    endpoint_url: str
    port: int
    client: Any
    secret: str = FAKE_SECRET
    key_id: str = FAKE_KEY_ID
    server: str = "moto"

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        return self.url(key)

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())


@dataclass
class HttpCounter:
    """HTTP requests sent by tfrecord_s3's boto3 clients, by operation name (e.g.
    "HeadObject", "GetObject"), counted at botocore's before-send hook: every try, including
    botocore's own retries, is one request on the wire."""

    counts: Counter[str] = field(default_factory=Counter)

    def __call__(self, request: Any = None, **kwargs: Any) -> None:
        name = kwargs.get("event_name", "")
        self.counts[name.rsplit(".", 1)[-1]] += 1

    def reset(self) -> None:
        self.counts.clear()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(host, port)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_admin_client(moto_server: MotoServer) -> Iterator[Any]:
    """A plain boto3 client (explicit fake credentials) for setting up and inspecting
    buckets; independent of the environment and of tfrecord_s3's client cache."""
    client = admin_client(moto_server.endpoint_url)
    yield client
    client.close()


def admin_client(endpoint_url: str, *, key_id: str = FAKE_KEY_ID, secret: str = FAKE_SECRET) -> Any:
    """A plain boto3 client straight to the S3 server, to set a test's objects up."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture(scope="session")
def s3_server_pool() -> Iterator[ServerPool]:
    """The real servers (Swift, Ceph RGW) of this session, each started on first use."""
    pool = ServerPool()
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest, moto_server: MotoServer) -> S3Server:
    """The test's S3 server (``request.param``: its name; moto when not parametrized); a
    server that cannot run here skips its tests with the reason."""
    name = getattr(request, "param", "moto")
    if name == "moto":
        return S3Server("moto", "moto", moto_server.endpoint_url, FAKE_KEY_ID, FAKE_SECRET, verifies_signatures=False)
    pool: ServerPool = request.getfixturevalue("s3_server_pool")
    try:
        return pool.get(name)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))


@functools.cache
def _session_admin(endpoint_url: str, key_id: str, secret: str) -> Any:
    # One per server for the session: a real server outlives its fixture instance.
    return admin_client(endpoint_url, key_id=key_id, secret=secret)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3Env]:
    """Environment exactly as a TensorFlow user sets it, and a fresh bucket."""
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    for var in MACHINE_AWS_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    monkeypatch.setenv("S3_ENDPOINT", s3_server.host_port)
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    s3_client.clear_client_cache()
    client = _session_admin(s3_server.endpoint_url, s3_server.key_id, s3_server.secret)
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield S3Env(
            bucket=bucket,
            endpoint_url=s3_server.endpoint_url,
            port=s3_server.port,
            client=client,
            secret=s3_server.secret,
            key_id=s3_server.key_id,
            server=s3_server.name,
        )
    finally:
        s3_client.clear_client_cache()


@pytest.fixture
def s3_counter(s3_env: S3Env) -> Iterator[HttpCounter]:
    """Counts the HTTP requests of every boto3 client tfrecord_s3 creates during the test."""
    counter = HttpCounter()
    s3_client.clear_client_cache()

    def hook(client: Any, config: Any, role: Any) -> None:
        client.meta.events.register("before-send.s3", counter)

    remove = s3_client.add_client_hook(hook)
    try:
        yield counter
    finally:
        remove()
        s3_client.clear_client_cache()


@pytest.fixture(scope="session")
def tf_python() -> Path:
    """A python executable where TensorFlow 2.16 and this clone's tfrecord_s3 both import; run
    it with ``tensorflow_env.subprocess_env()``. Built on first use under .ci-venvs/ (or
    ``$TFR_TEST_TF_PYTHON``); skips, saying why, only when pip cannot install TensorFlow, or
    when ``$TFR_TEST_SKIP_TENSORFLOW`` is set (.ci/run's side venvs: they test other things)."""
    if os.environ.get("TFR_TEST_SKIP_TENSORFLOW"):
        pytest.skip("TFR_TEST_SKIP_TENSORFLOW is set: the TensorFlow tests run in the main test run")
    try:
        return tensorflow_env.tensorflow_python()
    except tensorflow_env.TensorFlowUnavailable as exc:
        pytest.skip(f"TensorFlow 2.16 cannot be installed here: {exc}")
