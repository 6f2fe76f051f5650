"""BlockStream over an in-memory reader: block arithmetic, resume from the exact byte after
body faults, backoff and budget, fatal errors, read-ahead and shutdown.

The faults here are the exceptions botocore and urllib3 raise while a body streams; the
same scenarios over real HTTP are in test_stream_faults.py."""

from __future__ import annotations

import http.client
import io
import random
import threading
import time
from collections.abc import Callable

import pytest
import urllib3.exceptions as u3e
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from tests.s3.memory_reader import Fail, MemoryReader, PlainReader, client_error
from tests.waiting import wait_until
from tfrecord_s3.errors import (
    AccessDeniedError,
    ObjectChangedError,
    ObjectNotFoundError,
    ResponseError,
    RetriesExhaustedError,
)
from tfrecord_s3.storage.buffers import process_buffers
from tfrecord_s3.storage.retry import Backoff, RetryPolicy
from tfrecord_s3.storage.stream import BlockStream

MiB = 1024 * 1024


def pattern(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


class Sleeps:
    """An injected sleep: records the delays, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_stream(reader: object, sleeps: Sleeps | None = None, **options: object) -> BlockStream:
    options.setdefault("block_size", 1000)
    options.setdefault("read_ahead", 0)
    return BlockStream(
        reader,  # type: ignore[arg-type]
        sleep=sleeps if sleeps is not None else Sleeps(),
        rng=random.Random(1),
        **options,  # type: ignore[arg-type]
    )


def read_all(stream: BlockStream, chunk: int = 333) -> bytes:
    out = bytearray()
    with io.BufferedReader(stream, 64) as buffered:
        while piece := buffered.read(chunk):
            out += piece
    return bytes(out)


BODY_FAULTS: list[Callable[[], BaseException]] = [
    lambda: ResponseStreamingError(error="reset"),
    lambda: IncompleteReadError(actual_bytes=1, expected_bytes=2),
    lambda: ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    lambda: ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
    lambda: EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    lambda: u3e.ProtocolError("Connection broken", ConnectionResetError()),
    lambda: u3e.ReadTimeoutError(None, "/", "read timed out"),  # type: ignore[arg-type]
    lambda: http.client.IncompleteRead(b"x", 5),
    ConnectionResetError,
    client_error("InternalError", 500),
]


@pytest.mark.parametrize("read_ahead", [0, 2])
def test_a_100_mib_object_at_8_mib_blocks_costs_13_requests(read_ahead: int) -> None:
    data = pattern(100 * MiB)
    reader = MemoryReader(data, chunk=MiB)
    stream = make_stream(reader, block_size=8 * MiB, read_ahead=read_ahead)
    with io.BufferedReader(stream, MiB) as buffered:
        assert buffered.read() == data
    assert stream.requests == 13 == len(reader.calls)
    assert stream.bytes_requested == 100 * MiB
    assert stream.retries == 0
    assert sorted(reader.calls) == [(i * 8 * MiB, min((i + 1) * 8 * MiB, 100 * MiB)) for i in range(13)]


def test_empty_object_makes_no_request_and_small_one_makes_one() -> None:
    empty = MemoryReader(b"")
    stream = make_stream(empty, block_size=8 * MiB, read_ahead=2)
    assert stream.read() == b""
    assert stream.readinto(bytearray(10)) == 0
    assert empty.calls == []
    small = MemoryReader(b"x" * 100)
    stream = make_stream(small, block_size=8 * MiB, read_ahead=2)
    assert read_all(stream) == b"x" * 100
    assert small.calls == [(0, 100)]


@pytest.mark.parametrize("fault", BODY_FAULTS)
def test_body_fault_resumes_at_the_next_byte(fault: Callable[[], BaseException]) -> None:
    data = pattern(5000)
    # Request 1 (the second block) breaks after 123 bytes.
    reader = MemoryReader(data, plan=lambda i, s, e: Fail(fault, 123) if i == 1 else None, chunk=50)
    sleeps = Sleeps()
    stream = make_stream(reader, sleeps)
    assert read_all(stream) == data
    assert reader.calls[1:3] == [(1000, 2000), (1123, 2000)]
    assert stream.retries == 1
    assert len(sleeps.delays) == 1
    counters = stream.counters()
    assert counters.bytes_received == len(data)  # nothing fetched twice
    assert counters.bytes_requested == len(data) + (1000 - 123)


def test_every_cut_offset_gives_identical_bytes() -> None:
    data = pattern(3000)
    for cut in range(0, 1000, 37):
        reader = MemoryReader(
            data, plan=lambda i, s, e, cut=cut: Fail(ConnectionResetError, cut) if i in (0, 2) else None, chunk=64
        )
        stream = make_stream(reader, read_ahead=1)
        assert read_all(stream, 17) == data, cut
        assert stream.counters().bytes_received == len(data)


def test_budget_per_block_then_retries_exhausted_names_offset() -> None:
    data = pattern(2500)
    fault = client_error("InternalError", 500)
    reader = MemoryReader(data, plan=lambda i, s, e: None if s < 1000 else Fail(fault, 40 if s == 1000 else 0))
    sleeps = Sleeps()
    stream = make_stream(reader, sleeps, policy=RetryPolicy(max_attempts=4, budget=100, base_delay=0.1))
    got = bytearray()
    with pytest.raises(RetriesExhaustedError) as caught:
        while piece := stream.read(100):
            got += piece
    assert bytes(got) == data[:1000]  # every byte before the fault, nothing after
    error = caught.value
    assert error.path == "s3://memory/object"
    # The first try delivered 40 bytes (progress, so it counts as try 1 at byte 1040), then
    # three more tries without progress.
    assert error.offset == 1040
    assert error.attempts == 4
    assert "s3://memory/object" in str(error)
    assert "byte 1040" in str(error)
    assert isinstance(error.__cause__, Exception)
    assert stream.retries == len(sleeps.delays) == 3
    assert reader.calls[1:] == [(1000, 2000), (1040, 2000), (1040, 2000), (1040, 2000)]
    # Full jitter: each delay within [0, base * 2**retry].
    assert all(0 <= d <= 0.1 * 2**k for k, d in enumerate(sleeps.delays))


def test_stream_budget_bounds_faults_spread_over_blocks() -> None:
    data = pattern(5000)
    reader = MemoryReader(data, plan=lambda i, s, e: Fail(ConnectionResetError, 10) if s % 1000 == 0 else None)
    stream = make_stream(reader, policy=RetryPolicy(max_attempts=5, budget=2))
    with pytest.raises(RetriesExhaustedError) as caught:
        stream.read()
    assert caught.value.offset == 2010
    assert stream.retries == 2


def test_progress_resets_the_attempt_count() -> None:
    # Every try delivers 100 bytes and breaks: 10 tries per block, more than max_attempts.
    data = pattern(3000)
    reader = MemoryReader(data, plan=lambda i, s, e: Fail(ConnectionResetError, 100))
    stream = make_stream(reader, policy=RetryPolicy(max_attempts=2, budget=1000))
    assert read_all(stream) == data
    assert stream.requests == 30


def test_throttles_back_off_longer_and_are_counted() -> None:
    data = pattern(2000)
    reader = MemoryReader(data, plan=lambda i, s, e: Fail(client_error("SlowDown", 503)) if i < 3 else None)
    sleeps = Sleeps()
    policy = RetryPolicy(base_delay=0.001, throttle_base_delay=5.0, max_delay=100)
    stream = make_stream(reader, sleeps, policy=policy)
    assert read_all(stream) == data
    assert stream.throttles == 3
    assert stream.retries == 3
    assert max(sleeps.delays) > 0.001 * 4  # drawn from the throttle range (seeded)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (client_error("PreconditionFailed", 412), ObjectChangedError),
        (client_error("NoSuchKey", 404), ObjectNotFoundError),
        (client_error("AccessDenied", 403), AccessDeniedError),
        (client_error("InvalidRange", 416), ResponseError),
    ],
)
def test_fatal_errors_are_not_retried(fault: Callable[[], BaseException], error: type[Exception]) -> None:
    data = pattern(3000)
    reader = MemoryReader(data, plan=lambda i, s, e: Fail(fault) if s == 2000 else None)
    stream = make_stream(reader)
    got = bytearray()
    with pytest.raises(error) as caught:
        while piece := stream.read(250):
            got += piece
    assert bytes(got) == data[:2000]
    assert len(reader.calls) == 3
    assert stream.retries == 0
    assert caught.value.path == "s3://memory/object"  # type: ignore[attr-defined]
    assert "s3://memory/object" in str(caught.value)


def test_a_body_longer_than_the_range_is_never_used() -> None:
    reader = MemoryReader(pattern(3000), extra=1)
    stream = make_stream(reader)
    with pytest.raises(ResponseError, match="1001 bytes for a 1000-byte range"):
        stream.read(10)


def test_plain_range_reader_is_retried_whole() -> None:
    data = pattern(2500)
    reader = PlainReader(data, failures=2, error=ConnectionResetError)
    stream = make_stream(reader)
    assert read_all(stream) == data
    assert reader.calls == 5
    assert stream.retries == 2


def test_seek_tell_and_random_reads() -> None:
    data = pattern(10_000)
    reader = MemoryReader(data)
    stream = make_stream(reader, read_ahead=2)
    rng = random.Random(3)
    with io.BufferedReader(stream, 128) as buffered:
        for _ in range(200):
            start = rng.randrange(0, 10_500)
            length = rng.randrange(0, 3000)
            assert buffered.seek(start) == start
            assert buffered.read(length) == data[start : start + length]
            assert buffered.tell() == min(start + length, max(start, 10_000)) or start > 10_000
        assert buffered.seek(-10, io.SEEK_END) == 9990
        assert buffered.read() == data[-10:]
        with pytest.raises(ValueError, match="negative"):
            buffered.seek(-1)


def test_sequential_read_ahead_runs_in_parallel() -> None:
    data = pattern(8000)
    active = 0
    peak = 0
    lock = threading.Lock()

    class Slow(MemoryReader):
        def iter_range(self, start: int, end: int):  # type: ignore[no-untyped-def]
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.01)
            try:
                yield from super().iter_range(start, end)
            finally:
                with lock:
                    active -= 1

    reader = Slow(data)
    stream = make_stream(reader, read_ahead=3)
    assert read_all(stream) == data
    assert peak >= 2
    assert len(reader.calls) == 8  # read-ahead never fetches a block twice


def test_a_closed_stream_gives_its_last_block_back_to_the_pool() -> None:
    pool = process_buffers()
    pool.attach()  # another stream still open: the pool keeps what it is given
    try:
        stream = make_stream(MemoryReader(pattern(3000)), read_ahead=1)
        out = bytearray(3000)
        assert sum(stream.readinto(memoryview(out)[i : i + 1000]) for i in range(0, 3000, 1000)) == 3000
        assert out == pattern(3000)
        idle, last = pool.idle_bytes, stream._block.obj
        stream.close()
        assert pool.idle_bytes == idle + 1000  # the next GET of any stream takes it
        assert any(buffer is last for buffer in pool._buffers)
    finally:
        pool.detach()


def test_close_joins_threads_and_interrupts_backoff() -> None:
    baseline = threading.active_count()
    data = pattern(10_000)
    reader = MemoryReader(data, plan=lambda i, s, e: Fail(ConnectionResetError) if s >= 3000 else None)
    # The real (interruptible) sleep, with a long backoff: close() must not wait it out.
    stream = BlockStream(
        reader, block_size=1000, read_ahead=3, policy=RetryPolicy(base_delay=60, max_delay=60), rng=random.Random(0)
    )
    assert stream.read(1000) == data[:1000]
    # Read-ahead reached a failing block and is backing off (a retry is counted before its wait).
    assert wait_until(lambda: stream.retries >= 1)
    began = time.monotonic()
    stream.close()
    assert time.monotonic() - began < 2
    assert threading.active_count() == baseline
    stream.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        stream.read(1)


def test_retry_policy_delays_and_budget() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    rng = random.Random(5)
    for retry in range(10):
        assert 0 <= policy.delay(retry, rng) <= min(3.0, 0.5 * 2**retry)
    sleeps = Sleeps()
    backoff = Backoff(RetryPolicy(max_attempts=3, budget=3), sleep=sleeps, rng=random.Random(0))
    assert backoff.try_spend(1)
    assert backoff.try_spend(2)
    assert not backoff.try_spend(3)  # per-block attempts used up
    assert backoff.try_spend(1)
    assert not backoff.try_spend(1)  # stream budget used up
    assert backoff.retries == 3 == len(sleeps.delays)
