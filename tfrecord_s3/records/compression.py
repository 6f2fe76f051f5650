"""Streaming GZIP and ZLIB for TFRecord files, in both directions.

Reading inflates in bounded steps (never more than one read's worth of output at a time), so
memory stays flat and a decompression bomb is stopped by a ratio cap. Damage is reported as
:class:`StreamDamage`, which the frame parser turns into a typed record error carrying the
path and the offset of the record it was reading.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO, Literal

from ..errors import ConfigError

Compression = Literal["", "GZIP", "ZLIB"]

_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 256 * 1024
# Below this many output bytes the ratio cap is not applied: small files of repetitive
# data legitimately compress far better than large ones.
_RATIO_FLOOR_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_RATIO = 1024


class StreamDamage(Exception):
    """The compressed stream is truncated (``kind="truncated"``), corrupt or over the cap."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def resolve_compression(compression_type: str | None, path: str = "") -> Compression:
    """Normalise TensorFlow's ``compression_type`` ("" / None / "GZIP" / "ZLIB" / "auto")."""
    if compression_type is None:
        return ""
    value = compression_type.strip().upper()
    if value == "AUTO":
        lowered = path.lower()
        if lowered.endswith((".gz", ".gzip")):
            return "GZIP"
        if lowered.endswith((".zz", ".zlib")):
            return "ZLIB"
        return ""
    if value in ("", "NONE"):
        return ""
    if value == "GZIP":
        return "GZIP"
    if value == "ZLIB":
        return "ZLIB"
    raise ConfigError(f"compression_type must be None, '', 'GZIP', 'ZLIB' or 'auto', not {compression_type!r}")


class InflatingReader(io.RawIOBase):
    """A readable raw stream of the inflated bytes of a GZIP or ZLIB ``source``."""

    def __init__(self, source: BinaryIO, compression: Compression, *, max_ratio: float = DEFAULT_MAX_RATIO) -> None:
        super().__init__()
        if compression not in ("GZIP", "ZLIB"):
            raise ConfigError(f"InflatingReader needs GZIP or ZLIB, not {compression!r}")
        self._source = source
        self._wbits = 31 if compression == "GZIP" else 15
        self._gzip = compression == "GZIP"
        self._inflater = zlib.decompressobj(self._wbits)
        self._pending = b""  # compressed input not yet given to the inflater
        self._max_ratio = max_ratio
        self.compressed_bytes = 0
        self.inflated_bytes = 0
        self._finished = False
        self._member_started = False
        # Damage found after bytes not yet handed out: raised on the next read, so every
        # record inflated before it still reaches the caller (as TensorFlow yields them).
        self._damage: StreamDamage | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = len(view)
        while not self._finished:
            data = self._inflate_some(want)
            if data:
                view[: len(data)] = data
                return len(data)
        return 0

    def _inflate_some(self, want: int) -> bytes:
        if self._damage is not None:
            raise self._damage
        inflater = self._inflater
        if inflater.unconsumed_tail:
            chunk = inflater.unconsumed_tail
        elif self._pending:
            chunk, self._pending = self._pending, b""
        else:
            chunk = self._source.read(_READ_CHUNK)
            if not chunk:
                # A fresh inflater that has seen no input is a clean end of the stream.
                if inflater.eof or not self._member_started:
                    self._finished = True
                    return b""
                raise StreamDamage("truncated", "compressed stream ended before its end marker")
            self.compressed_bytes += len(chunk)
        self._member_started = True
        try:
            out = inflater.decompress(chunk, want)
        except zlib.error as exc:
            raise StreamDamage("corrupt", f"compressed stream is corrupt ({exc})") from exc
        self.inflated_bytes += len(out)
        if self.inflated_bytes > _RATIO_FLOOR_BYTES and self.inflated_bytes > self._max_ratio * max(
            self.compressed_bytes, 1
        ):
            raise StreamDamage(
                "bomb",
                f"inflated {self.inflated_bytes} bytes from {self.compressed_bytes} compressed bytes, "
                f"over the ratio cap of {self._max_ratio:g}",
            )
        if inflater.eof:
            try:
                self._next_member(inflater.unused_data)
            except StreamDamage as exc:
                if not out:
                    raise
                self._damage = exc
        return out

    def _next_member(self, rest: bytes) -> None:
        # GZIP allows concatenated members; anything else after the end marker is damage.
        if not rest:
            rest = self._source.read(_READ_CHUNK)
            self.compressed_bytes += len(rest)
        if not rest:
            self._finished = True
            return
        if self._gzip and rest.startswith(_GZIP_MAGIC[: len(rest)]):
            self._inflater = zlib.decompressobj(self._wbits)
            self._pending = rest
            self._member_started = False
            return
        raise StreamDamage("corrupt", f"{len(rest)}+ unexpected bytes after the end of the compressed stream")

    def close(self) -> None:
        if not self.closed:
            try:
                self._source.close()
            finally:
                super().close()


class DeflatingWriter(io.RawIOBase):
    """A writable raw stream that compresses into ``sink`` as GZIP or ZLIB."""

    def __init__(self, sink: BinaryIO, compression: Compression, *, level: int = 6) -> None:
        super().__init__()
        if compression not in ("GZIP", "ZLIB"):
            raise ConfigError(f"DeflatingWriter needs GZIP or ZLIB, not {compression!r}")
        self._sink = sink
        self._deflater: zlib._Compress | None = zlib.compressobj(
            level, zlib.DEFLATED, 31 if compression == "GZIP" else 15
        )

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._deflater is None:
            raise ValueError("write to a closed compressed stream")
        out = self._deflater.compress(data)
        if out:
            self._sink.write(out)
        return len(memoryview(data).cast("B"))

    def flush(self) -> None:
        if self._deflater is not None:
            out = self._deflater.flush(zlib.Z_SYNC_FLUSH)
            if out:
                self._sink.write(out)
            self._sink.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            deflater, self._deflater = self._deflater, None
            if deflater is not None:
                self._sink.write(deflater.flush(zlib.Z_FINISH))
            self._sink.close()
        finally:
            super().close()
