"""Decode one column of serialized Features (one per record) for a whole batch at once.

Input: what ``_gather.gather_features`` produced for one key, i.e. protobuf's canonical
serialization of each record's Feature (``b""`` when missing or kindless). The layout is
fixed: ``tag(kind) len [0x0a len payload]``, with a packed payload for float (little-endian
float32) and int64 (varints). Numbers are decoded with vectorized numpy over the batch,
never one Python object per value. Any element that does not have exactly this layout
(unknown fields, which protobuf keeps and re-emits) sends the column to the slow path,
which asks protobuf itself: the fast path never guesses. The wire constants and the scalar
varint reads come from ``wire.py`` (the Python reference of the format); the numpy code here
applies the same rules to a whole batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..proto.feature_pb2 import Feature
from .specs import BYTES, FLOAT32, INT64, KIND_OF_DTYPE, TF_NAME_OF_KIND
from .wire import LIST_TAG, MAX_LENGTH_BYTES, TAG_OF_DTYPE, WireError, read_varint

__all__ = ["MISSING", "WRONG_KIND", "Column", "decode_column", "decode_column_slow"]

MISSING = -1  # absent, or a Feature with no kind set (TensorFlow: missing)
WRONG_KIND = -2  # a Feature holding another kind than the column's dtype

_KIND_OF_TAG = {TAG_OF_DTYPE[dtype]: kind for dtype, kind in KIND_OF_DTYPE.items()}
_DTYPE_OF_KIND = {kind: dtype for dtype, kind in KIND_OF_DTYPE.items()}
_KNOWN_TAG = np.zeros(256, dtype=bool)
_KNOWN_TAG[[0, *TAG_OF_DTYPE.values()]] = True
_PAD = b"\0" * 16  # lets varint reads look ahead without bounds checks
_LOOKAHEAD = np.arange(MAX_LENGTH_BYTES, dtype=np.int64)
_SHIFTS5 = (7 * _LOOKAHEAD).astype(np.int64)

FlatValues = np.ndarray | list[bytes]


@dataclass(frozen=True, eq=False)
class Column:
    """One feature over a batch: flat ``values`` and per-record ``counts``.

    ``counts[r]`` is the number of values record ``r`` holds, or ``MISSING`` / ``WRONG_KIND``;
    ``tags[r]`` the Feature tag of the kind record ``r`` actually holds (0 if none).
    """

    values: FlatValues
    counts: np.ndarray
    tags: np.ndarray

    def found_type(self, index: int) -> str:
        """TensorFlow's name for the type record ``index`` holds ("int64", "float", "string")."""
        return TF_NAME_OF_KIND.get(_KIND_OF_TAG.get(int(self.tags[index]), ""), "none")


class _Layout(Exception):
    """An element does not have the canonical layout; decode the column the slow way."""


def decode_column(blobs: Sequence[bytes], dtype: str) -> Column:
    """Decode serialized Features (one per record) of the column's ``dtype``."""
    try:
        return _decode_fast(blobs, dtype)
    except _Layout:
        return decode_column_slow(blobs, dtype)


def decode_column_slow(blobs: Sequence[bytes], dtype: str) -> Column:
    """The reference decoder: protobuf parses each Feature. Used for unusual layouts."""
    kind = KIND_OF_DTYPE[dtype]
    counts = np.empty(len(blobs), dtype=np.int64)
    tags = np.zeros(len(blobs), dtype=np.int64)
    values: list[object] = []
    for index, blob in enumerate(blobs):
        feature = Feature.FromString(blob)
        which = feature.WhichOneof("kind")
        tags[index] = TAG_OF_DTYPE[_DTYPE_OF_KIND[which]] if which else 0
        if which is None:
            counts[index] = MISSING
        elif which != kind:
            counts[index] = WRONG_KIND
        elif which == "float_list":
            # Through the packed wire bytes, not Python floats: widening a float32 to a
            # double quiets a signalling NaN, and TensorFlow keeps every bit. Unknown fields
            # (kept and re-emitted by protobuf) are dropped first: they hold no values.
            floats = feature.float_list
            floats.DiscardUnknownFields()
            items32 = _packed_floats(floats.SerializeToString())
            values.append(items32)
            counts[index] = len(items32)
        else:
            items = getattr(feature, kind).value
            values.extend(items)
            counts[index] = len(items)
    if dtype == FLOAT32:
        flat = np.concatenate(values) if values else np.empty(0, dtype=np.float32)  # type: ignore[arg-type]
        return Column(flat.astype(np.float32, copy=False), counts, tags)
    return Column(_as_flat(values, dtype), counts, tags)


