"""The place a scenario runs in: a moto S3 server, a FaultProxy in front of it, a bucket,
and TensorFlow's environment variables pointing the library at the proxy.

Used by the pytest fixtures (tests/reliability/conftest.py) and by
``python -m benchmarks.reliability``, which runs the same scenarios outside pytest.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import MACHINE_AWS_VARIABLES
from tests.conftest import admin_client as shared_admin_client
from tests.faults.proxy import FaultProxy
from tfrecord_s3.config import S3Config
from tfrecord_s3.storage import s3_client

KiB = 1024
#: Small blocks, so a ~10 KiB object takes several ranged GETs.
BLOCK = 2 * KiB
FAKE_KEY_ID = "AKIARELIABILITYFAKE0"
FAKE_SECRET = "reliability/secret+never+shown/0123456789"
FAKE_TOKEN = "FwoGZXIvYXdzSESSIONTOKENnever+shown/abcdef0123456789"

#: Variables cleared so nothing from the machine (profiles, endpoints) leaks in.
_CLEARED = MACHINE_AWS_VARIABLES


def reader_env(proxy_port: int, config_file: str) -> dict[str, str]:
    """TensorFlow's S3 variables as a user sets them, pointing at the proxy."""
    return {
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_REGION": "us-east-1",
        "S3_ENDPOINT": f"127.0.0.1:{proxy_port}",
        "S3_USE_HTTPS": "0",
        "S3_CONNECT_TIMEOUT_MSEC": "2000",
        "S3_REQUEST_TIMEOUT_MSEC": "3000",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": config_file,
        "AWS_SHARED_CREDENTIALS_FILE": config_file,
    }


@contextmanager
def environment(values: Mapping[str, str], cleared: tuple[str, ...] = _CLEARED) -> Iterator[None]:
    """Set ``values`` (and unset ``cleared``) for the block; restore everything after."""
    names = set(values) | set(cleared)
    saved = {name: os.environ.get(name) for name in names}
    for name in cleared:
        os.environ.pop(name, None)
    os.environ.update(values)
    s3_client.clear_client_cache()
    try:
        yield
    finally:
        s3_client.clear_client_cache()
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def admin_client(endpoint_url: str) -> Any:
    """A plain boto3 client straight to the S3 server (not through the proxy)."""
    return shared_admin_client(endpoint_url, key_id=FAKE_KEY_ID, secret=FAKE_SECRET)


@dataclass
class World:
    """A bucket behind a fault proxy; the environment already points at the proxy."""

    proxy: FaultProxy
    admin: Any
    bucket: str
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @classmethod
    def create(cls, proxy: FaultProxy, admin: Any) -> World:
        bucket = f"rel-{uuid.uuid4().hex[:16]}"
        admin.create_bucket(Bucket=bucket)
        return cls(proxy, admin, bucket)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def put(self, name: str, data: bytes) -> str:
        self.admin.put_object(Bucket=self.bucket, Key=self.key(name), Body=data)
        return self.url(name)

    def delete(self, name: str) -> None:
        self.admin.delete_object(Bucket=self.bucket, Key=self.key(name))

    def config(self, environ: Mapping[str, str] | None = None, **overrides: Any) -> S3Config:
        """The environment's config with small blocks and fast backoff (tests stay quick)."""
        settings: dict[str, Any] = {
            "block_size": BLOCK,
            "backoff_base": 0.005,
            "backoff_max": 0.05,
            "throttle_backoff_base": 0.01,
        }
        settings.update(overrides)
        return S3Config.from_env(environ, **settings)

    def reset(self) -> None:
        """No rules, empty log, a fresh prefix for keys, new clients."""
        self.proxy.clear_rules()
        self.proxy.stop_storm()
        self.proxy.clear_log()
        self.prefix = uuid.uuid4().hex[:8]
        s3_client.clear_client_cache()
