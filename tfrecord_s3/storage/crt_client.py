"""The AWS Common Runtime's S3 client, for ``S3_TRANSPORT=crt``: imported only when that
transport is chosen, created lazily, one per process and per setting, never pickled.

Only the data path goes through it (ranged GETs, signed with SigV4 by the CRT); HEAD, LIST
and uploads stay on boto3, so both transports see the same endpoint, region, TLS settings
and credentials: each request is signed with what boto3's own chain resolves at that moment
(env keys, ``AWS_PROFILE``, instance roles), handed to the CRT as static credentials.

The CRT's own retries are off: every fault goes through the stream's budget and counters,
as the urllib3 data client's do. A process that forks gets new event-loop threads; the
parent's CRT objects are kept, never destroyed, in the child (their threads do not exist
there, so tearing them down would wait forever).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from ..config import S3Config
from ..errors import ConfigError
from .s3_client import get_client

__all__ = ["CRT_EXTRA", "crt_client", "load_awscrt", "signing_config"]

#: What to install for this transport (pyproject.toml's ``crt`` extra).
CRT_EXTRA = 'pip install "tfrecord-s3[crt]"'
#: The smallest memory limit the CRT accepts.
_MIN_MEMORY_LIMIT = 256 * 1024 * 1024

_lock = threading.Lock()
_pid = os.getpid()
_clients: dict[_ClientKey, Any] = {}
_bootstrap: Any = None
# CRT objects inherited over a fork: never freed in the child (see the module doc).
_inherited: list[Any] = []


def load_awscrt() -> Any:
    """The ``awscrt`` package; ConfigError saying what to install when it is missing."""
    try:
        import awscrt.auth
        import awscrt.http
        import awscrt.io
        import awscrt.s3
    except ImportError as exc:
        raise ConfigError(
            f"S3_TRANSPORT=crt (S3Config.transport='crt') needs the AWS Common Runtime: {CRT_EXTRA}"
        ) from exc
    return awscrt


@dataclass(frozen=True)
class _ClientKey:
    # The CRT pools connections by host name alone (not port): one client per endpoint.
    endpoint_url: str | None
    region: str
    tls: bool
    verify_ssl: bool
    ca_file: str | None
    connect_timeout_ms: int
    connections: int
    memory_limit: int


def crt_client(config: S3Config) -> Any:
    """The process's ``awscrt.s3.S3Client`` for ``config``'s region, TLS settings, connect
    timeout and connection cap (created on first use)."""
    global _pid
    awscrt = load_awscrt()
    endpoint = config.endpoint_url or str(get_client(config).meta.endpoint_url)
    key = _ClientKey(
        endpoint_url=config.endpoint_url,
        region=config.region,
        tls=endpoint.startswith("https://"),
        verify_ssl=config.verify_ssl,
        ca_file=config.ca_file,
        connect_timeout_ms=max(1, round(config.connect_timeout * 1000)),
        # The scheduler's window plus the GETs consumers wait for, as the urllib3 data pool.
        connections=2 * config.max_pool_connections,
        # The CRT buffers parts before handing them over: within the stream's own budget.
        memory_limit=max(_MIN_MEMORY_LIMIT, config.max_bytes_in_flight),
    )
    with _lock:
        if _pid != os.getpid():
            _inherited.append((list(_clients.values()), _bootstrap))
            _forget()
            _pid = os.getpid()
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _make_client(awscrt, key)
        return client


def _forget() -> None:
    global _bootstrap
    _clients.clear()
    _bootstrap = None


def _make_client(awscrt: Any, key: _ClientKey) -> Any:
    """Called with ``_lock`` held."""
    global _bootstrap
    if _bootstrap is None:
        # This process's own event loops (not the CRT's static default, which a forked
        # child would inherit without its threads).
        loops = awscrt.io.EventLoopGroup()
        _bootstrap = awscrt.io.ClientBootstrap(loops, awscrt.io.DefaultHostResolver(loops))
    tls_options = None
    if key.tls:
        options = awscrt.io.TlsContextOptions()
        options.verify_peer = key.verify_ssl
        if key.ca_file:
            options.override_default_trust_store_from_path(ca_filepath=key.ca_file)
        tls_options = awscrt.io.ClientTlsContext(options).new_connection_options()
    s3 = awscrt.s3
    return s3.S3Client(
        bootstrap=_bootstrap,
        region=key.region,
        tls_mode=s3.S3RequestTlsMode.ENABLED if key.tls else s3.S3RequestTlsMode.DISABLED,
        tls_connection_options=tls_options,
        max_active_connections_override=key.connections,
        memory_limit=key.memory_limit,
        retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE),
        connect_timeout_ms=key.connect_timeout_ms,
    )


def signing_config(config: S3Config, credentials: Any) -> Any:
    """SigV4 for S3 in ``config``'s region with ``credentials`` (botocore's frozen ones)."""
    awscrt = load_awscrt()
    provider = awscrt.auth.AwsCredentialsProvider.new_static(
        credentials.access_key, credentials.secret_key, credentials.token or None
    )
    return awscrt.s3.create_default_s3_signing_config(region=config.region, credential_provider=provider)
