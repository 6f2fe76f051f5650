"""The receive path without copies: readers that write a range straight into BlockStream's
block buffer (``readinto_range``), S3RangeReader doing so from the socket, and the recycled
block buffers. Resume after a fault must still start at the exact next byte, the counters
must stay exact, and a recycled buffer must never overwrite bytes still being read."""

from __future__ import annotations

import io
import random
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.s3.memory_reader import Fail, MemoryReader
from tests.s3.test_stream import make_stream, pattern, read_all
from tfrecord_s3.config import S3Config
from tfrecord_s3.storage import s3_files, s3_reader, socket_receiver
from tfrecord_s3.storage.s3_path import S3Path
from tfrecord_s3.storage.stream import IntoRangeReader

KiB = 1024
MiB = 1024 * KiB


class IntoMemoryReader(MemoryReader):
    """MemoryReader that also writes ranges into the caller's buffer, following its plan."""

    def readinto_range(self, start: int, end: int, out: memoryview) -> Iterator[int]:
        at = 0
        for chunk in self.iter_range(start, end):
            out[at : at + len(chunk)] = chunk
            at += len(chunk)
            yield len(chunk)


def test_the_into_reader_is_recognised() -> None:
    assert isinstance(IntoMemoryReader(b"x"), IntoRangeReader)
    assert not isinstance(MemoryReader(b"x"), IntoRangeReader)


def test_every_cut_in_a_block_resumes_at_the_exact_byte() -> None:
    data = pattern(3000)
    for cut in [*range(0, 1000, 41), 999]:
        reader = IntoMemoryReader(
            data, plan=lambda i, s, e, cut=cut: Fail(ConnectionResetError, cut) if i == 1 else None, chunk=64
        )
        stream = make_stream(reader, read_ahead=0)
        assert read_all(stream, 77) == data, cut
        assert reader.calls[1:3] == [(1000, 2000), (1000 + cut, 2000)], cut
        counters = stream.counters()
        assert counters.bytes_received == len(data), cut  # nothing fetched twice
        assert counters.bytes_requested == len(data) + 1000 - cut
        assert counters.requests == 4
        assert counters.retries == 1


def test_a_fault_after_the_last_byte_keeps_the_block() -> None:
    data = pattern(2000)
    reader = IntoMemoryReader(data, plan=lambda i, s, e: Fail(ConnectionResetError, 1000) if i == 0 else None)
    stream = make_stream(reader)
    assert read_all(stream) == data
    assert stream.requests == 2
    assert stream.retries == 0


def test_counters_exact_under_repeated_faults_with_read_ahead() -> None:
    data = pattern(20_000)
    # Every first try of a block breaks after 10..400 bytes, every second try after 7 more.
    rng = random.Random(4)
    cuts = {s: rng.randrange(10, 400) for s in range(0, 20_000, 1000)}
    tries: dict[int, int] = {}
    lock = threading.Lock()

    def plan(i: int, start: int, end: int) -> Fail | None:
        block = start - start % 1000
        with lock:
            tries[block] = tries.get(block, 0) + 1
            n = tries[block]
        if n == 1:
            return Fail(ConnectionResetError, cuts[block])
        if n == 2:
            return Fail(TimeoutError, 7)
        return None

    reader = IntoMemoryReader(data, plan=plan, chunk=100)
    stream = make_stream(reader, read_ahead=3)
    assert read_all(stream, 500) == data
    counters = stream.counters()
    assert counters.requests == 60
    assert counters.retries == 40
    assert counters.bytes_received == len(data)
    assert counters.bytes_requested == sum(3000 - 2 * cuts[b] - 7 for b in cuts)


def test_recycled_buffers_never_overwrite_a_block_being_read() -> None:
    data = pattern(50_000)

    class Slow(IntoMemoryReader):
        def readinto_range(self, start: int, end: int, out: memoryview) -> Iterator[int]:
            time.sleep(0.001)  # read-ahead threads still writing while the reader copies
            yield from super().readinto_range(start, end, out)

    stream = make_stream(Slow(data, chunk=97), read_ahead=3)
    rng = random.Random(9)
    with io.BufferedReader(stream, 100) as buffered:
        assert buffered.read(7_000) == data[:7_000]
        for _ in range(60):
            start = rng.randrange(0, 50_000)
            length = rng.randrange(1, 4000)
            buffered.seek(start)
            assert buffered.read(length) == data[start : start + length]
            # Sequential runs after each seek, so read-ahead and recycling kick in.
            assert buffered.read(2500) == data[start + length : start + length + 2500]


def test_buffers_are_recycled_and_bounded() -> None:
    block = 256 * KiB
    data = pattern(40 * block)
    tracemalloc.start()
    try:
        stream = make_stream(IntoMemoryReader(data, chunk=64 * KiB), block_size=block, read_ahead=2)
        with io.BufferedReader(stream, 64 * KiB) as buffered:
            while buffered.read(100 * KiB):
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The block being read, two ahead, one being refilled and the reader's own chunks: a
    # handful of blocks, not forty.
    assert peak < 7 * block


