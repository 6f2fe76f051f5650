"""Just enough HTTP/1.1 for the fault proxy: read a message head, bodies framed by
Content-Length, chunked encoding or end of stream, and rebuild a head with edits.

Heads are kept as the raw bytes received, so an unedited request is forwarded byte for
byte (its SigV4 signature covers the headers)."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024


class WireError(Exception):
    """The peer broke HTTP framing or went away mid-message."""


class SocketReader:
    """Buffered reads from a socket (not socket.makefile, whose file object would keep the
    descriptor open after close() and spoil the RST)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(CHUNK)
        if not data:
            return False
        self._buf += data
        return True

    def read_head(self) -> bytes | None:
        """Bytes up to and including the blank line; None on EOF before the first byte."""
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self._buf[: end + 4])
                del self._buf[: end + 4]
                return head
            if len(self._buf) > MAX_HEAD:
                raise WireError("message head too long")
            if not self._fill():
                if self._buf:
                    raise WireError("connection closed inside a message head")
                return None

    def read_line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            if not self._fill():
                raise WireError("connection closed inside a chunked body")
        line = bytes(self._buf[: end + 2])
        del self._buf[: end + 2]
        return line

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise WireError(f"connection closed with {n - len(self._buf)} body bytes missing")
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def read_some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes; b"" at end of stream."""
        if not self._buf and not self._fill():
            return b""
        data = bytes(self._buf[:limit])
        del self._buf[:limit]
        return data

    def iter_exact(self, n: int) -> Iterator[bytes]:
        while n > 0:
            data = self.read_some(min(n, CHUNK))
            if not data:
                raise WireError(f"connection closed with {n} body bytes missing")
            n -= len(data)
            yield data

    def iter_to_eof(self) -> Iterator[bytes]:
        while data := self.read_some(CHUNK):
            yield data

    def read_chunked(self) -> tuple[bytes, bytes]:
        """A whole chunked body: (raw bytes as received, decoded payload)."""
        raw = bytearray()
        payload = bytearray()
        while True:
            size_line = self.read_line()
            raw += size_line
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (trailer := self.read_line()) != b"\r\n":
                    raw += trailer
                raw += b"\r\n"
                return bytes(raw), bytes(payload)
            data = self.read_exact(size + 2)
            raw += data
            payload += data[:-2]


@dataclass(frozen=True)
class Head:
    raw: bytes
    start_line: str
    headers: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, raw: bytes) -> Head:
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise WireError(f"malformed header line {line!r}")
            headers.append((name.strip(), value.strip()))
        return cls(raw, lines[0], tuple(headers))

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def has_token(self, name: str, token: str) -> bool:
        value = self.get(name)
        return value is not None and token in (t.strip().lower() for t in value.split(","))

    def status(self) -> int:
        parts = self.start_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise WireError(f"malformed status line {self.start_line!r}")
        return int(parts[1])

    def edited(
        self, *, start_line: str | None = None, drop: Iterable[str] = (), set_headers: Iterable[tuple[str, str]] = ()
    ) -> bytes:
        """Raw head with the start line replaced, headers in ``drop`` removed and
        ``set_headers`` replacing (or appended after) headers of the same name."""
        replace = {name.lower(): (name, value) for name, value in set_headers}
        gone = {name.lower() for name in drop}
        lines = [start_line or self.start_line]
        for name, value in self.headers:
            lname = name.lower()
            if lname in gone:
                continue
            if lname in replace:
                name, value = replace.pop(lname)
            lines.append(f"{name}: {value}")
        lines.extend(f"{name}: {value}" for name, value in replace.values())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def without_header(raw_head: bytes, name: str) -> bytes:
    """``raw_head`` minus every line of header ``name``, other bytes untouched."""
    prefix = name.lower().encode("latin-1") + b":"
    lines = raw_head.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.lower().startswith(prefix))


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/total`` -> (a, b, total or None for ``*``); None if absent or malformed."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    first, _, last = span.partition("-")
    try:
        return int(first), int(last), None if total.strip() == "*" else int(total)
    except ValueError:
        return None
