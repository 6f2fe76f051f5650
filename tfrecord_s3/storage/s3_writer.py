"""S3Writer: a binary file whose bytes become one S3 object at ``close()``.

Bytes are buffered up to ``part_size``; the first full part starts a multipart upload and
each full part is uploaded as it fills (parts >= 5 MiB, as S3 requires, except the last).
A file that never fills one part goes up in a single PutObject. On any failure, or on
``abort()``, the multipart upload is aborted so no half object and no orphaned parts stay.
Nothing is visible under the key until ``close()`` succeeds.
"""

from __future__ import annotations

import io
from typing import Any

from ..config import S3Config
from ..errors import StorageError
from .s3_client import get_client
from .s3_errors import translate
from .s3_path import S3Path

__all__ = ["S3Writer"]


class S3Writer(io.RawIOBase):
    """Write-only binary file on S3. ``close()`` completes the upload; ``abort()`` drops it.

    Raises AccessDeniedError, ObjectNotFoundError (no such bucket) or StorageError from
    ``write`` (when a part goes up) or ``close``; the upload is aborted first.
    """

    def __init__(self, location: S3Path, config: S3Config) -> None:
        super().__init__()
        self._location = location
        self._config = config
        self._part_size = config.part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._failed: BaseException | None = None
        self.bytes_written = 0

    @property
    def path(self) -> str:
        return self._location.url

    @property
    def parts_uploaded(self) -> int:
        return len(self._parts)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError(f"write to closed file {self.path}")
        self._raise_if_failed()
        with memoryview(data) as view:
            count = view.nbytes
            self._buffer += view.cast("B")
        self.bytes_written += count
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._upload_part(part)
        return count

    def close(self) -> None:
        """Finish the object (PutObject, or complete the multipart upload). Idempotent."""
        if self.closed:
            return
        try:
            self._raise_if_failed()
            self._finish()
        finally:
            self._buffer = bytearray()
            super().close()

    def abort(self) -> None:
        """Drop everything written: abort the multipart upload; the key is left untouched."""
        if self.closed:
            return
        self._abort_upload()
        self._buffer = bytearray()
        super().close()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # Leaving a with-block on an exception must not publish a half-written object.
        if exc is not None:
            self.abort()
        else:
            self.close()

    def __getstate__(self) -> object:
        raise TypeError(f"cannot pickle an open upload to {self.path}")

    def _raise_if_failed(self) -> None:
        # After a failed part the upload is gone: accepting more bytes would lose them silently.
        if self._failed is not None:
            raise StorageError(
                f"write {self.path}: the upload was aborted after an earlier error", path=self.path, operation="write"
            ) from self._failed

    def _client(self) -> Any:
        return get_client(self._config)

    def _finish(self) -> None:
        loc = self._location
        if self._upload_id is None:
            try:
                self._client().put_object(Bucket=loc.bucket, Key=loc.key, Body=bytes(self._buffer))
            except Exception as exc:
                raise translate(exc, self.path, "write") from exc
            return
        if self._buffer:
            part = bytes(self._buffer)
            self._buffer = bytearray()
            self._upload_part(part)
        try:
            self._client().complete_multipart_upload(
                Bucket=loc.bucket, Key=loc.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        except Exception as exc:
            self._abort_upload()
            raise translate(exc, self.path, "write") from exc

    def _upload_part(self, part: bytes) -> None:
        loc = self._location
        try:
            if self._upload_id is None:
                created = self._client().create_multipart_upload(Bucket=loc.bucket, Key=loc.key)
                self._upload_id = str(created["UploadId"])
            number = len(self._parts) + 1
            reply = self._client().upload_part(
                Bucket=loc.bucket, Key=loc.key, UploadId=self._upload_id, PartNumber=number, Body=part
            )
        except Exception as exc:
            self._abort_upload()
            error = translate(exc, self.path, "write")
            self._failed = error
            raise error from exc
        self._parts.append({"PartNumber": number, "ETag": reply["ETag"]})

    def _abort_upload(self) -> None:
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        loc = self._location
        try:
            self._client().abort_multipart_upload(Bucket=loc.bucket, Key=loc.key, UploadId=upload_id)
        except Exception:
            # Best effort: the original error matters more; a bucket lifecycle rule for
            # incomplete uploads cleans up whatever this could not.
            pass
