"""The golden corpus written by real TensorFlow (tests/data/golden), and its corrupted variants.

Corrupted files are not stored: they are rebuilt from their base file with the offsets in
``corruption.json`` and checked against the sha256 TensorFlow's copy had.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "data" / "golden"


@cache
def expected() -> dict[str, Any]:
    return json.loads((GOLDEN_DIR / "expected.json").read_text())  # type: ignore[no-any-return]


@cache
def corruption() -> dict[str, Any]:
    return json.loads((GOLDEN_DIR / "corruption.json").read_text())  # type: ignore[no-any-return]


def golden_files() -> list[str]:
    return sorted(expected()["files"])


def corrupted_files() -> list[str]:
    return sorted(corruption()["files"])


def path_of(name: str) -> Path:
    return GOLDEN_DIR / name


def corrupted_bytes(name: str) -> bytes:
    """Rebuild TensorFlow's corrupted file ``name`` from its base file; verified by sha256."""
    info = corruption()["files"][name]
    data = bytearray((GOLDEN_DIR / info["base_file"]).read_bytes())
    description = info["description"]
    if "cut_at" in info:
        data = data[: info["cut_at"]]
    elif "appended_hex" in info:
        data += bytes.fromhex(info["appended_hex"])
    else:
        bit = int(re.match(r"bit (\d+) of", description).group(1))  # type: ignore[union-attr]
        data[info["modified_offset"]] ^= 1 << bit
    out = bytes(data)
    assert hashlib.sha256(out).hexdigest() == info["file_sha256"], f"rebuilt {name} differs from TensorFlow's"
    return out


def write_corrupted(name: str, directory: Path) -> Path:
    target = directory / name
    target.write_bytes(corrupted_bytes(name))
    return target


def decode_bytes(value: Any) -> bytes | dict[str, Any]:
    """expected.json's bytes convention: base64, or {sha256, len} for values over 64 KiB."""
    if isinstance(value, dict):
        return value
    return base64.b64decode(value)


def decode_float(value: str) -> float:
    """expected.json's float convention: repr() of the float32 value widened to float64."""
    return float(value)


def same_float(a: float, b: float) -> bool:
    """Bit-exact equality that treats nan as equal to nan and tells -0.0 from 0.0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
