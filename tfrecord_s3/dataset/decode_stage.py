"""Decoding records into Examples, with a ``DecodeError`` that names the record's file and offset.

Records travel through the pipeline as bare ``bytes`` (nothing per record but the record),
so the decoder does not know where one came from. Only when decoding fails is the record
looked up in the source's recent chunks (:meth:`InterleaveIterator.locate`) and decoded
again with its (path, offset): the error is the decoder's own, now naming the record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import DecodeError
from .stages import MapStage, Stage

Locator = Callable[[Sequence[object]], "list[tuple[str, int] | None]"]

_LOST = (
    "(the record's file and offset are no longer known: it was read too long before it was decoded, "
    "e.g. through a shuffle buffer)"
)


def decoder(features: Mapping[str, Any] | None) -> Callable[[Any], Any]:
    """``element -> decoded``: a record -> a dict of arrays; a list of records (a batch) ->
    one dict of stacked arrays."""
    from ..decode import parse_example, parse_example_batch

    def decode(element: Any) -> Any:
        if isinstance(element, list):
            return parse_example_batch(element, features)
        return parse_example(element, features)

    return decode


def located(exc: DecodeError, element: Any, features: Mapping[str, Any] | None, locate: Locator) -> DecodeError:
    """``exc`` raised decoding ``element`` (a record or a batch), redone with the failing
    record's path and offset when ``locate`` still knows them; else ``exc``, saying so."""
    from ..decode import parse_example, parse_example_batch

    records: list[Any] = element if isinstance(element, list) else [element]
    where = locate(records)
    paths = {w[0] for w in where if w is not None}
    try:
        if len(paths) == 1 and all(w is not None for w in where):
            # One file: the same batch again, with offsets, raises the same error, located.
            offsets = [w[1] for w in where if w is not None]
            parse_example_batch(records, features, path=paths.pop(), offsets=offsets)
        else:
            # Several files: the first record that fails on its own is the one to name.
            for record, w in zip(records, where, strict=True):
                if w is not None:
                    parse_example(record, features, path=w[0], offset=w[1])
    except DecodeError as again:
        again.__cause__ = again.__cause__ or exc.__cause__
        return again
    if exc.path is not None or not any(w is None for w in where):
        return exc
    lost = DecodeError(f"{exc} {_LOST}", feature=exc.feature)
    lost.__cause__ = exc.__cause__
    return lost


def source_locator(stage: Any) -> Locator:
    """The ``locate`` of the source under ``stage`` (a chain of ``_parent`` links)."""
    while stage is not None and not hasattr(stage, "locate"):
        stage = getattr(stage, "_parent", None)
    if stage is None:
        return lambda records: [None] * len(records)
    locate: Locator = stage.locate
    return locate


class DecodeStage(MapStage):
    """``parse_examples``: decodes each element; on failure names the record's file and offset."""

    def __init__(self, parent: Stage, features: Mapping[str, Any] | None, state: dict[str, Any] | None = None) -> None:
        super().__init__(parent, decoder(features), state)
        self._features = features

    def __next__(self) -> Any:
        if self._pending:  # elements a saved state held back: their origin is not known
            return super().__next__()
        element = next(self._parent)
        try:
            return self._fn(element)
        except DecodeError as exc:
            error = located(exc, element, self._features, source_locator(self._parent))
        raise error from error.__cause__
