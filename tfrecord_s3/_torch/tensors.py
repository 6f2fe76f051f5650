"""Decoded values as tensors, the same way one record at a time or batched.

A numeric array becomes a tensor and a numeric numpy scalar (``FixedLenFeature([])`` of one
record) a 0-d tensor, never a numpy scalar; bytes stay ``bytes`` (lists of them for
arrays). Variable-length values of a batch (:class:`RaggedValues`) come out as chosen by
``ragged``:

- ``"ragged"``: the RaggedValues itself (flat values and row lengths, as tensors' sources);
- ``"padded"``: a ``[batch, longest]`` tensor padded with 0 (b"" for bytes: a list of
  lists), plus ``<key>_lengths``, an int64 tensor of each row's length;
- ``"nested"``: a ``torch.nested`` jagged tensor, one row per record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..decode import RaggedValues
from ..errors import ConfigError

RAGGED_MODES = ("ragged", "padded", "nested")
LENGTHS_SUFFIX = "_lengths"


def check_ragged(mode: str) -> str:
    if mode not in RAGGED_MODES:
        raise ConfigError(f"ragged must be one of {RAGGED_MODES}, not {mode!r}")
    return mode


def as_tensors(value: Any, *, ragged: str = "ragged") -> Any:
    """``value`` (a decoded record or batch: dicts, tuples, lists, arrays) with tensors in it."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, RaggedValues) and ragged == "padded":
                out[key], out[f"{key}{LENGTHS_SUFFIX}"] = padded(item)
            else:
                out[key] = as_tensors(item, ragged=ragged)
        return out
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return value.tolist()
        return torch.from_numpy(value if value.flags.writeable else value.copy())
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return torch.from_numpy(np.array(value))
    if isinstance(value, RaggedValues):
        if ragged == "nested":
            return nested(value)
        if ragged == "padded":
            return padded(value)
        return value
    if isinstance(value, tuple):
        return tuple(as_tensors(v, ragged=ragged) for v in value)
    if isinstance(value, list):
        return [as_tensors(v, ragged=ragged) for v in value]
    return value


def padded(value: RaggedValues) -> tuple[Any, torch.Tensor]:
    """(rows padded to the longest, int64 row lengths)."""
    lengths = torch.from_numpy(np.ascontiguousarray(value.row_lengths, dtype=np.int64))
    if isinstance(value.values, list):
        return [list(row) for row in value.to_list()], lengths
    return torch.from_numpy(value.to_dense()), lengths


def nested(value: RaggedValues) -> Any:
    """A jagged ``torch.nested`` tensor of the rows (bytes rows: a list of lists)."""
    if isinstance(value.values, (list, RaggedValues)):
        return value.to_list()
    values = torch.from_numpy(np.ascontiguousarray(value.values))
    offsets = torch.from_numpy(value.row_splits)
    return torch.nested.nested_tensor_from_jagged(values, offsets)
