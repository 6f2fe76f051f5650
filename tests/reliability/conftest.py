"""Fixtures for the reliability scenarios: a FaultProxy in front of the session's moto
server, a fresh bucket, and TensorFlow's variables pointing the library at the proxy."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MotoServer
from tests.faults.proxy import FaultProxy
from tests.reliability.world import World, admin_client, environment, reader_env


@pytest.fixture(scope="session")
def reliability_admin(moto_server: MotoServer) -> Iterator[Any]:
    client = admin_client(moto_server.endpoint_url)
    yield client
    client.close()


@pytest.fixture
def world(moto_server: MotoServer, reliability_admin: Any, tmp_path: Path) -> Iterator[World]:
    """A bucket behind a fresh proxy; on teardown the proxy must have left no socket or
    thread, and the library no read-ahead or prefetch thread."""
    empty = tmp_path / "aws-empty"
    empty.write_text("")
    proxy = FaultProxy(moto_server.endpoint_url).start()
    try:
        with environment(reader_env(proxy.port, str(empty))):
            yield World.create(proxy, reliability_admin)
    finally:
        proxy.stop()
    assert proxy.open_sockets() == 0
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith(("tfrecord-s3", "faultproxy"))]
    assert leftovers == []
