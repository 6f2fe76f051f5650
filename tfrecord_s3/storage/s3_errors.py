"""The one place where botocore/urllib3 errors become tfrecord-s3 errors.

Decisions use S3 error codes and HTTP status codes from a table, never message text
(servers word messages differently; codes are the API). Messages we build name
``s3://bucket/key`` and the code, and never carry credentials, signatures or the server's
own text (which for SignatureDoesNotMatch echoes the string that was signed).
"""

from __future__ import annotations

import enum
import http.client
import ssl
from typing import Any

import botocore.exceptions as bce
import urllib3.exceptions as u3e

from ..errors import (
    AccessDeniedError,
    ObjectChangedError,
    ObjectNotFoundError,
    ResponseError,
    StorageError,
)
from .tls_hints import tls_error

__all__ = ["CutReplyError", "Fault", "ShortBodyError", "classify", "error_code", "http_status", "translate"]


class Fault(enum.Enum):
    """What to do about an exception raised by a request."""

    FATAL = "fatal"  # translate and raise at once
    TRANSIENT = "transient"  # retry with backoff from the next unconsumed byte
    THROTTLE = "throttle"  # 503 SlowDown & co: retry with the longer throttle backoff
    REFRESH = "refresh"  # the session token expired: fetch fresh credentials, retry once


class ShortBodyError(Exception):
    """A body that ended before the bytes its headers promised (a clean close mid-body)."""


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


def translate(exc: BaseException, path: str, operation: str, offset: int | None = None) -> StorageError:
    """Our error for ``exc`` (the caller raises it ``from exc``); ``offset``: the first byte
    of the object not delivered, named in the message."""
    if isinstance(exc, StorageError):
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
    return StorageError(f"{operation} {path}{at}: {type(exc).__name__}", path=path, operation=operation)
