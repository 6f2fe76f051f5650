"""collate: stack one-record-at-a-time samples into a batch, ragged features included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .tensors import LENGTHS_SUFFIX, check_ragged


def collate(samples: Sequence[Any], *, ragged: str = "padded") -> Any:
    """A batch from ``samples`` (what a map-style dataset or a per-record iterable yields).

    Tensors of one shape are stacked (0-d ones into a ``[batch]`` tensor); tensors of
    different lengths are padded with 0 to the longest plus ``<key>_lengths``
    (``ragged="padded"``), made one jagged ``torch.nested`` tensor (``"nested"``), or left
    a list (``"ragged"``); bytes and anything else become lists. Use it as
    ``DataLoader(..., collate_fn=collate)`` or ``functools.partial(collate, ragged="nested")``.
    """
    check_ragged(ragged)
    if not samples:
        return []
    first = samples[0]
    if isinstance(first, dict):
        out: dict[Any, Any] = {}
        for key in first:
            column = [sample[key] for sample in samples]
            if _needs_padding(column) and ragged == "padded":
                out[key], out[f"{key}{LENGTHS_SUFFIX}"] = _pad(column)
            else:
                out[key] = collate(column, ragged=ragged)
        return out
    if isinstance(first, tuple):
        return tuple(collate([s[i] for s in samples], ragged=ragged) for i in range(len(first)))
    if isinstance(first, torch.Tensor):
        if all(s.shape == first.shape for s in samples):
            return torch.stack(list(samples))
        if ragged == "padded":
            return _pad(list(samples))
        if ragged == "nested":
            return torch.nested.nested_tensor(list(samples), layout=torch.jagged)
    return list(samples)


def _needs_padding(column: list[Any]) -> bool:
    return (
        isinstance(column[0], torch.Tensor) and column[0].dim() >= 1 and any(c.shape != column[0].shape for c in column)
    )


def _pad(column: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(c) for c in column], dtype=torch.int64)
    return torch.nn.utils.rnn.pad_sequence(column, batch_first=True), lengths
