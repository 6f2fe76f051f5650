"""The live iterators behind each lazy transformation, each able to report its position.

Every stage is an iterator with ``state() -> dict`` (enough to resume right after the last
element it returned) and ``close()``. Stages here pull from their parent synchronously, so a
parent's state taken between two outputs of its child is exactly what the child consumed;
a stage that holds elements back (a shuffle buffer, an unbatched batch, the inputs in flight
of a parallel map) saves them in its own state, to hand them out first on resume.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ..errors import ConfigError


class Stage(Protocol):
    def __iter__(self) -> Iterator[Any]: ...

    def __next__(self) -> Any: ...

    def state(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


Opener = Callable[[dict[str, Any] | None, int], Stage]
"""Opens a parent stage from a saved state (or None) for a given repetition (epoch)."""


class Child:
    """A stage over one parent stage."""

    kind = "stage"

    def __init__(self, parent: Stage) -> None:
        self._parent = parent

    def __iter__(self) -> Child:
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


def call(fn: Callable[..., Any], element: Any) -> Any:
    """``fn(element)``, or ``fn(*element)`` for a tuple, as tf.data calls ``map`` functions."""
    if type(element) is tuple:
        return fn(*element)
    return fn(element)


class MapStage(Child):
    """``fn`` on each element, inline. Inputs a parallel map had in flight (``pending`` in a
    state it saved) come first."""

    kind = "map"

    def __init__(self, parent: Stage, fn: Callable[[Any], Any], state: dict[str, Any] | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._pending = list((state or {}).get("pending", ()))

    def __next__(self) -> Any:
        if self._pending:
            result = self._fn(self._pending[0])
            del self._pending[0]
            return result
        return self._fn(next(self._parent))

    def _own_state(self) -> dict[str, Any]:
        return {"pending": list(self._pending)} if self._pending else {}


class FilterStage(Child):
    """Keeps the elements for which ``predicate`` is true (called as ``map`` calls ``fn``)."""

    kind = "filter"

    def __init__(self, parent: Stage, predicate: Callable[..., Any]) -> None:
        super().__init__(parent)
        self._predicate = predicate

    def __next__(self) -> Any:
        while True:
            element = next(self._parent)
            if call(self._predicate, element):
                return element


class ShardStage(Child):
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


class TakeStage(Child):
    """The first ``count`` elements; all of them when ``count`` is negative (-1), as in TF."""

    kind = "take"

    def __init__(self, parent: Stage, count: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._left = int(state["left"]) if state else count

    def __next__(self) -> Any:
        if self._left < 0:
            return next(self._parent)
        if self._left == 0:
            self.close()
            raise StopIteration
        element = next(self._parent)
        self._left -= 1
        return element

    def _own_state(self) -> dict[str, Any]:
        return {"left": self._left}


class SkipStage(Child):
    """All but the first ``count`` elements; none when ``count`` is negative (-1), as in TF."""

    kind = "skip"

    def __init__(self, parent: Stage, count: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._to_skip = int(state["to_skip"]) if state else count

    def __next__(self) -> Any:
        if self._to_skip < 0:
            for _ in self._parent:
                pass
            raise StopIteration
        while self._to_skip > 0:
            next(self._parent)
            self._to_skip -= 1
        return next(self._parent)

    def _own_state(self) -> dict[str, Any]:
        return {"to_skip": self._to_skip}


class ShuffleBuffer:
    """A shuffle buffer as TensorFlow's: fill it to ``size``, then hand out a random element
    and refill. ``rng`` is a ``random.Random`` of the caller's (never the global state)."""

    def __init__(self, size: int, rng: random.Random, items: list[Any] | None = None) -> None:
        self.size = size
        self.rng = rng
        self.items: list[Any] = [] if items is None else items
        self.exhausted = False

    def next_from(self, source: Iterator[Any]) -> Any:
        """The next shuffled element, pulling from ``source`` to keep the buffer full."""
        items = self.items
        while not self.exhausted and len(items) < self.size:
            try:
                items.append(next(source))
            except StopIteration:
                self.exhausted = True
        if not items:
            raise StopIteration
        i = self.rng.randrange(len(items))
        element = items[i]
        items[i] = items[-1]
        items.pop()
        return element


