"""TFRecord's masked CRC32C (Castagnoli), as TensorFlow's ``crc32c::Mask`` computes it.

A CRC stored next to the data it covers is masked so that a CRC of bytes that themselves
contain CRCs does not degenerate: rotate right by 15 bits, add a constant.
"""

from __future__ import annotations

import crc32c as _crc32c

_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF

crc32c = _crc32c.crc32c


def mask(crc: int) -> int:
    """Mask a raw CRC32C value the way TFRecord files store it."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def unmask(masked: int) -> int:
    """Invert :func:`mask`."""
    rot = (masked - _MASK_DELTA) & _U32
    return ((rot >> 17) | (rot << 15)) & _U32


def masked_crc(data: bytes | bytearray | memoryview) -> int:
    """The masked CRC32C of ``data``."""
    return mask(_crc32c.crc32c(data))
