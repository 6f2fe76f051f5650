"""Tell an Example from a SequenceExample (or neither) by the top-level protobuf fields.

Both messages are a list of length-delimited fields: Example has only field 1 (features);
SequenceExample has field 1 (context) and field 2 (feature_lists). A SequenceExample without
feature lists is byte-for-byte an Example with the same features, so calling it one loses
nothing. The wire rules come from ``decode/wire.py``, the one Python reference.
"""

from __future__ import annotations

from ..decode.wire import FEATURE_LISTS, FEATURES, WIRE_LEN, WireError, read_varint

EXAMPLE = "example"
SEQUENCE_EXAMPLE = "sequence_example"
RAW = "raw"


def record_kind(data: bytes) -> str:
    """EXAMPLE, SEQUENCE_EXAMPLE, or RAW when the bytes cannot be either."""
    fields: set[int] = set()
    pos = 0
    try:
        while pos < len(data):
            tag, pos = read_varint(data, pos)
            if tag & 7 != WIRE_LEN or tag >> 3 not in (FEATURES, FEATURE_LISTS):
                return RAW
            length, pos = read_varint(data, pos)
            pos += length
            if pos > len(data):
                return RAW
            fields.add(tag >> 3)
    except WireError:
        return RAW
    return SEQUENCE_EXAMPLE if FEATURE_LISTS in fields else EXAMPLE
