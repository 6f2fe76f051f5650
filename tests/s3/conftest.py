"""S3 test fixtures: every test here runs on each S3 server (moto, Swift, Ceph RGW; see
tests/servers/pool.py), and the fault proxy in front of the test's server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.servers.pool import parametrize_servers
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
