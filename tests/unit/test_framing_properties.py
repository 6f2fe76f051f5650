"""Property tests of the frame parser: any chunking, any bit flip, any cut point."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfrecord_s3 as tfr
from tfrecord_s3.records.crc import crc32c, mask, masked_crc, unmask
from tfrecord_s3.records.framing import FRAME_OVERHEAD, encode_frame, iter_frames

records_st = st.lists(st.binary(max_size=300), max_size=12)


class ChunkedStream(io.RawIOBase):
    """Returns at most ``chunk`` bytes per read: short reads everywhere, as sockets do."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self._data = data
        self._pos = 0
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._chunk, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        buf = bytearray(size if size >= 0 else len(self._data))
        n = self.readinto(buf)
        return bytes(buf[:n])


def frames(records: list[bytes]) -> bytes:
    return b"".join(encode_frame(r) for r in records)


def test_crc_known_answers() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    crc = 0xE3069283
    assert mask(crc) == ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF
    assert unmask(mask(crc)) == crc
    assert masked_crc(b"") == mask(0)


@given(records=records_st, chunk=st.integers(min_value=1, max_value=64))
def test_round_trip_at_any_chunking(records: list[bytes], chunk: int) -> None:
    got = list(iter_frames(ChunkedStream(frames(records), chunk)))  # type: ignore[arg-type]
    assert got == records
    assert all(type(r) is bytes for r in got)


@settings(max_examples=200)
@given(records=records_st.filter(lambda rs: len(rs) > 0), data=st.data())
def test_any_single_bit_flip_raises(records: list[bytes], data: st.DataObject) -> None:
    blob = bytearray(frames(records))
    bit = data.draw(st.integers(min_value=0, max_value=len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    # Which record holds the flipped byte: everything before it must come out unchanged.
    starts = []
    pos = 0
    for r in records:
        starts.append(pos)
        pos += len(r) + FRAME_OVERHEAD
    victim = max(i for i, s in enumerate(starts) if s <= bit // 8)
    got: list[bytes] = []
    with pytest.raises(tfr.RecordError) as caught:
        for r in iter_frames(io.BytesIO(bytes(blob)), path="mem"):
            got.append(r)
    assert got == records[:victim]
    assert caught.value.offset == starts[victim]


@settings(max_examples=200)
@given(records=records_st.filter(lambda rs: len(rs) > 0), data=st.data())
def test_any_cut_point_yields_the_records_before_it_then_raises(records: list[bytes], data: st.DataObject) -> None:
    blob = frames(records)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    whole = []
    pos = 0
    for r in records:
        pos += len(r) + FRAME_OVERHEAD
        if pos <= cut:
            whole.append(r)
    got: list[bytes] = []
    reader = iter_frames(io.BytesIO(blob[:cut]), path="mem")
    if cut in {sum(len(r) + FRAME_OVERHEAD for r in records[:k]) for k in range(len(records) + 1)}:
        got = list(reader)  # a cut on a record boundary is a clean, shorter file
    else:
        with pytest.raises(tfr.TruncatedRecordError):
            for r in reader:
                got.append(r)
    assert got == whole


def test_length_over_cap_fails_before_allocating() -> None:
    import struct

    for length in (2**63, 1025):
        header = struct.pack("<Q", length)
        blob = header + struct.pack("<I", masked_crc(header))
        with pytest.raises(tfr.RecordTooLargeError) as caught:
            list(iter_frames(io.BytesIO(blob), path="mem", max_record_bytes=1024))
        assert caught.value.offset == 0
        assert str(length) in str(caught.value)
    # exactly at the cap is fine
    assert list(iter_frames(io.BytesIO(encode_frame(b"x" * 1024)), max_record_bytes=1024)) == [b"x" * 1024]


def test_short_inputs_1_to_11_bytes_are_truncated_headers() -> None:
    blob = encode_frame(b"abc")
    assert list(iter_frames(io.BytesIO(b""))) == []
    for n in range(1, 12):
        with pytest.raises(tfr.TruncatedRecordError):
            list(iter_frames(io.BytesIO(blob[:n])))
