"""Tell an Example from a SequenceExample (or neither) by the top-level protobuf fields.

Both messages are a list of length-delimited fields: Example has only field 1 (features);
SequenceExample has field 1 (context) and field 2 (feature_lists). A SequenceExample without
feature lists is byte-for-byte an Example with the same features, so calling it one loses
nothing.
"""

from __future__ import annotations

EXAMPLE = "example"
SEQUENCE_EXAMPLE = "sequence_example"
RAW = "raw"

_LENGTH_DELIMITED = 2


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def record_kind(data: bytes) -> str:
    """EXAMPLE, SEQUENCE_EXAMPLE, or RAW when the bytes cannot be either."""
    fields: set[int] = set()
    pos = 0
    try:
        while pos < len(data):
            tag, pos = _varint(data, pos)
            if tag & 7 != _LENGTH_DELIMITED or tag >> 3 not in (1, 2):
                return RAW
            length, pos = _varint(data, pos)
            pos += length
            if pos > len(data):
                return RAW
            fields.add(tag >> 3)
    except ValueError:
        return RAW
    return SEQUENCE_EXAMPLE if 2 in fields else EXAMPLE
