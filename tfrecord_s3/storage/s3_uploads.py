"""Incomplete multipart uploads under a prefix: listed and aborted.

A writer that dies mid-upload (SIGKILL, a lost machine) publishes nothing under its key,
but the parts it sent stay stored, and billed, until the upload is aborted or a lifecycle
rule (``AbortIncompleteMultipartUpload``) expires it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from ..config import S3Config
from ..errors import ConfigError
from .s3_client import get_client
from .s3_errors import translate
from .s3_path import S3Path

__all__ = ["Upload", "abort_upload", "list_uploads"]


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    upload_id: str
    initiated: datetime | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def list_uploads(prefix: str, *, config: S3Config | None = None) -> list[Upload]:
    """Every incomplete multipart upload whose key starts with ``prefix``'s key (every page)."""
    config = config if config is not None else S3Config.from_env()
    location = S3Path.parse(prefix)
    if not prefix.startswith("s3://"):
        raise ConfigError(f"{prefix}: expected an s3://bucket/prefix")
    return list(_pages(location, config))


def abort_upload(upload: Upload, *, config: S3Config | None = None) -> None:
    """Abort ``upload``: its parts are deleted. An upload already gone is not an error."""
    config = config if config is not None else S3Config.from_env()
    try:
        get_client(config).abort_multipart_upload(Bucket=upload.bucket, Key=upload.key, UploadId=upload.upload_id)
    except Exception as exc:
        error = translate(exc, upload.url, "abort upload")
        if getattr(exc, "response", {}).get("Error", {}).get("Code") != "NoSuchUpload":
            raise error from exc


def _pages(location: S3Path, config: S3Config) -> Iterator[Upload]:
    client = get_client(config)
    params: dict[str, str] = {"Bucket": location.bucket, "Prefix": location.key}
    while True:
        try:
            page = client.list_multipart_uploads(**params)
        except Exception as exc:
            raise translate(exc, location.url, "list uploads") from exc
        for item in page.get("Uploads", []):
            yield Upload(location.bucket, item["Key"], item["UploadId"], item.get("Initiated"))
        if not page.get("IsTruncated"):
            return
        params["KeyMarker"] = page.get("NextKeyMarker", "")
        params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
