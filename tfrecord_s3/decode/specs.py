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
    "Partition",
    "RaggedFeature",
    "RowLengths",
    "RowLimits",
    "RowSplits",
    "RowStarts",
    "SparseFeature",
    "UniformRowLength",
    "ValueRowIds",
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
    with no default it is a ``DecodeError``, as in TensorFlow. A default of no elements (shape
    ``[0]``, ``default_value=[]``) counts as none: TensorFlow treats the feature as required.
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
            if not default:
                default = None
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


def _partition_key(key: Any, what: str) -> None:
    if not isinstance(key, str):
        raise ConfigError(f"{what}: key must be a str, got {key!r}")


@dataclass(frozen=True)
class RowSplits:
    """A ragged partition: the int64 feature ``key`` holds row boundaries ``[0, ..., n]``."""

    key: str

    def __post_init__(self) -> None:
        _partition_key(self.key, "RowSplits")


@dataclass(frozen=True)
class RowLengths:
    """A ragged partition: the int64 feature ``key`` holds the length of each row."""

    key: str

    def __post_init__(self) -> None:
        _partition_key(self.key, "RowLengths")


@dataclass(frozen=True)
class RowStarts:
    """A ragged partition: the int64 feature ``key`` holds where each row starts (first is 0)."""

    key: str

    def __post_init__(self) -> None:
        _partition_key(self.key, "RowStarts")


@dataclass(frozen=True)
class RowLimits:
    """A ragged partition: the int64 feature ``key`` holds where each row ends (last is n)."""

    key: str

    def __post_init__(self) -> None:
        _partition_key(self.key, "RowLimits")


@dataclass(frozen=True)
class ValueRowIds:
    """A ragged partition: the int64 feature ``key`` holds, per value, the row it belongs to
    (non-decreasing; rows = the largest id + 1)."""

    key: str

    def __post_init__(self) -> None:
        _partition_key(self.key, "ValueRowIds")


@dataclass(frozen=True)
class UniformRowLength:
    """A ragged partition: rows of ``length`` values each (no feature read). Innermost, it
    reshapes the values into a ``[rows, length]`` array, as TensorFlow does."""

    length: int

    def __post_init__(self) -> None:
        length = self.length
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ConfigError(f"UniformRowLength: length must be an int >= 1, got {length!r}")
        object.__setattr__(self, "length", int(length))


Partition = RowSplits | RowLengths | RowStarts | RowLimits | ValueRowIds | UniformRowLength
_PARTITIONS = (RowSplits, RowLengths, RowStarts, RowLimits, ValueRowIds, UniformRowLength)


@dataclass(frozen=True)
class RaggedFeature:
    """Values of ``value_key`` (default: the spec's own key), optionally split into nested rows.

    ``partitions`` go from outermost to innermost, as in ``tf.io.RaggedFeature``: any of
    ``RowSplits``, ``RowLengths``, ``RowStarts``, ``RowLimits``, ``ValueRowIds`` (each naming
    an int64 feature) and ``UniformRowLength``. ``row_splits_dtype`` (int32, TensorFlow's
    default, or int64) is the dtype of every ``row_lengths`` of the result. Missing or
    kindless -> no values.
    """

    dtype: Any
    value_key: str | None = None
    partitions: Sequence[Partition] = ()
    row_splits_dtype: Any = "int32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))
        if self.value_key is not None:
            if not isinstance(self.value_key, str):
                raise ConfigError(f"RaggedFeature: value_key must be a str, got {self.value_key!r}")
            if not self.value_key:
                raise ConfigError("RaggedFeature: value_key must not be empty (None means the spec's own key)")
        if isinstance(self.partitions, (str, bytes)) or not isinstance(self.partitions, Sequence):
            raise ConfigError(f"RaggedFeature: partitions must be a list or tuple, got {self.partitions!r}")
        partitions = tuple(self.partitions)
        for partition in partitions:
            if not isinstance(partition, _PARTITIONS):
                names = ", ".join(kind.__name__ for kind in _PARTITIONS)
                raise ConfigError(f"RaggedFeature: unsupported partition {partition!r} (use one of {names})")
        object.__setattr__(self, "partitions", partitions)
        try:
            splits = np.dtype(self.row_splits_dtype)
        except TypeError:
            splits = None
        if splits not in (np.dtype(np.int32), np.dtype(np.int64)):
            raise ConfigError(f"RaggedFeature: row_splits_dtype must be int32 or int64, got {self.row_splits_dtype!r}")
        object.__setattr__(self, "row_splits_dtype", splits)


@dataclass(frozen=True)
class SparseFeature:
    """A SparseTensor built from features: ``value_key`` holds the values, ``index_key`` (one
    int64 feature per dimension) their positions, ``size`` the dense shape (an int with a
    single ``index_key``, a list of as many ints as ``index_key`` names), as
    ``tf.io.SparseFeature``. Decoded to :class:`SparseValues`, entries sorted by index unless
    ``already_sorted``. Indices are not checked against ``size`` (TensorFlow does not either).
    """

    index_key: str | Sequence[str]
    value_key: str
    dtype: Any
    size: int | Sequence[int]
    already_sorted: bool = False
    index_keys: tuple[str, ...] = field(init=False, repr=False, compare=False)
    dense_shape: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        single = isinstance(self.index_key, str)
        keys = (self.index_key,) if single else tuple(self.index_key)
        if not keys or not all(isinstance(key, str) and key for key in keys):
            raise ConfigError(
                f"SparseFeature: index_key must be a feature name or a list of them, got {self.index_key!r}"
            )
        if not isinstance(self.value_key, str) or not self.value_key:
            raise ConfigError(f"SparseFeature: value_key must be a feature name, got {self.value_key!r}")
        if single != isinstance(self.size, (int, np.integer)):
            raise ConfigError("SparseFeature: size must be a list if and only if index_key is a list")
        shape = _normalize_shape(self.size, what="SparseFeature")
        if len(shape) != len(keys):
            raise ConfigError(f"SparseFeature: {len(keys)} index keys but size has {len(shape)} dimensions")
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype))
        object.__setattr__(self, "already_sorted", bool(self.already_sorted))
        object.__setattr__(self, "index_keys", keys)
        object.__setattr__(self, "dense_shape", shape)


FeatureSpec = FixedLenFeature | VarLenFeature | FixedLenSequenceFeature | RaggedFeature | SparseFeature
