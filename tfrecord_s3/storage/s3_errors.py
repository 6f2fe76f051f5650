"""The one place where botocore/urllib3 errors become tfrecord-s3 errors.

Decisions use S3 error codes and HTTP status codes from a table, never message text
(servers word messages differently; codes are the API). Messages we build name
``s3://bucket/key`` and the code, and never carry credentials, signatures or the server's
own text (which for SignatureDoesNotMatch echoes the string that was signed).
"""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions as bce
import urllib3.exceptions as u3e

from ..errors import (
    AccessDeniedError,
    ConfigError,
    ObjectChangedError,
    ObjectNotFoundError,
    ResponseError,
    StorageError,
)
from .faults import Fault, ShortBodyError
from .tls_hints import tls_error

__all__ = [
    "S3_FAULTS",
    "CutReplyError",
    "Fault",
    "S3Faults",
    "ShortBodyError",
    "classify",
    "connection_detail",
    "describe",
    "error_code",
    "http_status",
    "translate",
]


class CutReplyError(Exception):
    """A reply whose head was cut: the connection closed inside the status line or the
    headers (http.client takes ``HTTP/1.1 206`` then EOF for a 206 without headers)."""


def reply_was_cut(body: Any) -> bool:
    """For a reply that failed our checks: whether it ended right after its (partial) head.
    A complete reply to a ranged GET has a body; a head cut short has none. Reads at most
    one byte, undecoded."""
    raw = getattr(body, "_raw_stream", None)
    try:
        data = raw.read(1, decode_content=False) if raw is not None else body.read(1)
    except Exception:  # it broke while being read: cut either way
        return True
    return not data


# S3 error code -> our error class. HEAD responses carry no body, so botocore uses the
# status as the code ("404", "403"): those are listed too.
_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "NoSuchUpload", "404"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "Forbidden",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
        "InvalidSecurity",
    }
)
# Credentials that expired under a running stream (STS session tokens, role credentials):
# worth one retry with freshly fetched credentials before they count as access denied.
_EXPIRED = frozenset({"ExpiredToken", "TokenRefreshRequired", "ExpiredTokenException"})
_CHANGED = frozenset({"PreconditionFailed", "412"})
_THROTTLE = frozenset(
    {"SlowDown", "ServiceUnavailable", "503", "Throttling", "ThrottlingException", "RequestLimitExceeded", "429"}
)
_TRANSIENT = frozenset({"InternalError", "RequestTimeout", "500", "502", "504", "BadGateway", "GatewayTimeout"})

# Raised while a body streams (or a connection drops before headers, once botocore's own
# retries are spent): all worth another GET from the next unconsumed byte.
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    bce.ResponseStreamingError,
    bce.IncompleteReadError,
    bce.ReadTimeoutError,
    bce.ConnectionClosedError,
    bce.EndpointConnectionError,
    bce.ConnectTimeoutError,
    u3e.ProtocolError,
    u3e.ReadTimeoutError,
    u3e.SSLError,
    http.client.IncompleteRead,
    ConnectionError,  # ConnectionResetError, BrokenPipeError, ...
    TimeoutError,
    ShortBodyError,
    CutReplyError,
)