def test_a_small_object_gets_a_buffer_of_its_size() -> None:
    tracemalloc.start()
    try:
        stream = make_stream(IntoMemoryReader(b"r" * 100), block_size=8 * MiB, read_ahead=2)
        assert stream.read() == b"r" * 100
        _, peak = tracemalloc.get_traced_memory()
        stream.close()
    finally:
        tracemalloc.stop()
    assert peak < 1 * MiB


def test_readinto_spans_to_the_end_of_the_block_only() -> None:
    data = pattern(2500)
    stream = make_stream(IntoMemoryReader(data))
    out = bytearray(5000)
    assert stream.readinto(out) == 1000
    assert stream.readinto(memoryview(out)[1000:]) == 1000
    assert stream.readinto(memoryview(out)[2000:]) == 500
    assert stream.readinto(out) == 0
    assert bytes(out[:2500]) == data


# -- over real HTTP (moto, behind the fault proxy) -------------------------------------------

BLOCK = 64 * KiB
KEY = "fast.bin"
DATA = pattern(3 * BLOCK + 1234, seed=11)


def config(**changes: object) -> S3Config:
    options: dict[str, object] = {"block_size": BLOCK, "read_ahead": 0, "backoff_base": 0.001, "max_attempts": 4}
    options.update(changes)
    return S3Config.from_env(**options)


@pytest.fixture
def url(s3_env: S3Env) -> str:
    return s3_env.put(KEY, DATA)


def test_one_connection_serves_every_block_in_turn(url: str, s3_proxy: FaultProxy) -> None:
    # The last byte of each range goes through urllib3, which returns the connection to the
    # pool: with no read-ahead, every GET reuses the same connection.
    with s3_files.open_s3_stream(url, config=config()) as stream:
        assert stream.readall() == DATA
    s3_proxy.wait_idle()
    gets = s3_proxy.requests(method="GET", key=KEY)
    assert len(gets) == 4
    assert len({r.conn for r in gets}) == 1


@pytest.mark.parametrize("cut", [9000, 30_000, BLOCK - 2, BLOCK - 1])
def test_a_close_past_the_header_buffer_resumes_at_the_exact_byte(url: str, s3_proxy: FaultProxy, cut: int) -> None:
    s3_proxy.add_rule(Fault.close_after(cut), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    with s3_files.open_s3_stream(url, config=config()) as stream:
        assert stream.readall() == DATA
        counters = stream.counters()
    s3_proxy.wait_idle()
    assert f"bytes={BLOCK + cut}-{2 * BLOCK - 1}" in [r.range_header for r in s3_proxy.requests(method="GET")]
    assert counters.retries == 1
    assert counters.bytes_received == len(DATA)
    assert s3_proxy.bytes_sent(key=KEY) == len(DATA)  # not one byte sent twice


def test_a_stall_past_the_header_buffer_resumes_at_the_exact_byte(
    url: str, s3_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "300")
    s3_proxy.add_rule(Fault.stall(1.5, after=20_000), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    with s3_files.open_s3_stream(url, config=config()) as stream:
        assert stream.readall() == DATA
        assert stream.retries == 1
        assert stream.counters().bytes_received == len(DATA)
    s3_proxy.wait_idle()
    assert f"bytes={BLOCK + 20_000}-{2 * BLOCK - 1}" in [r.range_header for r in s3_proxy.requests(method="GET")]


def test_a_slow_trickle_is_not_a_stall(url: str, s3_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    # ~25 KB/s: fewer bytes than the low-water mark arrive within the read timeout (the
    # block takes ~2.6 s against a 2 s timeout), but bytes do arrive, so nothing is retried.
    # A byte every 20 ms against a 2 s timeout: only a thread starved for 100 drip
    # intervals could turn this into a stall, which a busy machine does not do.
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "2000")
    s3_proxy.add_rule(Fault.drip(500, 0.02, after=1000), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    with s3_files.open_s3_stream(url, config=config()) as stream:
        assert stream.readall() == DATA
        assert stream.retries == 0
    s3_proxy.wait_idle()  # the proxy logs the last bytes it sent after the client has them
    assert s3_proxy.bytes_sent(key=KEY) == len(DATA)


def test_the_copying_fallback_resumes_exactly_too(
    url: str, s3_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another HTTP stack (urllib3 1.x, a chunked body): bytes are copied from read1 chunks.
    monkeypatch.setattr(socket_receiver.SocketReceiver, "attach", classmethod(lambda cls, body: None))
    s3_proxy.add_rule(Fault.close_after(777), method="GET", key=KEY, window=(2 * BLOCK, 2 * BLOCK + 1))
    with s3_files.open_s3_stream(url, config=config(read_ahead=2)) as stream:
        assert stream.readall() == DATA
        assert stream.counters().bytes_received == len(DATA)
    assert s3_proxy.wait_idle()  # the proxy's log of what it sent is final
    assert s3_proxy.bytes_sent(key=KEY) == len(DATA)


def test_a_buffer_of_the_wrong_size_is_refused(url: str) -> None:
    reader = s3_reader.S3RangeReader(S3Path.parse(url), config())
    with pytest.raises(ValueError, match="buffer of 10 bytes"):
        next(reader.readinto_range(0, 100, memoryview(bytearray(10))))
