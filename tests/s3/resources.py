"""Counting threads and sockets, to check that everything returns to its baseline."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


def open_socket_count() -> int:
    """Sockets this process holds (its own client connections and moto's server side)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def settles(probe: Callable[[], int], target: int, timeout: float = 3.0) -> int:
    """Poll ``probe`` until it is <= ``target`` (peers close their ends asynchronously)."""
    deadline = time.monotonic() + timeout
    value = probe()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.02)
        value = probe()
    return value


def thread_count() -> int:
    return threading.active_count()


def our_threads() -> list[str]:
    """Live threads started by tfrecord_s3 (read-ahead pools)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("tfrecord-s3")]
