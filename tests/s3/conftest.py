"""S3 test fixtures: every test here runs on each S3 server (moto, Swift, Ceph RGW; see
tests/servers/pool.py), and the fault proxy in front of the test's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.servers.pool import parametrize_servers
from tests.servers.tls import Certificates, TlsFront, make_certificates
from tfrecord_s3.storage import s3_client


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_servers(metafunc)


@pytest.fixture
def s3_proxy(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A FaultProxy in front of the test's S3 server, with S3_ENDPOINT pointing at it (as a
    user would set it) and short timeouts; checks that it leaked no socket or thread."""
    proxy = FaultProxy(s3_env.endpoint_url).start()
    monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{proxy.port}")
    monkeypatch.setenv("S3_CONNECT_TIMEOUT_MSEC", "2000")
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "2000")
    s3_client.clear_client_cache()
    try:
        yield proxy
    finally:
        s3_client.clear_client_cache()
        proxy.stop()
    assert proxy.open_sockets() == 0


@pytest.fixture(scope="session")
def tls_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA made for this session and a certificate it signed for 127.0.0.1."""
    return make_certificates(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def tls_front(s3_env: S3Env, tls_certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsFront]:
    """A TLS front for the test's S3 server, with S3_ENDPOINT pointing at it, S3_USE_HTTPS=1
    and no CA configured (each test sets the TLS variables it is about)."""
    host, port = s3_env.endpoint_url.split("://", 1)[1].rsplit(":", 1)
    front = TlsFront((host, int(port)), tls_certificates).start()
    monkeypatch.setenv("S3_ENDPOINT", front.host_port)
    monkeypatch.setenv("S3_USE_HTTPS", "1")
    s3_client.clear_client_cache()
    try:
        yield front
    finally:
        s3_client.clear_client_cache()
        front.stop()


@pytest.fixture
def sent_gets(s3_env: S3Env) -> Iterator[list[dict[str, str]]]:
    """Headers of every GetObject our clients send (each try), in the order sent."""
    seen: list[dict[str, str]] = []

    def record(request: Any, **kwargs: Any) -> None:
        seen.append({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    def hook(client: Any, config: Any, role: Any) -> None:
        client.meta.events.register("before-send.s3.GetObject", record)

    s3_client.clear_client_cache()
    remove = s3_client.add_client_hook(hook)
    yield seen
    remove()
