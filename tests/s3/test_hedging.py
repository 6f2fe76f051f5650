"""Hedged GETs (tfrecord_s3/storage/hedging.py): a GET that goes far longer than its peers
without a byte is raced by a second one for its rest; the bytes stay exact, the slow one is
dropped, and 503 SlowDown shrinks the window. Faults come from the fault proxy in front of
a real server; the race's own rules from in-memory readers."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.s3.memory_reader import MemoryReader
from tests.waiting import wait_until
from tfrecord_s3.config import S3Config
from tfrecord_s3.errors import ConfigError
from tfrecord_s3.storage import s3_files
from tfrecord_s3.storage.hedging import HEDGE_MULTIPLE, LONE_FACTOR, HedgePolicy, LatencyTracker, Leg
from tfrecord_s3.storage.scheduler import TransferScheduler
from tfrecord_s3.storage.stream import BlockStream

KiB = 1024
BLOCK = 64 * KiB
KEY = "hedge.bin"
DATA = random.Random(10).randbytes(6 * BLOCK + 123)
SLOW = 3 * BLOCK  # the block whose first GET is made slow


def get_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tfrecord-s3-get"]


def config(**changes: object) -> S3Config:
    """Adaptive mode (hedging on) with small blocks, a low hedge floor and a long read
    timeout: a GET the proxy holds up 30 s is hedged long before; loopback GETs are never
    that slow, even on a busy machine. The streams are opened with ``first_block=None``
    (aligned blocks, read ahead as the reader goes): a full-size first block would make a
    stream eager, all its GETs at once, and the held-up one could be the last in flight,
    which is left to its read timeout rather than hedged."""
    options: dict[str, object] = {
        "block_size": BLOCK,
        "first_block_size": BLOCK,
        "read_timeout": 60.0,
        "hedge_after": 2.0,
        "backoff_base": 0.001,
    }
    options.update(changes)
    return S3Config.from_env(**options)


@pytest.fixture
def url(s3_env: S3Env) -> str:
    return s3_env.put(KEY, DATA)


def slow_gets(proxy: FaultProxy) -> list[str | None]:
    return [r.range_header for r in proxy.requests(method="GET", key=KEY) if r.range_header and _covers(r.range_header)]


def _covers(range_header: str) -> bool:
    first = int(range_header.split("=")[1].split("-")[0])
    return SLOW <= first < SLOW + BLOCK


@pytest.mark.parametrize(
    ("fault", "what"),
    [(Fault.stall(30.0), "headers"), (Fault.stall(30.0, after=100), "body")],
)
def test_a_get_held_up_30_s_is_hedged_and_the_bytes_are_exact(
    url: str, s3_proxy: FaultProxy, fault: Fault, what: str
) -> None:
    s3_proxy.add_rule(fault, method="GET", key=KEY, window=(SLOW, SLOW + 1), nth=1)
    latency = LatencyTracker()
    began = time.monotonic()
    with s3_files.open_s3_stream(url, config=config(), latency=latency, first_block=None) as stream:
        got = stream.readall()
        counters = stream.counters()
    took = time.monotonic() - began
    assert got == DATA
    assert counters.hedges == 1
    assert latency.hedges == 1
    assert took < 20  # the held-up GET would have taken 30 s
    # Two GETs of that block: the held-up one, and the hedge for what it had not delivered.
    ranges = slow_gets(s3_proxy)
    assert len(ranges) == 2
    hedge_start = int(ranges[1].split("=")[1].split("-")[0])  # type: ignore[union-attr]
    assert SLOW <= hedge_start <= SLOW + (100 if what == "body" else 0)
    # The loser ends once its connection does (here: the proxy goes; else its read timeout).
    s3_proxy.stop()
    assert wait_until(lambda: not get_threads())
    assert latency.hedging == 0


def test_a_dataset_counts_its_hedges(s3_env: S3Env, s3_proxy: FaultProxy) -> None:
    import tfrecord_s3 as tfr
    from tfrecord_s3.records.framing import encode_frame

    records = [random.Random(i).randbytes(1000) for i in range(400)]  # ~400 KiB: 7 blocks
    url = s3_env.put("hedge/records.tfrecord", b"".join(encode_frame(r) for r in records))
    s3_proxy.add_rule(Fault.stall(30.0), method="GET", key="hedge/records", window=(SLOW, SLOW + 1), nth=1)
    dataset = tfr.TFRecordDataset(url, config=config())
    assert [bytes(r) for r in dataset] == records
    assert dataset.stats.hedges == 1
    s3_proxy.stop()
    assert wait_until(lambda: not get_threads())


def test_no_hedge_when_every_get_is_prompt(url: str, s3_proxy: FaultProxy) -> None:
    latency = LatencyTracker()
    with s3_files.open_s3_stream(url, config=config(hedge_after=10.0), latency=latency, first_block=None) as stream:
        assert stream.readall() == DATA
        assert stream.counters().hedges == 0
    assert len(s3_proxy.requests(method="GET", key=KEY)) == stream.counters().requests
    first, gap = latency.medians()
    assert first is not None  # every GET was timed
    assert gap is not None


def test_hedging_off_and_fixed_windows_never_race(url: str, s3_proxy: FaultProxy) -> None:
    for options in ({"hedge_after": None}, {"read_ahead": 2}):
        with s3_files.open_s3_stream(url, config=config(**options), first_block=None) as stream:
            assert stream.readall() == DATA
            assert "hedge" not in s3_files.stream_policy(config(**options))
    assert not get_threads()


def test_slow_down_from_the_server_halves_the_window(url: str, s3_proxy: FaultProxy) -> None:
    s3_proxy.add_rule(Fault.slow_down(), method="GET", key=KEY, nth=3)
    scheduler = TransferScheduler(max_requests=16, initial_window=8)
    with s3_files.open_s3_stream(
        url, config=config(throttle_backoff_base=0.001), scheduler=scheduler, first_block=None
    ) as stream:
        assert stream.readall() == DATA
        assert stream.throttles == 1
    assert scheduler.window == 4


# -- the race's rules, on in-memory readers ---------------------------------------------------


class HeldReader(MemoryReader):
    """The first GET from byte 0 waits for ``release`` before its first chunk (a server holding
    back its reply), then delivers; every other GET answers once that one has been asked (so
    its peers' bytes arrive while it waits, whatever order the threads start in)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data, chunk=1000)
        self.release = threading.Event()
        self.held_asked = threading.Event()
        self.held_done = threading.Event()
        self._asked = 0

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        with self._lock:
            first = start == 0 and self._asked == 0
            self._asked += start == 0
        inner = super().iter_range(start, end)
        if not first:
            assert self.held_asked.wait(30)
            yield from inner
            return
        self.held_asked.set()
        try:
            self.release.wait(60)  # bounded: a broken race fails the test instead of hanging it
            yield from inner
        finally:
            self.held_done.set()


def stream_of(reader: MemoryReader, floor: float = 0.01) -> BlockStream:
    """Blocks of 10,000 bytes, two fetched ahead (the held block's peers), hedging on."""
    policy = HedgePolicy(floor=floor, read_timeout=60.0)
    return BlockStream(reader, block_size=10_000, read_ahead=2, hedge=policy, latency=LatencyTracker())


def test_the_loser_never_writes_into_the_block_it_lost() -> None:
    data = random.Random(11).randbytes(30_000)
    reader = HeldReader(data)
    stream = stream_of(reader)
    assert stream.read(10_000) == data[:10_000]  # the hedge, once the blocks ahead answered
    snapshot = bytes(stream._block)
    assert stream.counters().hedges == 1
    reader.release.set()  # the held-up GET now gets its reply
    assert reader.held_done.wait(30)
    assert reader.calls.count((0, 10_000)) == 2  # the hedge asked for all of it again
    assert wait_until(lambda: not get_threads())
    assert bytes(stream._block) == snapshot == data[:10_000]  # it stopped at its first chunk, elsewhere
    assert stream.read() == data[10_000:]
    stream.close()


def test_a_lone_slow_get_is_left_to_its_read_timeout_while_no_get_ever_answered() -> None:
    # No GET of the process got a byte yet: nothing says the server answers at all.
    data = random.Random(12).randbytes(10_000)
    reader = HeldReader(data)
    stream = stream_of(reader)
    threading.Timer(0.5, reader.release.set).start()  # 50 floors: a hedge would have gone
    assert stream.read() == data
    assert stream.counters().hedges == 0
    assert reader.calls == [(0, 10_000)]
    stream.close()


def test_a_lone_slow_get_is_hedged_against_the_process_history() -> None:
    # The last GET in flight (a file opened ahead asks for all its blocks at once, and this
    # one is held up after the others ended): earlier GETs answered in 10 ms, so waiting
    # twice the patience is enough to say this one is stuck.
    data = random.Random(13).randbytes(10_000)
    reader = HeldReader(data)
    latency = LatencyTracker()
    for _ in range(8):
        latency.first_byte(0.01)
    stream = BlockStream(
        reader, block_size=10_000, read_ahead=2, hedge=HedgePolicy(floor=0.01, read_timeout=60.0), latency=latency
    )
    started = time.monotonic()
    assert stream.read() == data  # held for up to 60 s without the hedge
    assert time.monotonic() - started >= LONE_FACTOR * HEDGE_MULTIPLE * 0.01
    assert stream.counters().hedges == 1
    reader.release.set()  # the held-up GET now gets its reply
    assert reader.held_done.wait(30)
    assert reader.calls == [(0, 10_000), (0, 10_000)]  # the hedge asked for all of it again
    stream.close()


def test_a_lone_get_is_never_hedged_past_the_read_timeout() -> None:
    policy = HedgePolicy(floor=0.01, read_timeout=1.0)
    latency = LatencyTracker()
    for _ in range(8):
        latency.first_byte(0.2)  # patience 0.8 s; a lone GET would wait 1.6 s: the timeout's
    leg = Leg(memoryview(bytearray(1)), 0, latency)
    patience = latency.patience(policy, body=False)
    assert patience == pytest.approx(0.8)
    assert leg.hedge_due(patience, policy.read_timeout) == float("inf")
    latency.first_byte(0.2)  # another GET got a byte: this one was overtaken
    assert leg.hedge_due(patience, policy.read_timeout) <= patience


def test_patience_follows_the_median_within_floor_and_read_timeout() -> None:
    policy = HedgePolicy(floor=0.1, read_timeout=2.0)
    latency = LatencyTracker()
    assert latency.patience(policy, body=False) == HEDGE_MULTIPLE * 0.1  # no sample: the floor's
    for seconds in (0.01, 0.02, 0.03):
        latency.first_byte(seconds)
    assert latency.patience(policy, body=False) == pytest.approx(max(0.1, HEDGE_MULTIPLE * 0.02))
    for seconds in (0.2, 0.3, 0.4):
        latency.gap(seconds)
    assert latency.patience(policy, body=True) == pytest.approx(HEDGE_MULTIPLE * 0.3)
    for _ in range(10):
        latency.gap(1.0)  # a slow link: 4 s without a byte is no stall before the 2 s timeout
    assert latency.patience(policy, body=True) is None


def test_the_environment_switches_hedging() -> None:
    assert S3Config.from_env({}).hedge_after == 0.5
    assert S3Config.from_env({"S3_HEDGE_AFTER_MSEC": "250"}).hedge_after == 0.25
    assert S3Config.from_env({"S3_HEDGE_AFTER_MSEC": "0"}).hedge_after is None
    with pytest.raises(ConfigError, match="S3_HEDGE_AFTER_MSEC"):
        S3Config.from_env({"S3_HEDGE_AFTER_MSEC": "soon"})
    with pytest.raises(ConfigError, match="hedge_after"):
        S3Config(hedge_after=-1)