def _packed_floats(serialized: bytes) -> np.ndarray:
    """The values of a serialized FloatList (field 1, packed) as float32, bit for bit."""
    if not serialized:
        return np.empty(0, dtype=np.float32)
    # LIST_TAG, then the payload length as a varint, then 4 bytes per value
    length, pos = read_varint(serialized, 1, MAX_LENGTH_BYTES)
    return np.frombuffer(serialized, dtype="<f4", count=length // 4, offset=pos).astype(np.float32)


def _as_flat(values: list[object], dtype: str) -> FlatValues:
    if dtype == BYTES:
        return values  # type: ignore[return-value]
    return np.array(values, dtype=np.int64 if dtype == INT64 else np.float32)


def _read_lengths(data: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length varints at ``positions``: (values, sizes in bytes). ``data`` is padded."""
    first = data[positions].astype(np.int64)
    if not (first & 0x80).any():  # the usual case: every length < 128
        return first, np.ones(len(positions), dtype=np.int64)
    window = data[positions[:, None] + _LOOKAHEAD].astype(np.int64)
    more = (window & 0x80) != 0
    if more.all(axis=1).any():
        raise _Layout
    sizes = np.argmin(more, axis=1) + 1
    keep = sizes[:, None] > _LOOKAHEAD
    values = (((window & 0x7F) << _SHIFTS5) * keep).sum(axis=1)
    return values, sizes


def _concat_ranges(data: np.ndarray, starts: np.ndarray, stops: np.ndarray, end: int) -> np.ndarray:
    """``data[s0:e0] + data[s1:e1] + ...`` (sorted, disjoint ranges within ``data[:end]``) as
    one array, without a Python loop: indexes the kept bytes or masks out the gaps,
    whichever is smaller (long float lists are mostly payload, scalars mostly header)."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return data[:0]
    if len(starts) == 1:
        return data[int(starts[0]) : int(stops[0])]
    if 2 * total <= end:
        offsets = np.cumsum(lengths) - lengths
        picked: np.ndarray = data[np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)]
        return picked
    gap_starts = np.concatenate(([0], stops))
    gap_lengths = np.concatenate((starts, [end])) - gap_starts
    gaps = int(gap_lengths.sum())
    gap_offsets = np.cumsum(gap_lengths) - gap_lengths
    keep = np.ones(end, dtype=bool)
    keep[np.arange(gaps, dtype=np.int64) + np.repeat(gap_starts - gap_offsets, gap_lengths)] = False
    return data[:end][keep]


def _decode_varints(payload: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed varints -> (int64 values, cumulative count of values ending before each byte)."""
    ends = payload < 0x80
    done_before = np.zeros(len(payload) + 1, dtype=np.int64)
    np.cumsum(ends, out=done_before[1:])
    if len(payload) == 0:
        return np.zeros(0, dtype=np.int64), done_before
    if ends.all():  # every value < 128: one byte each
        return payload.astype(np.int64), done_before
    group_starts = np.flatnonzero(np.concatenate(([True], ends[:-1])))
    group_of_byte = done_before[:-1]
    position = np.arange(len(payload), dtype=np.int64) - group_starts[group_of_byte]
    if position.max() > 9:
        raise _Layout
    terms = (payload & 0x7F).astype(np.uint64) << (position.astype(np.uint64) * np.uint64(7))
    values: np.ndarray = np.add.reduceat(terms, group_starts).view(np.int64)
    return values, done_before


def _decode_fast(blobs: Sequence[bytes], dtype: str) -> Column:
    count = len(blobs)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=count)
    buffer = b"".join([*blobs, _PAD])
    data = np.frombuffer(buffer, dtype=np.uint8)
    stops = np.cumsum(lengths)
    starts = stops - lengths

    counts = np.full(count, MISSING, dtype=np.int64)
    present = lengths > 0
    tags = np.zeros(count, dtype=np.int64)
    tags[present] = data[starts[present]]
    if not _KNOWN_TAG[tags].all():
        raise _Layout
    want = TAG_OF_DTYPE[dtype]
    counts[present & (tags != want)] = WRONG_KIND

    mine = np.flatnonzero(present & (tags == want))
    if len(mine) == 0:
        return Column(_as_flat([], dtype), counts, tags)
    # Feature: tag, varint L1, then L1 bytes of the list message, and nothing after.
    list_len, size = _read_lengths(data, starts[mine] + 1)
    list_start = starts[mine] + 1 + size
    if not np.array_equal(list_start + list_len, stops[mine]):
        raise _Layout
    empty = list_len == 0
    counts[mine[empty]] = 0
    mine, list_start, list_stop = mine[~empty], list_start[~empty], stops[mine[~empty]]
    if len(mine) == 0:
        return Column(_as_flat([], dtype), counts, tags)
    if dtype == BYTES:
        return _decode_bytes(buffer, data, mine, list_start, list_stop, counts, tags)

    # FloatList / Int64List: one packed field, LIST_TAG, varint L2, then exactly L2 bytes.
    if (data[list_start] != LIST_TAG).any():
        raise _Layout
    packed_len, size = _read_lengths(data, list_start + 1)
    packed_start = list_start + 1 + size
    if not np.array_equal(packed_start + packed_len, list_stop):
        raise _Layout
    payload = _concat_ranges(data, packed_start, list_stop, len(buffer) - len(_PAD))
    if dtype == FLOAT32:
        if (packed_len % 4).any():
            raise _Layout
        counts[mine] = packed_len // 4
        return Column(payload.view("<f4").astype(np.float32), counts, tags)
    if len(payload) and payload[-1] >= 0x80:
        raise _Layout
    values, done_before = _decode_varints(payload)
    region_stop = np.cumsum(packed_len)
    region_start = region_stop - packed_len
    counts[mine] = done_before[region_stop] - done_before[region_start]
    return Column(values, counts, tags)


def _decode_bytes(
    buffer: bytes,
    data: np.ndarray,
    mine: np.ndarray,
    list_start: np.ndarray,
    list_stop: np.ndarray,
    counts: np.ndarray,
    tags: np.ndarray,
) -> Column:
    """BytesList payloads: ``(0x0a len bytes)*``. One value per record is found with numpy;
    records holding several values are walked in Python (one step per value anyway)."""
    if (data[list_start] != LIST_TAG).any():
        raise _Layout
    value_len, size = _read_lengths(data, list_start + 1)
    value_start = list_start + 1 + size
    single = value_start + value_len == list_stop
    if single.all():  # one value per record: the common case (images, ids, names)
        values = [buffer[start:stop] for start, stop in zip(value_start.tolist(), list_stop.tolist(), strict=True)]
        counts[mine] = 1
        return Column(values, counts, tags)
    values = []
    append = values.append
    multi_counts: list[int] = []
    for is_single, start, stop, record_start in zip(
        single.tolist(), value_start.tolist(), list_stop.tolist(), list_start.tolist(), strict=True
    ):
        if is_single:
            append(buffer[start:stop])
        else:
            parts = _split_bytes_list(buffer, record_start, stop)
            values.extend(parts)
            multi_counts.append(len(parts))
    counts[mine] = 1
    counts[mine[~single]] = multi_counts
    return Column(values, counts, tags)


def _split_bytes_list(buffer: bytes, position: int, stop: int) -> list[bytes]:
    """Walk ``(LIST_TAG varint bytes)*`` in ``buffer[position:stop]``."""
    out = []
    while position < stop:
        if buffer[position] != LIST_TAG:
            raise _Layout
        try:
            length, position = read_varint(buffer, position + 1, MAX_LENGTH_BYTES)
        except WireError:
            raise _Layout from None
        end = position + length
        if end > stop:
            raise _Layout
        out.append(buffer[position:end])
        position = end
    return out
