"""Feature specs, as in ``tf.io``: what to pull out of an Example and in which shape.

Every spec is a frozen dataclass validated at construction (``ConfigError`` on a bad
argument), so a bad spec fails where it is written, not deep inside decoding.

dtypes: ``"int64"``, ``"float32"`` and ``"bytes"`` (alias ``"string"``, as TensorFlow calls
it); numpy dtypes and the Python types ``int``/``float``/``bytes``/``str`` are accepted too.
These are the only three types an Example can hold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = [
    "FeatureSpec",
    "FixedLenFeature",
    "FixedLenSequenceFeature",
    "RaggedFeature",
    "RowLengths",
    "RowSplits",
    "VarLenFeature",
    "normalize_dtype",
]

INT64 = "int64"
FLOAT32 = "float32"
BYTES = "bytes"

# The Feature oneof member that holds each dtype, and TensorFlow's name for the dtype in
# its error messages (DataTypeString: "int64", "float", "string").
KIND_OF_DTYPE = {INT64: "int64_list", FLOAT32: "float_list", BYTES: "bytes_list"}
TF_NAME_OF_DTYPE = {INT64: "int64", FLOAT32: "float", BYTES: "string"}
TF_NAME_OF_KIND = {"int64_list": "int64", "float_list": "float", "bytes_list": "string"}
NUMPY_DTYPE: dict[str, np.dtype[Any]] = {
    INT64: np.dtype(np.int64),
    FLOAT32: np.dtype(np.float32),
    BYTES: np.dtype(object),
}

_DTYPE_ALIASES: dict[Any, str] = {
    "int64": INT64,
    "float32": FLOAT32,
    "float": FLOAT32,  # TensorFlow's DataTypeString for float32
    "bytes": BYTES,
    "string": BYTES,
    "str": BYTES,
    int: INT64,
    float: FLOAT32,
    bytes: BYTES,
    str: BYTES,
}

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def normalize_dtype(dtype: Any) -> str:
    """``"int64"``, ``"float32"`` or ``"bytes"`` for any accepted spelling; ``ConfigError`` otherwise."""
    if isinstance(dtype, str) or dtype in (int, float, bytes, str):
        name = _DTYPE_ALIASES.get(dtype.lower() if isinstance(dtype, str) else dtype)
        if name is not None:
            return name
    else:
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            np_dtype = None
        if np_dtype is not None:
            if np_dtype == np.int64:
                return INT64
            if np_dtype == np.float32:
                return FLOAT32
            if np_dtype.kind in "SOU":
                return BYTES
    raise ConfigError(f"unsupported dtype {dtype!r}: an Example holds only int64, float32 or bytes")


def _normalize_shape(shape: Any, *, what: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ConfigError(f"{what}: shape must be a sequence of ints, got {shape!r}") from None
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 0:
            raise ConfigError(f"{what}: every dimension must be a known int >= 0, got shape {shape!r}")
    return tuple(int(dim) for dim in dims)


def _scalar(value: Any, dtype: str, *, what: str) -> Any:
    """One default element, checked and converted to the Python type decoding produces."""
    if dtype == BYTES:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, (bytes, bytearray, memoryview, np.bytes_)):
            return bytes(value)
        raise ConfigError(f"{what}: default value {value!r} is not bytes or str")
    if isinstance(value, (bool, np.bool_, bytes, str)):
        raise ConfigError(f"{what}: default value {value!r} is not a number")
    if dtype == INT64:
        if isinstance(value, (float, np.floating)):
            if not float(value).is_integer():
                raise ConfigError(f"{what}: default value {value!r} is not an integer")
            value = int(value)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: default value {value!r} is not an int64") from None
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise ConfigError(f"{what}: default value {value!r} is out of the int64 range")
        return number
    try:
        # float32 rounding, widened back: the same Python float decoding yields.
        return float(np.float32(value))
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{what}: default value {value!r} is not a float32") from None


def _flat_default(value: Any, dtype: str, size: int, *, what: str) -> tuple[Any, ...]:
    """The default as a flat tuple of ``size`` elements (row-major)."""
    if isinstance(value, (str, bytes, bytearray, memoryview)) or np.ndim(value) == 0:
        items: list[Any] = [value]
    elif isinstance(value, np.ndarray):
        items = list(value.reshape(-1))
    else:
        items = list(_flatten(value))
    if len(items) != size:
        raise ConfigError(f"{what}: default value has {len(items)} elements, the shape needs {size}")
    return tuple(_scalar(item, dtype, what=what) for item in items)


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, (str, bytes, bytearray, memoryview)) or not isinstance(value, Iterable):
        yield value
        return
    for item in value:
        yield from _flatten(item)


@dataclass(frozen=True)
class FixedLenFeature:
    """Exactly ``prod(shape)`` values per record, decoded to an array of ``shape``.

    A record without the feature (or whose Feature has no kind set) gets ``default_value``;
    with no default it is a ``DecodeError``, as in TensorFlow.
    """

    shape: Sequence[int]
    dtype: Any
    default_value: Any = None
    size: int = field(init=False, repr=False, compare=False)
    default: tuple[Any, ...] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = _normalize_shape(self.shape, what="FixedLenFeature")
        dtype = normalize_dtype(self.dtype)
        size = math.prod(shape)
        default = None
        if self.default_value is not None:
            default = _flat_default(self.default_value, dtype, size, what="FixedLenFeature")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "default", default)


@dataclass(frozen=True)
class VarLenFeature:
    """Any number of values per record (none when missing or kindless)."""

    dtype: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))


@dataclass(frozen=True)
class FixedLenSequenceFeature:
    """Rows of ``shape``: the values are split into ``len(values) / prod(shape)`` rows.

    In an Example (``parse_example``) ``allow_missing`` must be True, as in TensorFlow; a batch
    is padded to its longest record with ``default_value`` (0, 0.0 or b"" when None). In a
    SequenceExample each step is one row; a missing feature list is an error unless
    ``allow_missing``.
    """

    shape: Sequence[int]
    dtype: Any
    allow_missing: bool = False
    default_value: Any = None
    size: int = field(init=False, repr=False, compare=False)
    padding: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = _normalize_shape(self.shape, what="FixedLenSequenceFeature")
        dtype = normalize_dtype(self.dtype)
        size = math.prod(shape)
        if size == 0:
            raise ConfigError(f"FixedLenSequenceFeature: shape {list(shape)} holds no values; rows need >= 1")
        if self.default_value is None:
            padding: Any = {INT64: 0, FLOAT32: 0.0, BYTES: b""}[dtype]
        else:
            if np.ndim(self.default_value) != 0 and not isinstance(self.default_value, (str, bytes)):
                raise ConfigError("FixedLenSequenceFeature: default_value (the padding) must be a scalar")
            padding = _scalar(self.default_value, dtype, what="FixedLenSequenceFeature")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "allow_missing", bool(self.allow_missing))
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "padding", padding)


@dataclass(frozen=True)
class RowLengths:
    """A ragged partition: the int64 feature ``key`` holds the length of each row."""

    key: str


@dataclass(frozen=True)
class RowSplits:
    """A ragged partition: the int64 feature ``key`` holds row boundaries ``[0, ..., n]``."""

    key: str


Partition = RowLengths | RowSplits


@dataclass(frozen=True)
class RaggedFeature:
    """Values of ``value_key`` (default: the spec's own key), optionally split into nested rows.

    ``partitions`` go from outermost to innermost, as in ``tf.io.RaggedFeature``; only
    ``RowLengths`` and ``RowSplits`` are supported. Missing or kindless -> no values.
    """

    dtype: Any
    value_key: str | None = None
    partitions: Sequence[Partition] = ()
    row_splits_dtype: Any = "int64"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))
        partitions = tuple(self.partitions)
        for partition in partitions:
            if not isinstance(partition, (RowLengths, RowSplits)):
                raise ConfigError(f"RaggedFeature: unsupported partition {partition!r} (use RowLengths or RowSplits)")
        object.__setattr__(self, "partitions", partitions)
        splits = np.dtype(self.row_splits_dtype)
        if splits not in (np.dtype(np.int32), np.dtype(np.int64)):
            raise ConfigError(f"RaggedFeature: row_splits_dtype must be int32 or int64, got {self.row_splits_dtype!r}")
        object.__setattr__(self, "row_splits_dtype", splits)


FeatureSpec = FixedLenFeature | VarLenFeature | FixedLenSequenceFeature | RaggedFeature
