"""Serialize ``tf.train.Example`` records from plain Python and numpy values, without protobuf.

The wire format is small enough to write directly (tensorflow/core/example/example.proto and
feature.proto): ``Example{1: Features{1: map<string, Feature>}}``, ``Feature`` holds one of
``1: BytesList``, ``2: FloatList``, ``3: Int64List``, each with its values in field 1
(floats and ints packed). Keys are written sorted, as TensorFlow's deterministic
serialization does, so equal inputs give equal bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import ConfigError

__all__ = ["FeatureValue", "encode_example", "encode_feature"]

#: bytes/str (one value), a sequence of them, an int/float, a sequence of ints or floats,
#: or a numpy array (integer/bool -> int64_list, floating -> float_list, bytes -> bytes_list).
FeatureValue = bytes | str | int | float | Sequence[bytes | str] | Sequence[int] | Sequence[float] | np.ndarray

_U64 = (1 << 64) - 1


def _varint(value: int) -> bytes:
    value &= _U64  # a negative int64 is its 10-byte two's complement, as protobuf writes it
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _bytes_list(values: Sequence[bytes | str]) -> bytes:
    return _field(1, b"".join(_field(1, v.encode() if isinstance(v, str) else bytes(v)) for v in values))


def _float_list(values: np.ndarray) -> bytes:
    return _field(2, _field(1, np.ascontiguousarray(values, dtype="<f4").tobytes()))


def _int64_list(values: Sequence[int] | np.ndarray) -> bytes:
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in values)))


def encode_feature(value: FeatureValue, *, name: str = "") -> bytes:
    """One serialized ``tf.train.Feature``. Raises ConfigError for a value with no clear kind
    (an empty Python list: use an empty numpy array of the dtype you mean)."""
    if isinstance(value, (bytes, str)):
        return _bytes_list([value])
    if isinstance(value, (bool, int, np.integer)):
        return _int64_list([int(value)])
    if isinstance(value, (float, np.floating)):
        return _float_list(np.array([value]))
    array = value if isinstance(value, np.ndarray) else None
    if array is None:
        items = list(value)
        if not items:
            raise ConfigError(f"feature {name!r}: an empty list has no kind; pass np.array([], dtype=...)")
        if all(isinstance(v, (bytes, str)) for v in items):
            return _bytes_list(items)
        array = np.asarray(items)
    array = array.reshape(-1)
    if array.dtype.kind in "iub":
        if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise ConfigError(f"feature {name!r}: values over the int64 range")
        return _int64_list(array.astype(np.int64, copy=False))
    if array.dtype.kind == "f":
        return _float_list(array)
    if array.dtype.kind in "SO" and all(isinstance(v, (bytes, str)) for v in array.tolist()):
        return _bytes_list(array.tolist())
    raise ConfigError(f"feature {name!r}: cannot encode values of type {array.dtype}")


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """A serialized ``tf.train.Example`` with one Feature per key (keys sorted)."""
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, encode_feature(features[key], name=key)))
        for key in sorted(features)
    )
    return _field(1, entries)
