"""The compiled frame kernel against the pure-Python loop (the oracle): same records, same
errors (type, message, offset, part), same on_data_error calls, for any chunking, bit flip,
cut point, cap and compression; and its CRC32C against the crc32c package."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import crc32c as crc32c_package
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import golden
from tfrecord_s3.records import framing
from tfrecord_s3.records.compression import InflatingReader
from tfrecord_s3.records.crc import masked_crc
from tfrecord_s3.records.framing import FRAME_OVERHEAD, encode_frame

native = pytest.importorskip("tfrecord_s3.records._native", reason="the optional C extension did not build")

Loop = Callable[..., Iterator[bytes]]
LOOPS: dict[str, Loop] = {"python": framing._iter_frames_python, "native": framing._iter_frames_native}


class ShortReads(io.RawIOBase):
    """Hands out at most the next of ``sizes`` (cycled) bytes per read, as sockets do."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self._data = data
        self._pos = 0
        self._sizes = sizes or [1 << 30]
        self._calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        limit = self._sizes[self._calls % len(self._sizes)]
        self._calls += 1
        n = min(len(buffer), limit, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class ReadOnly:
    """A stream with nothing but ``read`` (no readinto)."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)


@dataclass
class Outcome:
    records: list[bytes] = field(default_factory=list)
    skipped: list[tuple[str, str, int | None, str | None, int]] = field(default_factory=list)
    error: tuple[str, str, str | None, int | None, str | None] | None = None


def run(loop: Loop, stream: Any, *, skip: bool = False, **options: Any) -> Outcome:
    out = Outcome()

    def on_data_error(error: Any, frame_bytes: int) -> None:
        out.skipped.append((type(error).__name__, str(error), error.offset, error.part, frame_bytes))

    settings_ = {"path": "mem", "verify_crc": True, "max_record_bytes": 1 << 26, "start_offset": 0}
    settings_.update(options)
    try:
        for record in loop(
            stream,
            settings_["path"],
            settings_["verify_crc"],
            settings_["max_record_bytes"],
            settings_["start_offset"],
            on_data_error if skip else None,
        ):
            assert type(record) is bytes
            out.records.append(record)
    except Exception as exc:
        out.error = (
            type(exc).__name__,
            str(exc),
            getattr(exc, "path", None),
            getattr(exc, "offset", None),
            getattr(exc, "part", None),
        )
    return out


def both(make_stream: Callable[[], Any], **options: Any) -> Outcome:
    python = run(LOOPS["python"], make_stream(), **options)
    compiled = run(LOOPS["native"], make_stream(), **options)
    assert compiled == python
    return python


def frames(records: list[bytes]) -> bytes:
    return b"".join(encode_frame(r) for r in records)


# Mostly small records, now and then one past the kernel's big-record threshold.
record_st = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300),
    st.binary(max_size=300),
    st.integers(min_value=framing._BIG_RECORD - 20, max_value=framing._BIG_RECORD + 70_000).map(
        lambda n: random.Random(n).randbytes(n)
    ),
)
records_st = st.lists(record_st, max_size=10)
sizes_st = st.lists(st.integers(min_value=1, max_value=70_000), max_size=5)
options_st = st.fixed_dictionaries(
    {
        "verify_crc": st.booleans(),
        "max_record_bytes": st.sampled_from([0, 100, 300, framing._BIG_RECORD, 1 << 26, 2**70]),
        "start_offset": st.sampled_from([0, 7, 2**40]),
        "skip": st.booleans(),
    }
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(records=records_st, sizes=sizes_st, options=options_st)
def test_clean_streams_at_any_chunking(records: list[bytes], sizes: list[int], options: dict[str, Any]) -> None:
    blob = frames(records)
    out = both(lambda: ShortReads(blob, sizes), **options)
    if options["max_record_bytes"] >= (1 << 26):
        assert out.records == records
        assert out.error is None


@SETTINGS
@given(records=records_st.filter(bool), sizes=sizes_st, options=options_st, data=st.data())
def test_any_bit_flip(records: list[bytes], sizes: list[int], options: dict[str, Any], data: st.DataObject) -> None:
    blob = bytearray(frames(records))
    bit = data.draw(st.integers(min_value=0, max_value=len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    flipped = bytes(blob)
    out = both(lambda: ShortReads(flipped, sizes), **options)
    if options["verify_crc"]:
        assert out.error is not None or out.skipped


@SETTINGS
@given(records=records_st.filter(bool), sizes=sizes_st, options=options_st, data=st.data())
def test_any_cut_point(records: list[bytes], sizes: list[int], options: dict[str, Any], data: st.DataObject) -> None:
    blob = frames(records)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    both(lambda: ShortReads(blob[:cut], sizes), **options)


@settings(max_examples=100, deadline=None)
@given(records=st.lists(st.binary(max_size=200), min_size=1, max_size=10), data=st.data())
def test_streams_without_readinto(records: list[bytes], data: st.DataObject) -> None:
    blob = frames(records)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    both(lambda: ReadOnly(blob[:cut]))


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(st.binary(max_size=3000), min_size=1, max_size=30),
    compression=st.sampled_from(["GZIP", "ZLIB"]),
    data=st.data(),
)
def test_damaged_compressed_streams(records: list[bytes], compression: str, data: st.DataObject) -> None:
    packed = bytearray(_compress(frames(records), compression))
    if data.draw(st.booleans()):
        packed = packed[: data.draw(st.integers(min_value=0, max_value=len(packed)))]
    else:
        bit = data.draw(st.integers(min_value=0, max_value=len(packed) * 8 - 1))
        packed[bit // 8] ^= 1 << (bit % 8)
    damaged = bytes(packed)
    both(lambda: _inflating(damaged, compression), skip=data.draw(st.booleans()))


@pytest.mark.parametrize("where", [0.1, 0.35, 0.5, 0.8, 0.99])
@pytest.mark.parametrize("damage", ["overwrite", "cut"])
def test_damage_deep_in_a_compressed_stream_is_blamed_on_the_same_record(where: float, damage: str) -> None:
    # ~5 MiB inflated: damage surfaces after several 1 MiB buffer refills, so the kernel's
    # reads must match the pure-Python loop's for the blamed record to agree.
    rng = random.Random(7)
    words = [rng.randbytes(rng.randrange(2, 9)) for _ in range(200)]
    records = [
        b"".join(rng.choice(words) for _ in range(n // 5))[:n] for n in rng.choices([50, 900, 5000, 300_000], k=80)
    ]
    packed = bytearray(_compress(frames(records), "ZLIB", level=1))
    at = int(len(packed) * where)
    if damage == "cut":
        del packed[at:]
    else:
        packed[at : at + 64] = b"\xff" * 64  # an invalid deflate block
    damaged = bytes(packed)
    out = both(lambda: _inflating(damaged, "ZLIB"))
    assert out.error is not None
    assert out.records == records[: len(out.records)]


@pytest.mark.parametrize("name", golden.golden_files() + golden.corrupted_files())
@pytest.mark.parametrize("skip", [False, True])
def test_golden_corpus(name: str, skip: bool) -> None:
    info = golden.corruption()["files"].get(name)
    blob = golden.corrupted_bytes(name) if info else golden.path_of(name).read_bytes()
    compression = info["compression"] if info else golden.expected()["files"][name].get("compression", "")
    if compression:
        both(lambda: _inflating(blob, compression), skip=skip, path=name)
    else:
        both(lambda: io.BufferedReader(io.BytesIO(blob), 1 << 20), skip=skip, path=name)
        both(lambda: ShortReads(blob, [1, 7, 4096, 70_000]), skip=skip, path=name)


def test_big_records_are_checked_and_skipped_the_same_way() -> None:
    rng = random.Random(3)
    records = [rng.randbytes(n) for n in (5, 1 << 20, 3, (1 << 20) + 17, 2 << 20, 0, 300_000)]
    blob = bytearray(frames(records))
    clean = both(lambda: io.BufferedReader(io.BytesIO(bytes(blob)), 1 << 20))
    assert clean.records == records
    blob[FRAME_OVERHEAD + 5 + 12 + 1000] ^= 1  # data of the first 1 MiB record
    damaged = bytes(blob)
    out = both(lambda: io.BufferedReader(io.BytesIO(damaged), 1 << 20), skip=True)
    assert out.records == [r for i, r in enumerate(records) if i != 1]
    assert [s[2] for s in out.skipped] == [FRAME_OVERHEAD + 5]


@pytest.mark.parametrize("length", [2**63, 2**64 - 1, 2**63 - 1, (1 << 26) + 1])
def test_crafted_lengths(length: int) -> None:
    header = struct.pack("<Q", length)
    blob = encode_frame(b"ok") + header + struct.pack("<I", masked_crc(header)) + b"x" * 100
    for cap in (1 << 26, 2**64 - 1, 2**70):
        if length > cap or length < 2**63 - 1000:
            out = both(lambda: io.BytesIO(blob), max_record_bytes=cap)
            assert out.error is not None
            assert out.error[3] == FRAME_OVERHEAD + 2
        else:
            # Past sys.maxsize read(length) raises OverflowError in the Python loop; the kernel
            # asks only for the missing bytes (an OverflowError or a truncation): both fail
            # after the good record, neither allocates.
            out = run(LOOPS["native"], io.BytesIO(blob), max_record_bytes=cap)
            assert out.error is not None
            assert out.error[0] in ("OverflowError", "TruncatedRecordError")
        assert out.records == [b"ok"]


def test_environment_forces_the_python_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFRECORD_S3_PURE_PYTHON", raising=False)
    assert framing.native_available()
    monkeypatch.setenv("TFRECORD_S3_PURE_PYTHON", "0")
    assert framing.native_available()
    monkeypatch.setenv("TFRECORD_S3_PURE_PYTHON", "1")
    assert not framing.native_available()
    assert list(framing.iter_frames(io.BytesIO(frames([b"a", b"bc"])))) == [b"a", b"bc"]


def test_scan_api() -> None:
    blob = bytearray(frames([b"abc", b"", b"defg"]) + b"\x01\x02")
    records, consumed, status, length = native.scan(blob, 0, len(blob), True, 100)
    assert records == [b"abc", b"", b"defg"]
    assert (consumed, status, length) == (len(blob) - 2, native.NEED_MORE, -1)
    blob.extend(b"x")  # no buffer export is left behind
    records, consumed, status, length = native.scan(bytes(blob), 0, 3 * FRAME_OVERHEAD + 7, True, 3)
    assert (records, consumed, status, length) == ([b"abc", b""], 2 * FRAME_OVERHEAD + 3, native.TOO_LARGE, 4)
    with pytest.raises(ValueError, match="start"):
        native.scan(blob, 5, 4, True, 100)
    with pytest.raises(ValueError, match="start"):
        native.scan(blob, 0, len(blob) + 1, True, 100)
    with pytest.raises(ValueError, match=">= 0"):
        native.scan(blob, 0, 0, True, -1)


def test_crc32c_matches_the_package() -> None:
    assert native.crc32c(b"123456789") == 0xE3069283
    assert native._crc32c_portable(b"123456789") == 0xE3069283
    rng = random.Random(11)
    sizes = [*range(70), 255, 256, 257, 767, 768, 769, 8191, 24575, 24576, 24577, 100_003, (1 << 20) + 5]
    for size in sizes:
        data = rng.randbytes(size + 8)
        view = memoryview(data)[rng.randrange(8) :][:size]  # unaligned starts too
        seed = rng.randrange(1 << 32)
        expected = crc32c_package.crc32c(view)
        assert native.crc32c(view) == expected
        assert native._crc32c_portable(view) == expected
        assert native.crc32c(view, seed) == crc32c_package.crc32c(view, seed)
        assert native._crc32c_portable(view, seed) == crc32c_package.crc32c(view, seed)
    with pytest.raises(ValueError, match="value"):
        native.crc32c(b"x", 1 << 32)


def _compress(data: bytes, compression: str, level: int = 6) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, 31 if compression == "GZIP" else 15)
    return packer.compress(data) + packer.flush()


def _inflating(packed: bytes, compression: str) -> io.BufferedReader:
    # As reader.open_record_stream builds it.
    return io.BufferedReader(InflatingReader(io.BytesIO(packed), compression), 1 << 20)  # type: ignore[arg-type]


def test_no_leak_over_many_scans() -> None:
    # Every path through scan (records, each status) many times; live objects must not grow.
    import gc
    import sys

    good = frames([b"x" * 10] * 20)
    bad_length = bytearray(good)
    bad_length[FRAME_OVERHEAD * 3 + 30] ^= 1
    bad_data = bytearray(good)
    bad_data[FRAME_OVERHEAD * 3 + 30 + 13] ^= 1
    buffers = [good, bytes(bad_length), bytes(bad_data), good[:-3]]
    for blob in buffers:
        native.scan(blob, 0, len(blob), True, 5)
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(3000):
        for blob in buffers:
            native.scan(blob, 0, len(blob), True, 100)
            native.scan(blob, 0, len(blob), True, 5)
    gc.collect()
    assert sys.getallocatedblocks() - before < 100
