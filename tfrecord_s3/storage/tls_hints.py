"""The message for plain HTTP sent to a port that speaks TLS (``S3_USE_HTTPS=0`` against an
HTTPS endpoint), which otherwise surfaces as a bare connection error. The other TLS mistakes
(an untrusted certificate, TLS sent to a plain port) are told by the handshake's own error,
in ``s3_errors.connection_detail``.

Decisions use exception types, never message text. Telling whether a port speaks TLS takes
one short TLS handshake to it, made only on the error path.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import botocore.exceptions as bce

from ..errors import StorageError

__all__ = ["PROBE_TIMEOUT", "speaks_tls", "tls_error"]

#: Seconds the TLS probe waits to connect and for the handshake.
PROBE_TIMEOUT = 2.0

# What plain HTTP to a TLS port ends in (the server drops the connection). Not a read
# timeout: a frozen server must not cost a probe on top.
_CONNECTION_ERRORS = (bce.ConnectionClosedError, bce.EndpointConnectionError)


def tls_error(exc: BaseException, operation: str, path: str, at: str) -> StorageError | None:
    """Our error for ``exc`` when it is plain HTTP sent to a TLS port (``at``: " at byte N"
    or ""), else None."""
    url = str(getattr(exc, "kwargs", {}).get("endpoint_url") or "")
    where = f"{operation} {path}{at}"
    if isinstance(exc, _CONNECTION_ERRORS) and url.startswith("http://") and speaks_tls(url):
        return StorageError(
            f"{where}: {type(exc).__name__}: the endpoint speaks TLS but S3_USE_HTTPS=0 (or an http:// "
            "S3_ENDPOINT) sent plain HTTP; set S3_USE_HTTPS=1",
            path=path,
            operation=operation,
        )
    return None


def speaks_tls(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the host:port of ``url`` completes a TLS handshake (certificate unchecked)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((parts.hostname, port), timeout=timeout) as sock,
            context.wrap_socket(sock, server_hostname=parts.hostname),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is among the errors ``exc`` wraps (args, kwargs, cause or context)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return True
        todo.extend([item.__cause__, item.__context__, *item.args, *getattr(item, "kwargs", {}).values()])
    return False