# Connection-level failures (no HTTP reply): what happened, in our words; botocore's own
# fields (the endpoint URL, the OS error) add the detail. First match wins.
_CHECK_ENDPOINT = "check that a server listens there, and S3_ENDPOINT (HOST:PORT) and S3_USE_HTTPS"
_CONNECTION_FAULTS: tuple[tuple[type[BaseException], str, str], ...] = (
    (bce.ConnectTimeoutError, "connecting timed out", _CHECK_ENDPOINT + " (or raise S3_CONNECT_TIMEOUT_MSEC)"),
    (bce.ProxyConnectionError, "cannot connect to the proxy", "check HTTPS_PROXY / HTTP_PROXY"),
    (bce.EndpointConnectionError, "cannot connect", _CHECK_ENDPOINT),
    (bce.ReadTimeoutError, "no reply within the read timeout", "raise S3_REQUEST_TIMEOUT_MSEC if the server is slow"),
    (bce.ConnectionClosedError, "the server closed the connection before replying", ""),
)
# OpenSSL reason codes of a TLS handshake answered by something that is not TLS at all
# (a plain-HTTP server replying "400 Bad Request" to the ClientHello).
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _nested(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it wraps (causes, botocore's ``error``, urllib3's
    ``reason``), outermost first."""
    out: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(out) < 16:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is seen for seen in out):
            continue
        out.append(item)
        kwargs = getattr(item, "kwargs", None)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
        if isinstance(kwargs, dict):
            todo += list(kwargs.values())
    return out


def _origin(exc: BaseException) -> tuple[str, int | None] | None:
    """(``scheme://host:port``, the port when the URL gave none and the default was used) of
    the URL botocore names: never its path, query or user info."""
    kwargs = getattr(exc, "kwargs", None)
    url = (kwargs.get("endpoint_url") or kwargs.get("proxy_url")) if isinstance(kwargs, dict) else None
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    host = f"[{host}]" if ":" in host else host
    default = _DEFAULT_PORTS.get(parts.scheme) if port is None else None
    shown = port if port is not None else default
    return (f"{parts.scheme}://{host}" + (f":{shown}" if shown is not None else ""), default)


def _os_reason(exc: BaseException) -> str | None:
    # strerror is the C library's text for the errno ("Connection refused"), never the peer's.
    for inner in _nested(exc):
        if isinstance(inner, OSError) and isinstance(inner.strerror, str) and inner.strerror:
            return inner.strerror
    return None


def connection_detail(exc: BaseException) -> str | None:
    """What a connection-level failure was, with the endpoint, the OS's reason and what to
    check; None for anything else. Safe to show: built from botocore's fields (the URL
    reduced to scheme, host and port), never from message text."""
    if isinstance(exc, bce.SSLError):
        return _tls_detail(exc)
    for kind, what, check in _CONNECTION_FAULTS:
        if isinstance(exc, kind):
            origin = _origin(exc)
            notes = [note for note in (_os_reason(exc),) if note]
            if origin is not None and origin[1] is not None:
                notes.append(f"the URL has no port, so the default {origin[1]} was used")
            detail = what if origin is None else f"{what} to {origin[0]}"
            if notes:
                detail += f" ({'; '.join(notes)})"
            return f"{detail}: {check}" if check else detail
    return None


def _tls_detail(exc: BaseException) -> str:
    found = _origin(exc)
    origin = found[0] if found is not None else "the endpoint"
    for inner in _nested(exc):
        if isinstance(inner, ssl.SSLCertVerificationError):
            why = f" ({inner.verify_message})" if inner.verify_message else ""
            return (
                f"the TLS certificate of {origin} did not verify{why}: set S3_CA_FILE (or AWS_CA_BUNDLE) "
                "to the CA bundle that signed it (S3_VERIFY_SSL=0 skips the check)"
            )
        if isinstance(inner, ssl.SSLError) and getattr(inner, "reason", None) in _NOT_TLS_REASONS:
            return (
                f"{origin} does not speak TLS (it answered the TLS handshake with something else, "
                "likely plain HTTP): set S3_USE_HTTPS=0, or give S3_ENDPOINT as an http:// URL"
            )
        if isinstance(inner, ssl.SSLError) and getattr(inner, "reason", None):
            return f"the TLS handshake with {origin} failed ({inner.reason})"
    return f"the TLS handshake with {origin} failed"


def error_code(exc: bce.ClientError) -> str:
    response: dict[str, Any] = dict(exc.response)
    error = response.get("Error") or {}
    return str(error.get("Code", ""))


def http_status(exc: bce.ClientError) -> int:
    response: dict[str, Any] = dict(exc.response)
    meta = response.get("ResponseMetadata") or {}
    try:
        return int(meta.get("HTTPStatusCode", 0))
    except (TypeError, ValueError):
        return 0


def classify(exc: BaseException) -> Fault:
    """Whether ``exc`` from a GET is worth retrying, and how."""
    if isinstance(exc, bce.ClientError):
        code, status = error_code(exc), http_status(exc)
        if code in _THROTTLE or status in (429, 503):
            return Fault.THROTTLE
        if code in _EXPIRED:
            return Fault.REFRESH
        if code in _NOT_FOUND | _DENIED | _CHANGED:
            return Fault.FATAL
        if code in _TRANSIENT or status >= 500:
            return Fault.TRANSIENT
        return Fault.FATAL
    # A certificate that does not verify is a setup problem, not a flaky network.
    if isinstance(exc, (bce.SSLError, ssl.SSLCertVerificationError)):
        return Fault.FATAL
    if isinstance(exc, _TRANSIENT_TYPES):
        return Fault.TRANSIENT
    return Fault.FATAL


def _bare_400_hint(code: str, status: int) -> str:
    # A HEAD has no body, so a 400 comes without a code; servers that check the region of a
    # signature (Swift's s3api) answer a wrong one so.
    if status == 400 and code in ("", "400"):
        return ": a bare 400 usually means the request was signed for another region: check AWS_REGION"
    return ""


def translate(exc: BaseException, path: str, operation: str, offset: int | None = None) -> StorageError | ConfigError:
    """Our error for ``exc`` (the caller raises it ``from exc``); ``offset``: the first byte
    of the object not delivered, named in the message. Ours pass through unchanged (a
    ConfigError from creating the client, e.g. an unknown AWS_PROFILE)."""
    if isinstance(exc, (StorageError, ConfigError)):
        return exc
    at = f" at byte {offset}" if offset is not None else ""
    tls = tls_error(exc, operation, path, at)
    if tls is not None:
        return tls
    if isinstance(exc, bce.ClientError):
        code, status = error_code(exc), http_status(exc)
        where = f"{operation} {path}{at}: {code or 'error'} (HTTP {status or '?'})"
        if code in _NOT_FOUND or (status == 404 and code not in _DENIED):
            detail = "no such bucket" if code == "NoSuchBucket" else "not found"
            return ObjectNotFoundError(f"{where}: {detail}", path=path, operation=operation)
        if code in _DENIED or status == 403:
            return AccessDeniedError(f"{where}: access denied", path=path, operation=operation)
        if code in _CHANGED or status == 412:
            return ObjectChangedError(
                f"{where}: the object changed while it was being read (ETag no longer matches)",
                path=path,
                operation=operation,
            )
        if code == "InvalidRange" or status == 416:
            return ResponseError(f"{where}: range not satisfiable", path=path, operation=operation)
        return StorageError(where + _bare_400_hint(code, status), path=path, operation=operation)
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return AccessDeniedError(
            f"{operation} {path}: no AWS credentials found (boto3's chain: env, profile, instance role)",
            path=path,
            operation=operation,
        )
    detail = connection_detail(exc) or type(exc).__name__
    return StorageError(f"{operation} {path}{at}: {detail}", path=path, operation=operation)


def describe(exc: BaseException) -> str:
    """The exception's type and, for S3 replies, code and status: never its text, which may
    echo request details."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code", "")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode", "")
        return f"{type(exc).__name__} {code} (HTTP {status})"
    return connection_detail(exc) or type(exc).__name__


_TIMEOUTS = (TimeoutError, u3e.TimeoutError, bce.ReadTimeoutError, bce.ConnectTimeoutError)


class S3Faults:
    """:class:`~tfrecord_s3.storage.faults.TransportFaults` of botocore/urllib3 (what
    :class:`~tfrecord_s3.storage.s3_reader.S3RangeReader` hands to BlockStream)."""

    def classify(self, exc: BaseException) -> Fault:
        return classify(exc)

    def translate(
        self, exc: BaseException, path: str, operation: str, offset: int | None = None
    ) -> StorageError | ConfigError:
        return translate(exc, path, operation, offset)

    def describe(self, exc: BaseException) -> str:
        return describe(exc)

    def answered(self, exc: BaseException) -> bool:
        return isinstance(getattr(exc, "response", None), dict)  # botocore's ClientError

    def timed_out(self, exc: BaseException) -> bool:
        return isinstance(exc, _TIMEOUTS)


S3_FAULTS = S3Faults()
