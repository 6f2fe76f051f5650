"""The process's transfer scheduler: window bounds and adaptation with an injected clock, and
BlockStreams sharing it (growing blocks, exactly-once bytes, budget, fairness, 503s)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

from tests.s3.memory_reader import Fail, MemoryReader, client_error
from tfrecord_s3.storage.scheduler import TransferScheduler
from tfrecord_s3.storage.stream import BlockStream

KiB = 1024
MiB = 1024 * KiB


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Client:
    """A stand-in stream: counts how often the scheduler asked it for more."""

    def __init__(self, waiting: bool = False, ahead: int = 0) -> None:
        self.waiting, self.ahead, self.topped = waiting, ahead, 0
        self.order: list[Client] | None = None

    def urgency(self) -> tuple[int, int]:
        return (0 if self.waiting else 1, self.ahead)

    def top_up(self) -> None:
        self.topped += 1
        if self.order is not None:
            self.order.append(self)


def saturate(scheduler: TransferScheduler, client: Client) -> int:
    """Take every slot the window allows (and one refusal); the count taken."""
    taken = 0
    while scheduler.try_start(client, 1, 1 << 40):
        taken += 1
    return taken


def test_the_window_bounds_grants_and_a_free_slot_tops_up_the_refused() -> None:
    scheduler = TransferScheduler(max_requests=8, initial_window=2, clock=Clock())
    client = Client()
    assert saturate(scheduler, client) == 2
    assert scheduler.in_flight == 2
    scheduler.request_done()
    assert client.topped == 1
    assert scheduler.try_start(client, 1, 1 << 40)
    assert not scheduler.try_start(client, 1, 1 << 40)


def test_the_window_doubles_while_consumers_wait_and_stops_at_the_cap() -> None:
    clock = Clock()
    scheduler = TransferScheduler(max_requests=8, initial_window=2, sample_seconds=0.05, clock=clock)
    client = Client()
    windows = [scheduler.window]
    for _ in range(5):
        saturate(scheduler, client)
        clock.now += 0.06
        scheduler.received(10 * MiB * (scheduler.window))  # throughput grows with the window
        scheduler.consumer_waited()
        windows.append(scheduler.window)
    assert windows == [2, 4, 8, 8, 8, 8]
    assert scheduler.peak_window == 8


def test_no_growth_without_a_refusal_nor_twice_within_a_sample() -> None:
    clock = Clock()
    scheduler = TransferScheduler(max_requests=16, initial_window=2, sample_seconds=0.05, clock=clock)
    client = Client()
    scheduler.consumer_waited()  # nobody was refused a slot: the window is not the limit
    assert scheduler.window == 2
    saturate(scheduler, client)
    scheduler.consumer_waited()
    assert scheduler.window == 4
    saturate(scheduler, client)
    clock.now += 0.01
    scheduler.consumer_waited()  # too soon after the last doubling
    assert scheduler.window == 4


def test_a_doubling_that_did_not_pay_stops_growth_until_the_reprobe() -> None:
    clock = Clock()
    scheduler = TransferScheduler(
        max_requests=64, initial_window=2, sample_seconds=0.1, reprobe_seconds=5.0, clock=clock
    )
    client = Client()
    # A full sample (a stream was refused a slot) at window 2: 100 MB/s.
    saturate(scheduler, client)
    clock.now = 0.1
    scheduler.received(10_000_000)
    scheduler.consumer_waited()
    assert scheduler.window == 4
    # A full sample at window 4 gives the same 100 MB/s: more requests did not help.
    saturate(scheduler, client)
    clock.now = 0.2
    scheduler.received(10_000_000)
    saturate(scheduler, client)
    clock.now = 0.35
    scheduler.consumer_waited()
    assert scheduler.window == 4
    clock.now = 5.3  # the reprobe time has passed: growth may be tried again
    saturate(scheduler, client)
    scheduler.consumer_waited()
    assert scheduler.window == 8


def test_samples_where_the_window_was_not_full_or_that_span_a_gap_judge_nothing() -> None:
    clock = Clock()
    scheduler = TransferScheduler(max_requests=64, initial_window=2, sample_seconds=0.1, clock=clock)
    client = Client()
    saturate(scheduler, client)
    clock.now = 0.1
    scheduler.received(10_000_000)  # full: 100 MB/s at window 2
    scheduler.consumer_waited()
    assert scheduler.window == 4
    clock.now = 0.2
    scheduler.received(1_000_000)  # nobody was refused: demand, not the window, was the limit
    clock.now = 2.0
    scheduler.received(1_000_000)  # spans an idle gap
    assert scheduler.rate == 100_000_000
    saturate(scheduler, client)
    clock.now = 2.1
    scheduler.consumer_waited()
    assert scheduler.window == 8  # no plateau was declared


def test_slow_down_halves_the_window_and_holds_it() -> None:
    clock = Clock()
    scheduler = TransferScheduler(max_requests=16, initial_window=8, reprobe_seconds=5.0, clock=clock)
    client = Client()
    scheduler.throttled()
    assert scheduler.window == 4
    saturate(scheduler, client)
    clock.now = 1.0
    scheduler.consumer_waited()
    assert scheduler.window == 4
    for _ in range(5):
        scheduler.throttled()
    assert scheduler.window == 1


def test_bytes_are_bounded_but_one_block_may_always_go() -> None:
    scheduler = TransferScheduler(max_requests=16, initial_window=16, clock=Clock())
    client = Client()
    assert scheduler.try_start(client, 10 * MiB, 4 * MiB)  # nothing held: a block larger than the budget goes
    assert not scheduler.try_start(client, 1, 4 * MiB)
    scheduler.request_done()
    scheduler.release(10 * MiB)
    assert scheduler.held == 0
    assert scheduler.try_start(client, 2 * MiB, 4 * MiB)
    assert scheduler.try_start(client, 2 * MiB, 4 * MiB)
    assert not scheduler.try_start(client, 1, 4 * MiB)
    assert scheduler.peak_held == 10 * MiB


def test_no_stream_holds_more_than_an_equal_share_of_the_budget() -> None:
    scheduler = TransferScheduler(max_requests=16, initial_window=16, clock=Clock())
    ahead, behind = Client(), Client()
    scheduler.attach()
    scheduler.attach()
    for own in (0, MiB, 2 * MiB, 3 * MiB):
        assert scheduler.try_start(ahead, MiB, 8 * MiB, own)
    assert not scheduler.try_start(ahead, MiB, 8 * MiB, 4 * MiB)  # its share of 8 MiB is 4
    assert scheduler.try_start(behind, MiB, 8 * MiB, 0)  # the other stream still gets bytes
    scheduler.detach(ahead)
    scheduler.detach(behind)


def test_free_slots_go_to_waiting_consumers_first_then_to_the_fewest_ahead() -> None:
    scheduler = TransferScheduler(max_requests=4, initial_window=1, clock=Clock())
    order: list[Client] = []
    idle_many, idle_few, waiting = Client(ahead=3), Client(ahead=1), Client(waiting=True, ahead=5)
    for client in (idle_many, idle_few, waiting):
        client.order = order
    assert scheduler.try_start(idle_many, 1, 1 << 40)
    for client in (idle_many, idle_few, waiting):
        assert not scheduler.try_start(client, 1, 1 << 40)
    scheduler.request_done()
    assert order == [waiting, idle_few, idle_many]


# -- streams on a shared scheduler --------------------------------------------------------


def adaptive(reader: MemoryReader, scheduler: TransferScheduler, **options: object) -> BlockStream:
    options.setdefault("block_size", 64 * KiB)
    options.setdefault("first_block", 4 * KiB)
    options.setdefault("read_ahead", 8)
    return BlockStream(
        reader,
        scheduler=scheduler,
        sleep=lambda seconds: None,
        rng=random.Random(1),
        **options,  # type: ignore[arg-type]
    )


def take(stream: BlockStream, count: int) -> bytes:
    """Exactly ``count`` bytes (a raw stream's read may return fewer)."""
    parts = []
    while count:
        part = stream.read(count)
        assert part
        parts.append(part)
        count -= len(part)
    return b"".join(parts)


def test_blocks_grow_from_the_first_one_to_the_block_size() -> None:
    data = random.Random(3).randbytes(300 * KiB)
    reader = MemoryReader(data)
    scheduler = TransferScheduler(max_requests=1, initial_window=1)
    with adaptive(reader, scheduler, read_ahead=1) as stream:
        assert stream.read(10) == data[:10]
        assert stream.readall() == data[10:]
    sizes = [end - start for start, end in sorted(reader.calls)]
    assert sizes == [4 * KiB, 8 * KiB, 16 * KiB, 32 * KiB, 64 * KiB, 64 * KiB, 64 * KiB, 48 * KiB]
    assert sum(sizes) == len(data)  # every byte requested exactly once
    assert (scheduler.in_flight, scheduler.held) == (0, 0)


def test_a_small_object_is_one_get_and_a_small_tail_joins_the_block_before() -> None:
    scheduler = TransferScheduler()
    small = MemoryReader(b"x" * (15 * KiB))  # within 4 first blocks
    with adaptive(small, scheduler) as stream:
        assert stream.readall() == b"x" * (15 * KiB)
    assert small.calls == [(0, 15 * KiB)]
    tail = MemoryReader(b"y" * (4 * KiB + 8 * KiB + 16 * KiB + 2 * KiB), chunk=KiB)
    with adaptive(tail, scheduler, block_size=32 * KiB) as stream:
        assert len(stream.readall()) == tail.size
    assert sorted(tail.calls) == [(0, 4 * KiB), (4 * KiB, 12 * KiB), (12 * KiB, 30 * KiB)]


def test_a_seek_restarts_small_and_faults_resume_exactly_once() -> None:
    data = random.Random(4).randbytes(600 * KiB)
    cut = {3, 7}

    def plan(number: int, start: int, end: int) -> Fail | None:
        return Fail(client_error("InternalError", 500), after=1000) if number in cut else None

    reader = MemoryReader(data, plan=plan, chunk=512)
    scheduler = TransferScheduler(max_requests=4, initial_window=4)
    with adaptive(reader, scheduler, read_ahead=2) as stream:
        assert take(stream, 100 * KiB) == data[: 100 * KiB]
        stream.seek(400 * KiB)  # past what was fetched ahead
        assert stream.read(5) == data[400 * KiB : 400 * KiB + 5]
        assert (400 * KiB, 404 * KiB) in reader.calls  # a small first block after the seek
        assert stream.readall() == data[400 * KiB + 5 :]
        assert stream.counters().retries == 2
    assert (scheduler.in_flight, scheduler.held) == (0, 0)


def test_streams_share_one_window_and_return_everything_on_close() -> None:
    datas = [random.Random(10 + i).randbytes(256 * KiB + i) for i in range(3)]
    readers = [MemoryReader(d, chunk=4 * KiB) for d in datas]
    scheduler = TransferScheduler(max_requests=4, initial_window=4)
    streams = [adaptive(r, scheduler) for r in readers]
    got: list[bytes] = [b""] * 3
    errors: list[BaseException] = []

    def consume(i: int) -> None:
        try:
            got[i] = streams[i].readall()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert got == datas
    # Three consumers' current blocks (granted out of the window) plus the shared window.
    assert scheduler.peak_in_flight <= 4 + 3
    half_read = adaptive(MemoryReader(datas[0]), scheduler)
    take(half_read, 20 * KiB)
    for stream in [*streams, half_read]:
        stream.close()
    assert (scheduler.in_flight, scheduler.held) == (0, 0)


def test_slow_down_during_a_read_shrinks_the_window() -> None:
    data = random.Random(5).randbytes(200 * KiB)

    def plan(number: int, start: int, end: int) -> Fail | None:
        return Fail(client_error("SlowDown", 503)) if number == 2 else None

    scheduler = TransferScheduler(max_requests=8, initial_window=8)
    with adaptive(MemoryReader(data, plan=plan), scheduler) as stream:
        assert stream.readall() == data
        assert stream.throttles == 1
    assert scheduler.window == 4


def test_a_new_stream_starts_slow_one_block_ahead_then_doubling() -> None:
    data = random.Random(6).randbytes(2 * MiB)
    scheduler = TransferScheduler(max_requests=16, initial_window=16)
    with adaptive(MemoryReader(data), scheduler, read_ahead=16) as stream:
        ahead = []
        got = b""
        while len(ahead) < 4:
            got += stream.read(len(data))  # one block per call on a raw stream
            ahead.append(len(stream._pending))
        assert ahead == [1, 2, 4, 8]
        assert got + stream.readall() == data


def test_a_stream_whose_first_block_is_full_size_reads_ahead_from_its_first_get() -> None:
    # A dataset's file opened ahead asks for full blocks from its start: nobody waits on its
    # first record, so its read-ahead goes out with the first GET at full width.
    data = random.Random(7).randbytes(8 * 64 * KiB)
    for first_block, expected in ((16 * KiB, 1), (64 * KiB, 7)):
        scheduler = TransferScheduler(max_requests=16, initial_window=16)
        reader = MemoryReader(data)
        with adaptive(reader, scheduler, read_ahead=16, first_block=first_block, block_size=64 * KiB) as stream:
            got = stream.read(len(data))
            assert len(stream._pending) == expected
            assert got + stream.readall() == data


def test_room_for_a_new_stream_needs_an_idle_slot_nobody_asked_for_and_budget() -> None:
    scheduler = TransferScheduler(max_requests=4, initial_window=2, clock=Clock())
    client = Client()
    assert scheduler.has_room(10, 100)
    assert scheduler.try_start(client, 50, 100)
    assert scheduler.has_room(50, 100)
    assert not scheduler.has_room(51, 100)  # over the budget
    assert scheduler.try_start(client, 10, 100)
    assert not scheduler.has_room(1, 100)  # no idle slot
    assert not scheduler.try_start(client, 1, 100)  # refused: the client waits for a slot
    scheduler.request_done()  # a slot frees: the refused client is topped up, not a newcomer
    assert client.topped == 1
    assert scheduler.has_room(1, 100)
    assert not scheduler.try_start(client, 50, 100)  # refused for bytes: asked, not served
    assert not scheduler.has_room(1, 100)


class ProbingReader(MemoryReader):
    """Knows its size only once its first reply began (as an S3 object opened without a
    HEAD); the body of its first range holds back (boundedly) until a second is asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data, chunk=16 * KiB)
        self.replied = False
        self.first_done = False
        self.second_asked = threading.Event()
        self.second_before_first_done: bool | None = None

    @property
    def known_size(self) -> int | None:
        return len(self.data) if self.replied else None

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        number = len(self.calls)
        if number == 1:
            self.second_before_first_done = not self.first_done
            self.second_asked.set()
        self.replied = True
        for index, piece in enumerate(super().iter_range(start, min(end, len(self.data)))):
            if number == 0 and index == 1:
                self.second_asked.wait(5)
            yield piece
        if number == 0:
            self.first_done = True


def test_an_eager_stream_reads_ahead_once_its_first_reply_says_the_size() -> None:
    # A file opened ahead (full first block) whose size only the first reply says: its next
    # GETs go out while that reply's body still comes, not a whole block's transfer later.
    # A stream with a small first block keeps it alone, for its first record.
    data = random.Random(8).randbytes(4 * 64 * KiB)
    for first_block, overlapped in ((64 * KiB, True), (16 * KiB, False)):
        reader = ProbingReader(data)
        scheduler = TransferScheduler(max_requests=16, initial_window=16)
        options = {"read_ahead": 16, "first_block": first_block, "block_size": 64 * KiB}
        with adaptive(reader, scheduler, **options) as stream:
            got = stream.read(len(data))
            assert got + stream.readall() == data
        assert reader.second_before_first_done is overlapped
