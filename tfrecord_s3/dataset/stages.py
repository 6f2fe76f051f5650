"""The live iterators behind each lazy transformation, each able to report its position.

Every stage is an iterator with ``state() -> dict`` (enough to resume right after the last
element it returned) and ``close()``. Stages pull from their parent synchronously, so a
parent's state taken between two outputs of its child is exactly what the child consumed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError


class Stage(Protocol):
    def __iter__(self) -> Iterator[Any]: ...

    def __next__(self) -> Any: ...

    def state(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


Opener = Callable[[dict[str, Any] | None, int], Stage]
"""Opens a parent stage from a saved state (or None) for a given repetition (epoch)."""


class _Child:
    """A stage over one parent stage."""

    kind = "stage"

    def __init__(self, parent: Stage) -> None:
        self._parent = parent

    def __iter__(self) -> _Child:
        return self

    def __next__(self) -> Any:
        raise NotImplementedError

    def _own_state(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "parent": self._parent.state(), **self._own_state()}

    def close(self) -> None:
        self._parent.close()


def check_kind(state: dict[str, Any], kind: str) -> None:
    if state.get("kind") != kind:
        raise ConfigError(f"load_state_dict: expected a {kind!r} stage in the state, found {state.get('kind')!r}")


class MapStage(_Child):
    kind = "map"

    def __init__(self, parent: Stage, fn: Callable[[Any], Any]) -> None:
        super().__init__(parent)
        self._fn = fn

    def __next__(self) -> Any:
        return self._fn(next(self._parent))


class ShardStage(_Child):
    """Keeps elements ``index``, ``index + num_shards``, ... (TensorFlow's ``shard``)."""

    kind = "shard"

    def __init__(self, parent: Stage, num_shards: int, index: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._n = num_shards
        self._index = index
        self._seen = int(state["seen"]) if state else 0

    def __next__(self) -> Any:
        while True:
            element = next(self._parent)
            position = self._seen
            self._seen += 1
            if position % self._n == self._index:
                return element

    def _own_state(self) -> dict[str, Any]:
        return {"seen": self._seen}


class TakeStage(_Child):
    kind = "take"

    def __init__(self, parent: Stage, count: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._left = int(state["left"]) if state else count

    def __next__(self) -> Any:
        if self._left <= 0:
            self.close()
            raise StopIteration
        element = next(self._parent)
        self._left -= 1
        return element

    def _own_state(self) -> dict[str, Any]:
        return {"left": self._left}


class SkipStage(_Child):
    kind = "skip"

    def __init__(self, parent: Stage, count: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._to_skip = int(state["to_skip"]) if state else count

    def __next__(self) -> Any:
        while self._to_skip > 0:
            next(self._parent)
            self._to_skip -= 1
        return next(self._parent)

    def _own_state(self) -> dict[str, Any]:
        return {"to_skip": self._to_skip}


class ShuffleStage(_Child):
    """A shuffle buffer as TensorFlow's: fill it, then emit a random element and refill.

    The generator is ``random.Random`` seeded from (seed, epoch): reproducible, never the
    global random state. Its state, and the buffered elements, are part of ``state()``.
    """

    kind = "shuffle"

    def __init__(self, parent: Stage, buffer_size: int, seed: int, epoch: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._size = buffer_size
        self._rng = random.Random(f"{seed}:{epoch}")
        self._buffer: list[Any] = []
        self._exhausted = False
        if state:
            self._buffer = list(state["buffer"])
            self._exhausted = bool(state["exhausted"])
            self._rng.setstate(_to_rng_state(state["rng"]))

    def __next__(self) -> Any:
        buffer = self._buffer
        while not self._exhausted and len(buffer) < self._size:
            try:
                buffer.append(next(self._parent))
            except StopIteration:
                self._exhausted = True
        if not buffer:
            raise StopIteration
        i = self._rng.randrange(len(buffer))
        element = buffer[i]
        buffer[i] = buffer[-1]
        buffer.pop()
        return element

    def _own_state(self) -> dict[str, Any]:
        return {
            "buffer": list(self._buffer),
            "exhausted": self._exhausted,
            "rng": _from_rng_state(self._rng.getstate()),
        }


def _from_rng_state(state: Any) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _to_rng_state(state: list[Any]) -> Any:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


class BatchStage(_Child):
    """Groups ``size`` elements: bytes -> list, arrays -> stacked array, dicts -> dict of stacks."""

    kind = "batch"

    def __init__(self, parent: Stage, size: int, drop_remainder: bool) -> None:
        super().__init__(parent)
        self._size = size
        self._drop = drop_remainder

    def __next__(self) -> Any:
        parent = self._parent
        take_many = getattr(parent, "take_many", None)
        if take_many is not None:
            # Straight from the source: records sliced out of the prefetched chunks.
            records: list[bytes] = take_many(self._size)
            if not records or (self._drop and len(records) < self._size):
                raise StopIteration
            return records
        items: list[Any] = []
        append = items.append
        try:
            for _ in range(self._size):
                append(next(parent))
        except StopIteration:
            if not items or (self._drop and len(items) < self._size):
                raise
        return stack(items)


def stack(items: list[Any]) -> Any:
    """Stack a batch of like elements the way a training loop wants them."""
    first = items[0]
    if isinstance(first, (bytes, str)):
        return items
    if isinstance(first, dict):
        return {key: stack([item[key] for item in items]) for key in first}
    if isinstance(first, tuple):
        return tuple(stack([item[i] for item in items]) for i in range(len(first)))
    if isinstance(first, (np.ndarray, np.generic, int, float)):
        try:
            return np.stack([np.asarray(item) for item in items])
        except ValueError:
            return items  # ragged rows stay a list
    return items


class RepeatStage:
    """Re-opens its parent ``count`` times (forever when None); each pass is an epoch."""

    kind = "repeat"

    def __init__(self, open_parent: Opener, count: int | None, state: dict[str, Any] | None) -> None:
        self._open_parent = open_parent
        self._count = count
        self._done = 0
        parent_state = None
        if state:
            self._done = int(state["done"])
            parent_state = state["parent"]
        self._parent: Stage | None = None
        if count is None or self._done < count:
            self._parent = open_parent(parent_state, self._done)

    def __iter__(self) -> RepeatStage:
        return self

    def __next__(self) -> Any:
        while self._parent is not None:
            try:
                return next(self._parent)
            except StopIteration:
                self._parent.close()
                self._done += 1
                if self._count is not None and self._done >= self._count:
                    self._parent = None
                    break
                self._parent = self._open_parent(None, self._done)
        raise StopIteration

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "done": self._done,
            "parent": None if self._parent is None else self._parent.state(),
        }

    def close(self) -> None:
        if self._parent is not None:
            self._parent.close()