def shuffled(source: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """``source`` through a :class:`ShuffleBuffer` of ``size`` elements."""
    buffer = ShuffleBuffer(size, rng)
    while True:
        try:
            element = buffer.next_from(source)
        except StopIteration:
            return
        yield element


class ShuffleStage(Child):
    """A :class:`ShuffleBuffer` whose generator is seeded from ``(seed, draw)``: the ``draw``-th
    opening of the same shuffle (a new iteration, a new repetition) reshuffles, reproducibly.
    The generator's state, the draw and the buffered elements are part of ``state()``.
    """

    kind = "shuffle"

    def __init__(self, parent: Stage, buffer_size: int, seed: int, draw: int, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self.draw = int(state.get("draw", draw)) if state else draw
        self._buffer = ShuffleBuffer(buffer_size, random.Random(f"{seed}:{self.draw}"))
        if state:
            self._buffer.items = list(state["buffer"])
            self._buffer.exhausted = bool(state["exhausted"])
            self._buffer.rng.setstate(to_rng_state(state["rng"]))

    def __next__(self) -> Any:
        return self._buffer.next_from(self._parent)

    def _own_state(self) -> dict[str, Any]:
        return {
            "buffer": list(self._buffer.items),
            "exhausted": self._buffer.exhausted,
            "rng": from_rng_state(self._buffer.rng.getstate()),
            "draw": self.draw,
        }


def from_rng_state(state: Any) -> list[Any]:
    """``random.Random.getstate()`` as plain lists (a state dict stays plain data)."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def to_rng_state(state: list[Any]) -> Any:
    """The inverse of :func:`from_rng_state`."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


class RepeatStage:
    """Re-opens its parent ``count`` times (forever when None); each pass is an epoch.

    As in tf.data, repeating forever ends after a pass that gave nothing (an empty input
    would otherwise spin)."""

    kind = "repeat"

    def __init__(self, open_parent: Opener, count: int | None, state: dict[str, Any] | None) -> None:
        self._open_parent = open_parent
        self._count = count
        self._done = 0
        self._gave = False  # in the current pass
        parent_state = None
        if state:
            self._done = int(state["done"])
            self._gave = bool(state.get("gave", True))
            parent_state = state["parent"]
        self._parent: Stage | None = None
        if count is None or self._done < count:
            self._parent = open_parent(parent_state, self._done)

    def __iter__(self) -> RepeatStage:
        return self

    def __next__(self) -> Any:
        while self._parent is not None:
            try:
                element = next(self._parent)
            except StopIteration:
                self._parent.close()
                self._done += 1
                if (self._count is None and not self._gave) or (self._count is not None and self._done >= self._count):
                    self._parent = None
                    break
                self._gave = False
                self._parent = self._open_parent(None, self._done)
            else:
                self._gave = True
                return element
        raise StopIteration

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "done": self._done,
            "gave": self._gave,
            "parent": None if self._parent is None else self._parent.state(),
        }

    def close(self) -> None:
        if self._parent is not None:
            self._parent.close()


class RangeStage:
    """``start, start + step, ...`` up to ``stop`` (excluded), as Python's ``range``."""

    kind = "range"

    def __init__(self, start: int, stop: int, step: int, state: dict[str, Any] | None) -> None:
        self._stop = stop
        self._step = step
        self._next = int(state["next"]) if state else start

    def __iter__(self) -> RangeStage:
        return self

    def __next__(self) -> int:
        value = self._next
        if (value >= self._stop) if self._step > 0 else (value <= self._stop):
            raise StopIteration
        self._next = value + self._step
        return value

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "next": self._next}

    def close(self) -> None:
        pass
