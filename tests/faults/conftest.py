"""Fixtures for fault tests: a FaultProxy in front of the session's moto S3 server.

``fault_proxy`` checks on teardown that the proxy left no thread and no socket behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import MotoServer
from tests.faults.proxy import FaultProxy

FAULT_BUCKET = "fault-proxy-tests"


@pytest.fixture(scope="session")
def fault_upstream_url(moto_server: MotoServer) -> str:
    """URL of the session's moto S3 server (tests/conftest.py) that proxies forward to."""
    return moto_server.endpoint_url


def plain_s3_client(endpoint_url: str, *, timeout: float = 5.0, max_attempts: int = 1) -> Any:
    """A boto3 S3 client with fake credentials, path-style, no retries, no checksums."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@pytest.fixture(scope="session")
def fault_bucket(fault_upstream_url: str) -> Iterator[str]:
    client = plain_s3_client(fault_upstream_url)
    client.create_bucket(Bucket=FAULT_BUCKET)
    yield FAULT_BUCKET
    client.close()


@pytest.fixture
def fault_proxy(fault_upstream_url: str) -> Iterator[FaultProxy]:
    before = {t.ident for t in threading.enumerate()}
    proxy = FaultProxy(fault_upstream_url).start()
    try:
        yield proxy
    finally:
        proxy.stop()
    assert proxy.open_sockets() == 0
    leaked = [t.name for t in threading.enumerate() if t.ident not in before and t.name.startswith("faultproxy")]
    assert leaked == []
