"""The data path's GetObject, without botocore's per-call pipeline.

``client.get_object`` runs every call through botocore's endpoint ruleset, user-agent
builder, a dozen events and its response parser: 3.0-3.9 ms of client CPU per GET on the
2-core benchmark machine, against 0.8-1.0 ms for the same GET sent with urllib3 alone. That
is most of the client's CPU when reading many small objects, and ~0.3 s per GB of 16 MiB
blocks. Here the request goes where botocore's "auto" addressing would send it
(:func:`~tfrecord_s3.storage.request_target.target_of`, the CRT transport's too), is
signed by botocore's own SigV4 signer with the credentials its chain resolves, and is sent
through the client's own HTTP session: its connection pool, TLS settings, proxies, timeouts
and its mapping of urllib3 faults to botocore's exceptions. The client's ``before-send``
event is still emitted (tests count requests there). The reply comes back in the shape
``get_object`` returns, and an error reply as the modeled ``ClientError`` botocore raises,
parsed by botocore's own parser, so retries and typed errors above are unchanged.

Anything this path does not cover goes to ``client.get_object``: no credentials (botocore
then says why), a client without the internals used here, and replies that botocore
answers by retrying elsewhere (a redirect to the bucket's region).
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.endpoint import convert_to_response_dict
from botocore.parsers import ResponseParserFactory

from ..config import S3Config
from .request_target import target_of
from .s3_client import resolved_credentials
from .s3_path import S3Path

__all__ = ["get_object"]

_OPERATION = "GetObject"
_EVENT = "before-send.s3.GetObject"
# Error replies botocore follows to another endpoint (the bucket's region) instead of raising.
_REDIRECTS = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "TemporaryRedirect", "301", "307"})
_parsers = threading.local()


def get_object(client: Any, location: S3Path, config: S3Config, headers: dict[str, str]) -> dict[str, Any]:
    """``client.get_object(Bucket=..., Key=..., Range=..., IfMatch=...)`` for ``location``,
    with ``headers`` the request's ``Range`` and ``If-Match``; same reply, same errors."""
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    credentials = resolved_credentials()
    if session is None or credentials is None:
        return _through_botocore(client, location, headers)
    target = target_of(location, config)
    request = AWSRequest(method="GET", url=target.url, headers=headers)
    S3SigV4Auth(credentials, "s3", config.region).add_auth(request)
    prepared = request.prepare()
    prepared.stream_output = True
    sent = [reply for _, reply in client.meta.events.emit(_EVENT, request=prepared) if reply is not None]
    response = sent[0] if sent else session.send(prepared)
    operation = client.meta.service_model.operation_model(_OPERATION)
    reply = convert_to_response_dict(response, operation)
    status = int(reply["status_code"])
    if status >= 300:
        parsed = _parser().parse(reply, operation.output_shape)
        code = str(parsed.get("Error", {}).get("Code", status))
        if code in _REDIRECTS:
            return _through_botocore(client, location, headers)
        raise client.exceptions.from_code(code)(parsed, _OPERATION)
    length = reply["headers"].get("content-length")
    return {
        "Body": reply["body"],
        "ContentRange": reply["headers"].get("content-range"),
        "ETag": reply["headers"].get("etag"),
        # A Content-Length cut short raises ValueError, as botocore's parser does.
        "ContentLength": None if length is None else int(length),
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(reply["headers"])},
    }


def _through_botocore(client: Any, location: S3Path, headers: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {"Bucket": location.bucket, "Key": location.key, "Range": headers["Range"]}
    if "If-Match" in headers:
        params["IfMatch"] = headers["If-Match"]
    reply: dict[str, Any] = client.get_object(**params)
    return reply


def _parser() -> Any:
    # Parsers keep state between calls: one per thread.
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = ResponseParserFactory().create_parser("rest-xml")
    return parser
