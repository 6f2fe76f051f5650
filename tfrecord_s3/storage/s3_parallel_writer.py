"""ParallelS3Writer: an S3Writer whose parts go up in background threads while the caller writes.

At most ``concurrency`` parts are in flight; a write that would start one more waits for a
slot, so memory stays under ``(concurrency + 1) * part_size``. A part that fails aborts the
upload; the error is raised by the next ``write`` or by ``close``. The parts are completed
in number order, whatever order they finished in.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..config import S3Config
from ..errors import ConfigError
from .s3_errors import translate
from .s3_path import S3Path
from .s3_writer import S3Writer

__all__ = ["ParallelS3Writer"]


class ParallelS3Writer(S3Writer):
    """Write-only binary file on S3 uploading up to ``concurrency`` parts at once."""

    def __init__(self, location: S3Path, config: S3Config, *, concurrency: int = 4) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, not {concurrency}")
        super().__init__(location, config)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._concurrency = concurrency
        self._pending: list[Future[dict[str, Any]]] = []
        self._reported = False

    def _raise_if_failed(self) -> None:
        # A part that failed in the background: the caller gets that error itself first
        # (it has not seen it yet), then, as with S3Writer, "aborted after an earlier error".
        failed = self._failed
        if failed is not None and not self._reported:
            self._reported = True
            self._wait()
            self._abort_upload()
            raise failed
        super()._raise_if_failed()

    def _upload_part(self, part: bytes) -> None:
        loc = self._location
        if self._upload_id is None:
            try:
                created = self._client().create_multipart_upload(Bucket=loc.bucket, Key=loc.key)
            except Exception as exc:
                error = translate(exc, self.path, "write")
                self._failed = error
                self._reported = True  # raised to the caller right here
                raise error from exc
            self._upload_id = str(created["UploadId"])
        self._raise_if_failed()
        self._slots.acquire()  # bounded memory: wait until a part in flight has gone up
        number = len(self._pending) + 1
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="tfrecord-s3-upload")
        self._pending.append(self._pool.submit(self._send, number, part, self._upload_id))

    def _send(self, number: int, part: bytes, upload_id: str) -> dict[str, Any]:
        loc = self._location
        try:
            reply = self._client().upload_part(
                Bucket=loc.bucket, Key=loc.key, UploadId=upload_id, PartNumber=number, Body=part
            )
            return {"PartNumber": number, "ETag": reply["ETag"]}
        except Exception as exc:
            error = translate(exc, self.path, "write")
            if self._failed is None:
                self._failed = error
            raise error from exc
        finally:
            self._slots.release()

    def _finish(self) -> None:
        if self._upload_id is not None and self._buffer:
            part = bytes(self._buffer)
            self._buffer = bytearray()
            self._upload_part(part)
        self._wait()
        if self._failed is not None:
            self._abort_upload()
            self._raise_if_failed()
        super()._finish()

    def _wait(self) -> None:
        for future in self._pending:
            try:
                self._parts.append(future.result())
            except Exception:
                pass  # recorded in self._failed by the part's thread
        self._pending = []
        self._parts.sort(key=lambda p: int(p["PartNumber"]))
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def close(self) -> None:
        """Wait for the parts in flight and complete the upload (after a failed part: abort
        it and raise). Idempotent."""
        if self.closed:
            return
        if self._failed is not None:
            self._wait()
            self._abort_upload()
        super().close()

    def abort(self) -> None:
        """Drop everything: wait for the parts in flight, then abort the multipart upload."""
        if self.closed:
            return
        self._wait()
        super().abort()
