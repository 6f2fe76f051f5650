"""The stages that run ahead of the consumer on threads: ``map(num_parallel_calls=...)`` and
``prefetch``. Both stay resumable the way a shuffle buffer does: what they have pulled from
their parent but not handed out yet is part of their state, and is handed out first on resume.
Both keep the order, raise an error in the element's turn (after every element before it),
and join their threads on ``close()``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import ConfigError
from .stages import Child, Stage

#: ``num_parallel_calls`` / ``buffer_size`` value meaning "pick for me" (tf.data.AUTOTUNE).
AUTOTUNE = -1
# What AUTOTUNE picks for prefetch: a few elements hide a consumer's hiccups; the source
# already reads ahead by bytes, so more would only hold memory.
_AUTOTUNE_PREFETCH = 4


def map_workers(num_parallel_calls: int | None) -> int | None:
    """The threads of a ``map``: None (call ``fn`` inline), or how many."""
    if num_parallel_calls is None:
        return None
    if num_parallel_calls == AUTOTUNE:
        return os.cpu_count() or 1
    if num_parallel_calls < 1:
        raise ConfigError(f"num_parallel_calls must be None, AUTOTUNE or >= 1, not {num_parallel_calls}")
    return int(num_parallel_calls)


def prefetch_depth(buffer_size: int) -> int:
    """Elements a ``prefetch`` holds (0: none, the stage is left out)."""
    if buffer_size == AUTOTUNE:
        return _AUTOTUNE_PREFETCH
    if buffer_size < 0:
        raise ConfigError(f"prefetch buffer_size must be AUTOTUNE or >= 0, not {buffer_size}")
    return int(buffer_size)


class ParallelMapStage(Child):
    """``fn`` over a pool of ``workers`` threads, up to ``2 * workers`` elements in flight.

    The parent is pulled only from the consumer's thread (in ``__next__``), so its state is
    consistent with the inputs in flight, which the state lists as ``pending``. The kind is
    ``map``, as for an inline map: a state saved with one parallelism resumes with another.
    """

    kind = "map"

    def __init__(self, parent: Stage, fn: Callable[[Any], Any], workers: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tfrecord-s3-map")
        self._depth = 2 * workers
        self._window: deque[tuple[Any, Future[Any]]] = deque()
        self._exhausted = False
        self._error: Exception | None = None
        self._closed = False
        # Restored inputs are submitted at the first ``next``: no thread before iteration starts.
        self._restored = list((state or {}).get("pending", ()))

    def _submit(self, element: Any) -> None:
        self._window.append((element, self._pool.submit(self._fn, element)))

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        window = self._window
        if self._restored:
            for element in self._restored:
                self._submit(element)
            self._restored = []
        while not self._exhausted and len(window) < self._depth:
            try:
                element = next(self._parent)
            except StopIteration:
                self._exhausted = True
            except Exception as exc:  # the parent's error comes after the elements before it
                self._exhausted = True
                self._error = exc
            else:
                self._submit(element)
        if not window:
            error, self._error = self._error, None
            if error is not None:
                raise error
            raise StopIteration
        # An element whose fn raised stays pending: a resume calls fn on it again.
        result = window[0][1].result()
        window.popleft()
        return result

    def _own_state(self) -> dict[str, Any]:
        return {"pending": [*self._restored, *(element for element, _ in self._window)]}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()


class PrefetchStage(Child):
    """A thread that keeps up to ``size`` elements of the parent ready.

    The thread pulls under a lock that ``state()`` takes too, so the parent's state and the
    elements queued (``pending``) are taken at the same point."""

    kind = "prefetch"

    def __init__(self, parent: Stage, size: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._size = size
        self._items: deque[Any] = deque(state["pending"] if state else ())
        self._cond = threading.Condition()
        self._pulling = threading.Lock()
        self._ended = False
        self._error: Exception | None = None
        self._closed = False
        # Started by the first ``next``: an iteration that never starts leaves no thread.
        self._thread: threading.Thread | None = None

    def _produce(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while len(self._items) >= self._size and not self._closed:
                    cond.wait()
                if self._closed:
                    return
            with self._pulling:
                if self._closed:
                    return
                try:
                    item = next(self._parent)
                except StopIteration:
                    with cond:
                        self._ended = True
                        cond.notify_all()
                    return
                except Exception as exc:
                    with cond:
                        self._error = exc
                        cond.notify_all()
                    return
                with cond:
                    self._items.append(item)
                    cond.notify_all()

    def __next__(self) -> Any:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._produce, name="tfrecord-s3-prefetch", daemon=True)
            self._thread.start()
        with self._cond:
            while not self._items and not self._ended and self._error is None and not self._closed:
                self._cond.wait()
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._error is not None:
                raise self._error
            raise StopIteration

    def state(self) -> dict[str, Any]:
        with self._pulling, self._cond:
            return {"kind": self.kind, "parent": self._parent.state(), "pending": list(self._items)}

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        with self._pulling:  # the thread is between two pulls: the parent is free to close
            self._parent.close()
        if self._thread is not None:
            self._thread.join()
