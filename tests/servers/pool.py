"""The session's real S3 servers: each started on first use, kept for the session, stopped at
its end (and at interpreter exit, should the session die first).

A test opts in to every server by a ``pytest_generate_tests`` that calls
:func:`parametrize_servers` (``tests/s3/conftest.py`` does it for the whole directory; a
module can re-export it under that name); the ``s3_server`` fixture then receives the
server's name as its param. ``@pytest.mark.servers("moto", reason=...)`` (on a test or a
``pytest.param``) limits it to the servers named: the others skip it with the reason (e.g. a
fault that rewrites a signed header cannot pass a SigV4 check).
A server that cannot start here makes its tests skip with the reason.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import rgw, swift
from tests.servers.base import S3Server, ServerUnavailable

#: Every server the S3 suite can run on, in the order the test ids show them.
SERVER_NAMES = ("moto", "swift", "rgw")
#: Set to a comma-separated subset (e.g. ``moto``) to run the suite on fewer servers.
SERVERS_VARIABLE = "TFRECORD_S3_TEST_SERVERS"

_pools: list[ServerPool] = []
_STARTERS: dict[str, Callable[[Path], S3Server]] = {"swift": swift.start, "rgw": rgw.start}


def selected_servers() -> tuple[str, ...]:
    raw = os.environ.get(SERVERS_VARIABLE, "").strip()
    if not raw:
        return SERVER_NAMES
    wanted = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(set(wanted) - set(SERVER_NAMES))
    if unknown:
        raise pytest.UsageError(f"{SERVERS_VARIABLE}: unknown server(s) {unknown}; known: {SERVER_NAMES}")
    return wanted


def parametrize_servers(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``s3_server`` (directly or through ``s3_env``) on every
    selected server (see :func:`skip_unlisted` for the ``servers`` mark)."""
    if "s3_server" in metafunc.fixturenames:
        metafunc.parametrize("s3_server", selected_servers(), indirect=True, scope="session")


def skip_unlisted(items: list[pytest.Item]) -> None:
    """Skip, with the mark's reason, a test whose ``servers`` mark (on the test or on one of
    its params) does not name the server it was parametrized with."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        server = callspec.params.get("s3_server") if callspec is not None else None
        mark = item.get_closest_marker("servers")
        if server is None or mark is None or server in mark.args:
            continue
        reason = mark.kwargs.get("reason", "")
        item.add_marker(pytest.mark.skip(reason=f"not on {server}, only on {', '.join(mark.args)}: {reason}"))


def summary_lines() -> list[str]:
    """For the end of the session: how long each server took to start, or why it did not."""
    return [f"S3 server {line}" for pool in _pools for line in pool.summary()]


class ServerPool:
    """Servers started on demand under one temp dir; thread-safe; :meth:`stop` is idempotent."""

    def __init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="tfrecord-s3-servers-"))
        self._lock = threading.Lock()
        self._running: dict[str, S3Server] = {}
        self._failed: dict[str, str] = {}
        #: Seconds each server took to start (what it adds to a session besides its tests).
        self.start_seconds: dict[str, float] = {}
        self._keep = False  # a server failed to start: keep its logs
        atexit.register(self.stop)
        _pools.append(self)

    def get(self, name: str) -> S3Server:
        """The running server ``name``; raises ServerUnavailable (the same reason every
        time) when it cannot run here."""
        with self._lock:
            if name in self._failed:
                raise ServerUnavailable(self._failed[name])
            server = self._running.get(name)
            if server is not None:
                return server
            began = time.monotonic()
            try:
                server = _STARTERS[name](self._root / name)
            except ServerUnavailable as exc:
                self._failed[name] = f"{exc} (logs: {self._root / name})"
                self._keep = True
                raise ServerUnavailable(self._failed[name]) from exc
            self.start_seconds[name] = time.monotonic() - began
            self._running[name] = server
            return server

    def stop(self) -> None:
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for server in running:
            server.stop()
        if not self._keep:
            shutil.rmtree(self._root, ignore_errors=True)

    def summary(self) -> list[str]:
        lines = [f"{name}: started in {secs:.1f} s" for name, secs in sorted(self.start_seconds.items())]
        lines += [f"{name}: not run: {reason}" for name, reason in sorted(self._failed.items())]
        return lines
