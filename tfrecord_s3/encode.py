"""Serialize ``tf.train.Example`` records from plain Python and numpy values, without protobuf.

The wire format is small enough to write directly; its rules live in ``decode/wire.py`` (the
Python reference). Floats and ints are packed, and keys are written in the byte order of their
UTF-8 (protobuf's deterministic map order in TensorFlow's C++), so equal inputs give equal bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .decode.wire import FEATURES, MAP_KEY, MAP_VALUE, field, varint
from .errors import ConfigError

__all__ = ["FeatureValue", "encode_example", "encode_feature"]

#: bytes/str (one value), a sequence of them, an int/float, a sequence of ints or floats,
#: or a numpy array (integer/bool -> int64_list, floating -> float_list, bytes -> bytes_list).
FeatureValue = bytes | str | int | float | Sequence[bytes | str] | Sequence[int] | Sequence[float] | np.ndarray

# Field numbers of the Feature kinds and of a list's values (see decode/wire.py).
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST, _VALUES = 1, 2, 3, 1


def _bytes_list(values: Sequence[bytes | str]) -> bytes:
    return field(_BYTES_LIST, b"".join(field(_VALUES, v.encode() if isinstance(v, str) else bytes(v)) for v in values))


def _float_list(values: np.ndarray) -> bytes:
    return field(_FLOAT_LIST, field(_VALUES, np.ascontiguousarray(values, dtype="<f4").tobytes()))


def _int64_list(values: Sequence[int] | np.ndarray) -> bytes:
    return field(_INT64_LIST, field(_VALUES, b"".join(varint(int(v)) for v in values)))


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
    """A serialized ``tf.train.Example`` with one Feature per key (keys in byte order, as TensorFlow's C++)."""
    entries = b"".join(
        field(FEATURES, field(MAP_KEY, key.encode()) + field(MAP_VALUE, encode_feature(features[key], name=key)))
        for key in sorted(features, key=str.encode)
    )
    return field(FEATURES, entries)
