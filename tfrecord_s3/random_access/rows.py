"""Decode a batch of records with the batch decoder, then hand back one dict per record.

Row ``i`` equals ``parse_example(records[i], features)`` exactly: fixed-length and
variable-length features are decoded for the whole batch at once and sliced; kinds whose
batch form differs from their per-record form (sequence features are padded to the batch's
longest) are decoded record by record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..decode import FixedLenFeature, RaggedValues, VarLenFeature, parse_example, parse_example_batch
from ..errors import DecodeError


def decode_rows(
    records: Sequence[bytes], features: Mapping[str, Any], where: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """One dict per record; ``where`` is each record's (path, offset), used to name a bad one."""
    sliced = {k: s for k, s in features.items() if isinstance(s, (FixedLenFeature, VarLenFeature))}
    rest = {k: s for k, s in features.items() if k not in sliced}
    try:
        batch = parse_example_batch(records, sliced) if sliced else {}
    except DecodeError:
        # Find and name the record at fault (the batch mixes files, so it cannot say which).
        for record, (path, offset) in zip(records, where, strict=True):
            parse_example(record, sliced, path=path, offset=offset)
        raise
    rows: list[dict[str, Any]] = [{} for _ in records]
    for key in features:
        if key in batch:
            _split_into(rows, key, batch[key])
    if rest:
        for row, record, (path, offset) in zip(rows, records, where, strict=True):
            row.update(parse_example(record, rest, path=path, offset=offset))
        rows = [{key: row[key] for key in features if key in row} for row in rows]  # the spec's order
    return rows


def _split_into(rows: list[dict[str, Any]], key: str, value: Any) -> None:
    if isinstance(value, RaggedValues):
        splits = value.row_splits.tolist()
        flat: Any = value.values
        for i, row in enumerate(rows):
            row[key] = flat[splits[i] : splits[i + 1]]
        return
    for i, row in enumerate(rows):
        row[key] = value[i]
