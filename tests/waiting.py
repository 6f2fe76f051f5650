"""Waiting on a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable

# Generous on purpose: a condition that holds returns at once, so the bound only matters
# when something is wrong, and a busy 2-core machine must not lose it.
DEFAULT_TIMEOUT = 30.0


def wait_until(condition: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT, poll: float = 0.005) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True
