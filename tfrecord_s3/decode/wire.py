"""The protobuf wire format of ``tf.train.Example`` / ``SequenceExample``, written out once.

Where the bytes are read or written by hand rather than by protobuf, two implementations
exist and no more: the compiled kernel ``decode/_native.c`` (batch decoding, in C) and this
module, the Python reference. ``encode.py`` writes Examples with it, ``cli/_record_kind.py``
tells an Example from a SequenceExample with it, and ``_columns.py`` takes its constants
and primitives (its numpy fast path applies the same rules to a whole batch at once, and
hands anything unusual to protobuf). Everything else parses with protobuf itself.

The messages (tensorflow/core/example/example.proto, feature.proto)::

    Example          1: Features                 SequenceExample  1: Features (context)
    Features         1: map<string, Feature>                      2: FeatureLists
    map entry        1: key, 2: value            FeatureLists     1: map<string, FeatureList>
    Feature          oneof 1: BytesList, 2: FloatList, 3: Int64List
    *List            1: repeated values (floats as little-endian float32, ints as varints;
                        both packed when written by TensorFlow)
"""

from __future__ import annotations

from .specs import BYTES, FLOAT32, INT64

__all__ = [
    "FEATURES",
    "FEATURE_LISTS",
    "LIST_TAG",
    "MAP_KEY",
    "MAP_VALUE",
    "MAX_LENGTH_BYTES",
    "TAG_OF_DTYPE",
    "WIRE_LEN",
    "WireError",
    "field",
    "read_varint",
    "varint",
]

WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32 = 0, 1, 2, 5
FEATURES = 1  # Example.features, SequenceExample.context; also Features' map entries
FEATURE_LISTS = 2  # SequenceExample.feature_lists
MAP_KEY, MAP_VALUE = 1, 2
# The tag (field << 3 | WIRE_LEN) of each Feature kind, by the dtype it holds.
TAG_OF_DTYPE = {BYTES: 1 << 3 | WIRE_LEN, FLOAT32: 2 << 3 | WIRE_LEN, INT64: 3 << 3 | WIRE_LEN}
LIST_TAG = 1 << 3 | WIRE_LEN  # a *List's values, length-delimited (packed or a bytes value)
MAX_VARINT_BYTES = 10
MAX_LENGTH_BYTES = 5  # protobuf reads a length as at most 5 bytes (< 2**35)

_U64 = (1 << 64) - 1


class WireError(ValueError):
    """Bytes that are not a well-formed varint where one must be."""


def varint(value: int) -> bytes:
    """``value`` as a varint; a negative int64 as its 10-byte two's complement, as protobuf writes it."""
    value &= _U64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return varint(number << 3 | WIRE_LEN) + varint(len(payload)) + payload


def read_varint(data: bytes | bytearray | memoryview, pos: int, max_bytes: int = MAX_VARINT_BYTES) -> tuple[int, int]:
    """(the varint at ``data[pos]``, the position after it); ``WireError`` when it is cut off
    or longer than ``max_bytes``."""
    result = 0
    for index in range(max_bytes):
        if pos >= len(data):
            raise WireError("varint cut off")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return result, pos
    raise WireError(f"varint longer than {max_bytes} bytes")
