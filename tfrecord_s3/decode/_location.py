"""Where a record is, for error messages, and the one error every spec shares."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DecodeError
from ._columns import WRONG_KIND, Column
from .specs import TF_NAME_OF_DTYPE

__all__ = ["Location", "check_kinds"]


class Location:
    """Names records in error messages: ``Name: <path> at byte <offset>`` (TensorFlow's
    ``Name: <unknown>`` when unknown) and fills ``DecodeError.path`` / ``.offset``."""

    def __init__(self, path: str | None = None, offsets: Sequence[int] | None = None) -> None:
        self.path = path
        self.offsets = offsets

    def offset(self, index: int) -> int | None:
        return None if self.offsets is None else int(self.offsets[index])

    def name(self, index: int) -> str:
        if self.path is None:
            return "<unknown>" if self.offsets is None else f"<unknown> at byte {self.offset(index)}"
        return self.path if self.offsets is None else f"{self.path} at byte {self.offset(index)}"

    def error(self, index: int, feature: str | None, message: str) -> DecodeError:
        return DecodeError(
            f"Name: {self.name(index)}, {message}", path=self.path, offset=self.offset(index), feature=feature
        )


def check_kinds(key: str, dtype: str, column: Column, where: Location) -> None:
    """A DecodeError for the first record holding another kind than ``dtype``."""
    wrong = np.flatnonzero(column.counts == WRONG_KIND)
    if len(wrong):
        index = int(wrong[0])
        raise where.error(
            index,
            key,
            f"Key: {key}, Index: {index}.  Data types don't match. "
            f"Expected type: {TF_NAME_OF_DTYPE[dtype]}, Actual type: {column.found_type(index)}",
        )
