"""Where a ranged GET of an object goes, for the transports that send their own requests
(the default data path's signed GETs, and the CRT's)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from ..config import S3Config
from .s3_client import get_client
from .s3_path import S3Path

__all__ = ["RequestTarget", "target_of"]

# Bucket names botocore's "auto" addressing puts in the host name (virtual-hosted style).
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# Hosts of AWS's own S3 endpoints: botocore puts the bucket in the host name on those only.
_AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn")
# Characters of a key left as they are in the request path (SigV4 for S3 signs it encoded once).
_PATH_SAFE = "/-_.~"


@dataclass(frozen=True)
class RequestTarget:
    """The ``Host`` header, the encoded request path, and the endpoint URL (scheme, host,
    port) errors name."""

    host: str
    path: str
    endpoint_url: str
    tls: bool

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}{self.path}"


def target_of(location: S3Path, config: S3Config) -> RequestTarget:
    """The request target of ``location``, as botocore's "auto" addressing picks it: the
    bucket in the host name on an AWS endpoint (the one boto3 resolved from the region)
    when the bucket's name allows it, else path-style (``S3_ENDPOINT``, ``AWS_ENDPOINT_URL``
    or any other endpoint that is not AWS's, names with dots)."""
    endpoint = config.endpoint_url or str(get_client(config).meta.endpoint_url)
    parts = urlsplit(endpoint)
    key = quote(location.key, safe=_PATH_SAFE)
    prefix = parts.path.rstrip("/")
    tls = parts.scheme == "https"
    on_aws = (parts.hostname or "").endswith(_AWS_DOMAINS)
    virtual = on_aws and not config.uses_path_style and _DNS_BUCKET.match(location.bucket) is not None
    if virtual:
        return RequestTarget(f"{location.bucket}.{parts.netloc}", f"{prefix}/{key}", endpoint, tls)
    return RequestTarget(parts.netloc, f"{prefix}/{quote(location.bucket, safe='')}/{key}", endpoint, tls)
