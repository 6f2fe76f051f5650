"""TFRecord's masked CRC32C (Castagnoli), as TensorFlow's ``crc32c::Mask`` computes it.

A CRC stored next to the data it covers is masked so that a CRC of bytes that themselves
contain CRCs does not degenerate: rotate right by 15 bits, add a constant. This module is the
one Python home of that formula (the frame parser, the resync scan and the writer use it);
the compiled frame kernel (``_native.c``) has its own copy, checked against this one by the
tests.
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
    """The masked CRC32C of ``data`` (:func:`mask` written out: one call per record in the
    pure-Python frame loop)."""
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32
