"""Bounded hangs: a read that gets no byte (and no reply) for the stall budget raises
RetriesExhaustedError at the first failed try after it, instead of after max_attempts read
timeouts; a slow server that keeps sending, or keeps answering errors, is not cut by it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from botocore.exceptions import ReadTimeoutError

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.s3.memory_reader import Fail, MemoryReader, client_error
from tests.s3.test_stream import Sleeps, make_stream, read_all
from tfrecord_s3.config import S3Config
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage.retry import RetryPolicy

TIMEOUT = 60.0  # the read timeout the fake clock charges per stalled try
DATA = bytes(range(256)) * 40


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def timing_out(clock: FakeClock, seconds: float = TIMEOUT) -> Callable[[], BaseException]:
    """A try that waited ``seconds`` for a byte, then timed out."""

    def make() -> BaseException:
        clock.now += seconds
        return ReadTimeoutError(endpoint_url="http://127.0.0.1:1")

    return make


def stream_over(reader: MemoryReader, clock: FakeClock, budget: float | None, attempts: int = 50) -> object:
    policy = RetryPolicy(max_attempts=attempts, budget=1000, stall_budget=budget, read_timeout=TIMEOUT)
    return make_stream(reader, Sleeps(), policy=policy, clock=clock)


def test_a_server_frozen_before_the_first_byte_gives_up_at_the_budget() -> None:
    clock = FakeClock()
    reader = MemoryReader(DATA, plan=lambda i, s, e: Fail(timing_out(clock)))
    stream = stream_over(reader, clock, budget=2 * TIMEOUT)
    with pytest.raises(tfr.RetriesExhaustedError) as caught:
        read_all(stream)  # type: ignore[arg-type]
    assert len(reader.calls) == 2  # one retry on a fresh connection, not 50 read timeouts
    assert caught.value.offset == 0
    assert "stall budget 120 s" in str(caught.value)
    assert clock.now - 1000.0 == 2 * TIMEOUT


def test_a_server_frozen_mid_body_gives_up_counting_from_its_last_byte() -> None:
    clock = FakeClock()
    # The first try delivers 300 bytes, then the server freezes for good.
    reader = MemoryReader(DATA, plan=lambda i, s, e: Fail(timing_out(clock), after=300 if i == 0 else 0))
    stream = stream_over(reader, clock, budget=2 * TIMEOUT)
    with pytest.raises(tfr.RetriesExhaustedError) as caught:
        read_all(stream)  # type: ignore[arg-type]
    assert caught.value.offset == 300
    # The stall began one read timeout before the first try failed: one retry fits.
    assert len(reader.calls) == 2
    assert reader.calls[1][0] == 300
    assert clock.now - 1000.0 == 2 * TIMEOUT


def test_without_a_budget_only_the_tries_bound_it() -> None:
    clock = FakeClock()
    reader = MemoryReader(DATA, plan=lambda i, s, e: Fail(timing_out(clock)))
    with pytest.raises(tfr.RetriesExhaustedError) as caught:
        read_all(stream_over(reader, clock, budget=None, attempts=8))  # type: ignore[arg-type]
    assert len(reader.calls) == 8
    assert "stall budget" not in str(caught.value)


def test_a_trickle_that_keeps_progressing_is_never_cut() -> None:
    clock = FakeClock()
    # Every try stalls a full read timeout after 100 bytes: slow, but each stall is shorter
    # than the budget.
    reader = MemoryReader(DATA, plan=lambda i, s, e: Fail(timing_out(clock), after=100), chunk=50)
    assert read_all(stream_over(reader, clock, budget=1.5 * TIMEOUT)) == DATA  # type: ignore[arg-type]
    assert len(reader.calls) > 20


def test_error_replies_are_answers_not_stalls() -> None:
    clock = FakeClock()

    def plan(i: int, start: int, end: int) -> Fail | None:
        clock.now += TIMEOUT  # each 500 takes a while to come
        return Fail(client_error("InternalError", 500)) if i < 5 else None

    assert read_all(stream_over(reader := MemoryReader(DATA, plan=plan), clock, budget=TIMEOUT)) == DATA  # type: ignore[arg-type]
    assert len(reader.calls) > 5


def test_the_backoff_never_sleeps_past_the_budget() -> None:
    clock = FakeClock()
    reader = MemoryReader(DATA, plan=lambda i, s, e: Fail(timing_out(clock, 9.0)))
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=50, budget=1000, base_delay=100.0, max_delay=100.0, stall_budget=10.0)
    with pytest.raises(tfr.RetriesExhaustedError):
        read_all(make_stream(reader, sleeps, policy=policy, clock=clock))
    assert sleeps.delays
    assert max(sleeps.delays) <= 1.0


# -- over real sockets ---------------------------------------------------------------------

RECORDS = [f"record {i}".encode() * 50 for i in range(300)]


def test_a_frozen_body_over_http_raises_within_the_budget(s3_env: S3Env, s3_proxy: FaultProxy) -> None:
    url = s3_env.put("frozen.tfrecord", b"".join(encode_frame(r) for r in RECORDS))
    # The server freezes 1000 bytes into the body, and answers nothing from then on.
    s3_proxy.add_rule(Fault.stall(120, after=1000), method="GET", key="frozen")
    s3_proxy.add_rule(Fault.stall(120), method="GET", key="frozen", times=None)
    # 1 s read timeout, 2 s budget; without the budget 30 tries would take 30 s and more.
    config = S3Config.from_env(read_timeout=1.0, stall_budget=2.0, max_attempts=30, read_ahead=0, backoff_base=0.01)
    began = time.monotonic()
    with pytest.raises(tfr.RetriesExhaustedError, match="stall budget") as caught:
        list(tfr.open_records(url, config=config))
    assert time.monotonic() - began < 15
    assert caught.value.offset == 1000
    gets = [r for r in s3_proxy.requests(method="GET") if "frozen" in r.path]
    assert 2 <= len(gets) <= 4  # about budget / timeout tries, not max_attempts


@pytest.fixture
def frozen_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """A port that accepts connections and never answers (a stopped process)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), accepted
    finally:
        stop.set()
        listener.close()
        thread.join(5)
        for conn in accepted:
            conn.close()


@pytest.mark.servers("moto", reason="no server involved")
def test_a_head_to_a_frozen_server_gives_up_after_the_tries_that_fit(
    s3_env: S3Env, frozen_listener: tuple[int, list[socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, accepted = frozen_listener
    monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{port}")
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "1000")
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(s3_env.url("any.tfrecord"))
    assert s3_env.url("any.tfrecord") in str(caught.value)
    assert len(accepted) == 2  # botocore's 3 tries cut to the 2 that fit in 2 read timeouts
