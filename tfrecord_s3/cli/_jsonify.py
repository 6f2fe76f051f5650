"""Decoded records as JSON values: bytes as UTF-8 text where valid, else {"base64": ...}.

Floats that JSON cannot hold (nan, inf) become the strings "nan", "inf", "-inf"; float32
values print in their shortest float32 form (0.1, not 0.10000000149011612).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def bytes_value(data: bytes) -> Any:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def float_value(value: float) -> Any:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def to_json(value: Any) -> Any:
    """A JSON-serialisable copy of ``value`` (dicts, lists, numpy arrays, scalars, bytes)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_value(bytes(value))
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32:
            # str() of a float32 is its shortest round-tripping form.
            return _nested(value, lambda v: float_value(float(str(v))))
        if value.dtype.kind == "f":
            return _nested(value, lambda v: float_value(float(v)))
        if value.dtype.kind in "iub":
            return value.tolist()
        return [to_json(v) for v in value.tolist()] if value.ndim else to_json(value.item())
    if isinstance(value, np.floating):
        return float_value(float(str(value)) if isinstance(value, np.float32) else float(value))
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, float):
        return float_value(value)
    if isinstance(value, Mapping):
        # Sorted: protobuf maps have no order, and stable output diffs cleanly.
        return {str(k): to_json(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    to_list = getattr(value, "to_list", None)  # ragged values and other list-like containers
    if callable(to_list):
        return to_json(to_list())
    return value


def _nested(array: np.ndarray[Any, Any], convert: Any) -> Any:
    if array.ndim == 0:
        return convert(array[()])
    return [_nested(row, convert) if array.ndim > 1 else convert(row) for row in array]
