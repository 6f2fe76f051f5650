"""Close what is still open before the interpreter tears down.

A stream the user never closed (an iterator dropped mid-epoch, a script that ends inside a
loop, a closed stdout) still has threads receiving into SSL sockets. Left running while
the interpreter finalizes, such a thread can touch freed OpenSSL state and crash the
process after its work is done. Every open stream and dataset iterator is tracked here
(weakly: tracking keeps nothing alive) and closed, newest first, when the interpreter
starts to shut down: before ``concurrent.futures`` joins its worker threads and before
``atexit`` handlers run, so each ``close()`` can cancel its requests, shut its sockets and
join its threads while everything still works.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import weakref
from typing import Protocol

__all__ = ["Closeable", "close_all", "open_count", "track", "untrack"]

_log = logging.getLogger(__name__)


class Closeable(Protocol):
    def close(self) -> None: ...


# Reentrant: a stream collected while this thread holds the lock untracks itself from __del__.
_lock = threading.RLock()
_open: weakref.WeakValueDictionary[int, Closeable] = weakref.WeakValueDictionary()
_ids: dict[int, int] = {}  # id(obj) -> its key in _open, for untrack
_counter = itertools.count()
_installed = False


def track(obj: Closeable) -> None:
    """Close ``obj`` at interpreter exit unless it is closed (and untracked) or gone first."""
    global _installed
    with _lock:
        key = next(_counter)
        _open[key] = obj
        _ids[id(obj)] = key
        if not _installed:
            _installed = True
            _install()


def untrack(obj: Closeable) -> None:
    """``obj`` was closed: nothing to do for it at exit."""
    with _lock:
        key = _ids.pop(id(obj), None)
        if key is not None:
            _open.pop(key, None)


def open_count() -> int:
    """Tracked objects still alive and not closed."""
    with _lock:
        return len(_open)


def close_all() -> None:
    """Close every tracked object, newest first (streams before the iterators that read
    them, so their threads end promptly); an error in one close does not stop the others."""
    with _lock:
        items = sorted(_open.items(), reverse=True)
        _open.clear()
        _ids.clear()
    for _, obj in items:
        try:
            obj.close()
        except Exception:  # at exit there is no one left to raise to
            _log.debug("tfrecord_s3: closing %r at exit failed", obj, exc_info=True)


def _install() -> None:
    # threading's own exit hooks run first at shutdown, newest first: registered after
    # concurrent.futures' (imported before any stream exists), ours runs before it joins
    # the read-ahead threads. atexit is the fallback and a second pass.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(close_all)
        except RuntimeError:  # already shutting down
            pass
    atexit.register(close_all)
