"""One object per process, made afresh in a forked child (a DataLoader worker gets its own).

The transfer scheduler, the latency tracker of hedged GETs and the pool of block buffers are
each shared by every stream of a process; what a parent's threads were doing with them means
nothing in a child, whose copy would count GETs and bytes that are not its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["ProcessLocal"]

T = TypeVar("T")


class ProcessLocal(Generic[T]):
    """``get()`` returns this process's object, made by ``factory`` on first use."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._value: T | None = None
        self._pid = os.getpid()

    def get(self, factory: Callable[[], T] | None = None) -> T:
        """This process's object; ``factory`` (else the default one) makes it if there is none."""
        with self._lock:
            if self._value is None or self._pid != os.getpid():
                self._value = (factory or self._factory)()
                self._pid = os.getpid()
            return self._value
