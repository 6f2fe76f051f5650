"""boto3 clients: created lazily, cached per process and per config, never pickled.

A client is keyed by (config, role). Role "control" is for HEAD/LIST/PUT, where botocore's
own retries (standard mode, a few tries) are the right tool. Role "data" is for the ranged
GETs of a stream: botocore does not retry those at all, so every fault, before or after
the headers, goes through the stream's own budget and counters (503s are counted as
throttles, a 500 storm ends after exactly ``max_attempts`` GETs).

The cache is dropped when ``os.getpid()`` changes: a boto3 client must not cross a fork
(DataLoader workers), its connection pool would be shared with the parent.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import Any, Literal

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from urllib3.exceptions import InsecureRequestWarning

from ..config import ClientSettings, S3Config, check_profile

__all__ = [
    "ClientHook",
    "Role",
    "add_client_hook",
    "clear_client_cache",
    "get_client",
    "refresh_credentials",
    "resolved_credentials",
]

Role = Literal["control", "data"]
#: Called with every new client (e.g. to register botocore event handlers that count requests).
ClientHook = Callable[[Any, S3Config, Role], None]

_lock = threading.Lock()
_clients: dict[tuple[ClientSettings, Role], Any] = {}
_pid = os.getpid()
_warned_insecure = False
_hooks: list[ClientHook] = []
_shared_session: Any = None
_loader: Any = None


def get_client(config: S3Config, role: Role = "control") -> Any:
    """The process's boto3 S3 client for ``config`` (created on first use; shared by every
    config with the same :attr:`~S3Config.client_settings`)."""
    global _pid
    settings = config.client_settings
    key = (settings, role)
    with _lock:
        if _pid != os.getpid():
            _forget_all()
            _pid = os.getpid()
        client = _clients.get(key)
        if client is None:
            client = _make_client(settings, role)
            for hook in _hooks:
                hook(client, config, role)
            _clients[key] = client
        return client


def resolved_credentials() -> Any:
    """What boto3's chain resolves now, frozen (``access_key``, ``secret_key``, ``token``), or
    None when it finds none: the chain and cache our clients sign with, for another signer
    (the CRT transport). Refreshable credentials are refreshed when due."""
    global _pid
    with _lock:
        if _pid != os.getpid():
            _forget_all()
            _pid = os.getpid()
        session = _session()
    credentials = session.get_credentials()
    return None if credentials is None else credentials.get_frozen_credentials()


def clear_client_cache() -> None:
    """Close and forget every cached client (tests do this when the environment changes)."""
    with _lock:
        clients = list(_clients.values()) if _pid == os.getpid() else []
        _forget_all()
    for client in clients:
        client.close()


def refresh_credentials() -> None:
    """Drop the cached clients and session, so the next request walks boto3's credential
    chain again (a new STS token, a re-assumed role, a re-read profile). Clients in use keep
    working. Called when S3 says the token expired (at most once per block, see stream.py)."""
    with _lock:
        _forget_all()


def _forget_all() -> None:
    global _shared_session
    _clients.clear()
    _shared_session = None


def add_client_hook(hook: ClientHook) -> Callable[[], None]:
    """Call ``hook(client, config, role)`` on each client created from now on; returns a
    function that removes the hook. Clients already cached are not passed to it."""
    with _lock:
        _hooks.append(hook)

    def remove() -> None:
        with _lock:
            if hook in _hooks:
                _hooks.remove(hook)

    return remove


def _make_client(config: ClientSettings, role: Role) -> Any:
    global _warned_insecure
    if not config.verify_ssl and not _warned_insecure:
        _warned_insecure = True
        warnings.warn(
            "S3_VERIFY_SSL is off: TLS certificates of the S3 endpoint are not verified",
            stacklevel=4,
        )
    if not config.verify_ssl:
        # Ours above says it once; urllib3 would repeat it on every new connection.
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    boto_config = BotoConfig(
        region_name=config.region,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        # Data clients: the scheduler's window plus the GETs consumers wait for (one per stream).
        max_pool_connections=config.max_pool_connections * (2 if role == "data" else 1),
        retries={"mode": "standard", "total_max_attempts": 1 if role == "data" else config.control_attempts},
        s3={"addressing_style": "path" if config.path_style else "auto"},
        # Recent botocore adds CRC checksum headers (and aws-chunked bodies) to every upload;
        # MinIO, Swift, GCS interop and older servers reject them. Only when S3 requires it.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    verify: bool | str = (config.ca_file or True) if config.verify_ssl else False
    return _session().client("s3", endpoint_url=config.endpoint_url, verify=verify, config=boto_config)


def _session() -> Any:
    """This process's own boto3 Session (not boto3's global default one, which user code may
    reconfigure). One Session shares its loaded service model and its credential chain (env,
    AWS_PROFILE, ~/.aws, instance roles; refreshable credentials refresh) across clients:
    a new Session per client costs ~0.2 s of JSON loading. Called with ``_lock`` held."""
    global _shared_session, _loader
    if _shared_session is None:
        core = botocore.session.get_session()
        check_profile(core)  # before anything reads the (missing) profile's settings
        # The loader caches the parsed service models; keep it even when the cache is
        # cleared (only credentials and settings need re-reading then).
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
        _shared_session = boto3.session.Session(botocore_session=core)
    return _shared_session
