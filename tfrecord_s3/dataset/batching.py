"""The stages that group and split elements: ``batch``, ``padded_batch``, ``unbatch``.

``batch`` and ``padded_batch`` pull their elements synchronously (their parent's state
between two batches is exactly what they consumed); ``unbatch`` keeps the rows of the batch
it is splitting in its state, so a resume hands out the rest of them first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..decode.ragged import RaggedValues
from ..errors import ConfigError
from .stages import Child, Stage


class BatchStage(Child):
    """Groups ``size`` elements: bytes -> list, arrays -> stacked array, dicts -> dict of stacks."""

    kind = "batch"

    def __init__(self, parent: Stage, size: int, drop_remainder: bool) -> None:
        super().__init__(parent)
        self._size = size
        self._drop = drop_remainder

    def __next__(self) -> Any:
        take_many = getattr(self._parent, "take_many", None)
        if take_many is not None:
            # Straight from the source: records sliced out of the prefetched chunks.
            records: list[bytes] = take_many(self._size)
            if not records or (self._drop and len(records) < self._size):
                raise StopIteration
            return records
        return stack(self._collect())

    def _collect(self) -> list[Any]:
        """The next ``size`` elements (fewer at the end unless ``drop_remainder``)."""
        items: list[Any] = []
        append = items.append
        parent = self._parent
        try:
            for _ in range(self._size):
                append(next(parent))
        except StopIteration:
            if not items or (self._drop and len(items) < self._size):
                raise
        return items


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


class PaddedBatchStage(BatchStage):
    """``batch`` for dense elements of varying shape: each component padded to a common shape."""

    kind = "padded_batch"

    def __init__(self, parent: Stage, size: int, drop_remainder: bool, padded_shapes: Any, padding_values: Any) -> None:
        super().__init__(parent, size, drop_remainder)
        self._shapes = padded_shapes
        self._values = padding_values

    def __next__(self) -> Any:
        return pad_stack(self._collect(), self._shapes, self._values, "")


def pad_stack(items: list[Any], shapes: Any, values: Any, name: str) -> Any:
    """Stack ``items`` (arrays, or dicts / tuples of them), padding every component.

    ``shapes``: None (pad each dimension to the batch's longest), one shape (ints, with None
    or -1 for "the batch's longest"), or the element's structure of them. ``values``: None
    (0, False or b""), one scalar for every component, or the element's structure of them."""
    first = items[0]
    if isinstance(first, dict):
        return {
            key: pad_stack([item[key] for item in items], _part(shapes, key, name), _value_part(values, key, name), key)
            for key in first
        }
    if type(first) is tuple:
        return tuple(
            pad_stack([item[i] for item in items], _part(shapes, i, name), _value_part(values, i, name), f"{name}[{i}]")
            for i in range(len(first))
        )
    return _pad_leaf(items, shapes, values, name)


def _part(shapes: Any, key: str | int, name: str) -> Any:
    if shapes is None:
        return None
    try:
        return shapes[key]
    except (KeyError, IndexError, TypeError):
        raise ConfigError(
            f"padded_batch: padded_shapes has no entry for component {key!r}{_of(name)}; give one per component"
        ) from None


def _value_part(values: Any, key: str | int, name: str) -> Any:
    if isinstance(values, Mapping) or type(values) is tuple:
        return _part(values, key, name)
    return values  # one scalar (or None) for every component


def _pad_leaf(items: list[Any], shape_spec: Any, value: Any, name: str) -> np.ndarray:
    arrays = [_dense(item, name) for item in items]
    rank = arrays[0].ndim
    if any(a.ndim != rank for a in arrays):
        ranks = sorted({a.ndim for a in arrays})
        raise ConfigError(f"padded_batch: component{_of(name)} has elements of ranks {ranks}; padding needs one rank")
    wanted = _shape(shape_spec, rank, name)
    longest = [max(a.shape[d] for a in arrays) for d in range(rank)]
    target = []
    for d in range(rank):
        size = wanted[d]
        if size is None or size == -1:
            size = longest[d]
        elif size < longest[d]:
            raise ConfigError(
                f"padded_batch: an element of component{_of(name)} has size {longest[d]} in dimension {d}, "
                f"more than the padded shape {list(wanted)} allows"
            )
        target.append(size)
    dtype = object if any(a.dtype == object for a in arrays) else np.result_type(*arrays)
    if value is None:
        value = b"" if dtype is object else 0
    out = np.full((len(arrays), *target), value, dtype=dtype)
    for i, a in enumerate(arrays):
        region: tuple[int | slice, ...] = (i, *[slice(0, n) for n in a.shape])
        out[region] = a
    return out


def _dense(item: Any, name: str) -> np.ndarray:
    if isinstance(item, RaggedValues):
        raise ConfigError(
            f"padded_batch pads dense values; component{_of(name)} is a RaggedValues (partitioned RaggedFeature): "
            "batch it with batch(), or map it to .to_dense() first"
        )
    array = np.asarray(item)
    if array.dtype.kind in "SU":  # bytes / str: keep them whole (numpy's fixed width strips b"\0")
        array = np.empty((), dtype=object) if isinstance(item, (bytes, str)) else np.array(item, dtype=object)
        if array.ndim == 0:
            array[()] = item
    return array


def _shape(spec: Any, rank: int, name: str) -> list[int | None]:
    if spec is None:
        return [None] * rank
    dims = [spec] if isinstance(spec, (int, np.integer)) else list(spec)
    if len(dims) != rank:
        raise ConfigError(f"padded_batch: padded shape {dims} for component{_of(name)} of rank {rank}")
    return [None if d is None else int(d) for d in dims]


def _of(name: str) -> str:
    return f" {name!r}" if name else ""


class UnbatchStage(Child):
    """Splits each element along its first dimension: TF's ``unbatch``."""

    kind = "unbatch"

    def __init__(self, parent: Stage, state: dict[str, Any] | None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = list(state["rows"]) if state else []
        self._pos = 0

    def __next__(self) -> Any:
        while self._pos >= len(self._rows):
            self._rows = split(next(self._parent))
            self._pos = 0
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def _own_state(self) -> dict[str, Any]:
        return {"rows": self._rows[self._pos :]}


def split(batch: Any) -> list[Any]:
    """The rows of one batch: lists and arrays by their first axis, RaggedValues by row,
    dicts and tuples component-wise (every component must have the same number of rows)."""
    if isinstance(batch, dict):
        columns = {key: split(value) for key, value in batch.items()}
        count = _common_length([len(c) for c in columns.values()], list(columns))
        return [{key: column[i] for key, column in columns.items()} for i in range(count)]
    if type(batch) is tuple:
        parts = [split(value) for value in batch]
        count = _common_length([len(p) for p in parts], list(range(len(parts))))
        return [tuple(part[i] for part in parts) for i in range(count)]
    if isinstance(batch, RaggedValues):
        return [batch.row(i) for i in range(batch.nrows)]
    if isinstance(batch, list) or (isinstance(batch, np.ndarray) and batch.ndim > 0):
        return list(batch)
    raise ConfigError(f"unbatch needs elements with a batch dimension, got a {type(batch).__name__}")


def _common_length(lengths: list[int], names: Sequence[Any]) -> int:
    if len(set(lengths)) > 1:
        sizes = dict(zip(names, lengths, strict=True))
        raise ConfigError(f"unbatch: the components have different numbers of rows: {sizes}")
    return lengths[0] if lengths else 0
