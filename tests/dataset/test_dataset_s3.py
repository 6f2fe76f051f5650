"""TFRecordDataset over real local S3 servers (moto, Swift, Ceph RGW on 127.0.0.1), configured
by env vars."""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter

import pytest

import tfrecord_s3 as tfr
from tests import golden
from tests.conftest import S3Env
from tests.s3.resources import open_socket_count, settles
from tests.servers.pool import parametrize_servers
from tfrecord_s3.config import S3Config
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client
from tfrecord_s3.storage.scheduler import process_scheduler


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_servers(metafunc)


@pytest.fixture
def shards(s3_env: S3Env) -> tuple[list[str], list[bytes]]:
    paths, everything = [], []
    for f in range(6):
        recs = [f"f{f}r{i}".encode() * (1 + i % 7) for i in range(150 + 13 * f)]
        paths.append(s3_env.put(f"data/part-{f:02d}.tfrecord", b"".join(encode_frame(r) for r in recs)))
        everything.extend(recs)
    return paths, everything


@pytest.mark.parametrize("parallel", [None, 2, 4, 8])
@pytest.mark.parametrize("deterministic", [True, False])
def test_every_record_once_from_s3(
    s3_env: S3Env, shards: tuple[list[str], list[bytes]], parallel: int | None, deterministic: bool
) -> None:
    paths, everything = shards
    ds = TFRecordDataset(s3_env.url("data/part-*.tfrecord"), num_parallel_reads=parallel, deterministic=deterministic)
    assert ds.files == paths
    got = list(ds)
    assert Counter(got) == Counter(everything)
    assert len(got) == len(everything)
    if deterministic:
        assert got == list(TFRecordDataset(paths, num_parallel_reads=parallel))
    stats = ds.stats
    assert stats.records == len(everything)
    assert stats.requests >= len(paths)  # at least one GET per non-empty object


def test_golden_files_through_the_dataset(s3_env: S3Env) -> None:
    for name in golden.golden_files():
        info = golden.expected()["files"][name]
        url = s3_env.put(f"golden/{name}", golden.path_of(name).read_bytes())
        got = list(TFRecordDataset(url, compression_type="auto"))
        assert [len(r) for r in got] == info["record_lengths"], name


def test_state_dict_resumes_from_s3(s3_env: S3Env, shards: tuple[list[str], list[bytes]]) -> None:
    paths, _ = shards
    full = list(TFRecordDataset(paths, num_parallel_reads=3))
    ds = TFRecordDataset(paths, num_parallel_reads=3)
    it = iter(ds)
    head = [next(it) for _ in range(400)]
    state = ds.state_dict()
    it.close()  # type: ignore[attr-defined]
    resumed = TFRecordDataset(paths, num_parallel_reads=3)
    resumed.load_state_dict(state)
    assert head + list(resumed) == full


@pytest.mark.parametrize("parallel", [None, 4])
def test_breaking_after_10_records_leaves_no_thread_or_socket(
    s3_env: S3Env, shards: tuple[list[str], list[bytes]], parallel: int | None
) -> None:
    paths, _ = shards
    list(TFRecordDataset(paths[:1]))  # warm the client pool so its sockets are the baseline
    s3_client.clear_client_cache()
    threads, socks = set(threading.enumerate()), open_socket_count()
    for i, _ in enumerate(TFRecordDataset(paths, num_parallel_reads=parallel)):
        if i == 9:
            break
    assert settles(lambda: len(set(threading.enumerate()) - threads), 0, timeout=2.0) == 0
    # Idle keep-alive connections (servers other than moto keep them) close with their pools;
    # a connection still held by an unclosed body would not.
    s3_client.clear_client_cache()

    def open_sockets_after_collection() -> int:
        # A GET broken by close() is released with its response object; what stays open
        # after a collection is still referenced somewhere: a leak.
        gc.collect()
        return open_socket_count()

    assert settles(open_sockets_after_collection, socks, timeout=10.0) <= socks


def test_a_damaged_object_names_its_url_and_offset(s3_env: S3Env, shards: tuple[list[str], list[bytes]]) -> None:
    bad = s3_env.put("bad/corrupt.tfrecord", golden.corrupted_bytes("corrupt_length_bitflip.tfrecord"))
    base = list(tfr.tf_record_iterator(str(golden.path_of("raw_records.tfrecord"))))
    got: list[bytes] = []
    with pytest.raises(tfr.CorruptRecordError) as caught:
        for r in TFRecordDataset([bad]):
            got.append(r)
    assert got == base[:8]
    assert caught.value.path == bad
    assert caught.value.offset == 4253
    assert f"{bad} at byte 4253" in str(caught.value)


def test_a_missing_object_is_object_not_found(s3_env: S3Env, shards: tuple[list[str], list[bytes]]) -> None:
    paths, _ = shards
    missing = s3_env.url("data/nope.tfrecord")
    with pytest.raises(tfr.ObjectNotFoundError, match=r"nope\.tfrecord"):
        list(TFRecordDataset([paths[0], missing]))


def test_s3_blocks_shrink_to_fit_the_byte_budget(s3_env: S3Env) -> None:
    # A fixed window: 2 files of ~3 MiB read 2 at a time within 8 MiB: each file's share
    # (4 MiB) holds (read_ahead + 2) blocks only if they are 1 MiB, so each object costs 3 GETs.
    blob = b"".join(encode_frame(bytes([i % 256]) * 1000) for i in range(3 * 1024))
    assert 2 << 20 < len(blob) <= 3 << 20
    urls = [s3_env.put(f"big/{i}.tfrecord", blob) for i in range(2)]
    fixed = S3Config.from_env(read_ahead=2)
    tight = TFRecordDataset(urls, num_parallel_reads=2, max_bytes_in_flight=8 << 20, config=fixed)
    assert sum(1 for _ in tight) == 2 * 3 * 1024
    assert tight.stats.requests == 2 * 3
    roomy = TFRecordDataset(urls, num_parallel_reads=2, config=fixed)
    assert sum(1 for _ in roomy) == 2 * 3 * 1024
    assert roomy.stats.requests == 2  # one 16 MiB block covers each object


def test_adaptive_streams_stay_within_their_share_of_the_budget(s3_env: S3Env) -> None:
    # Defaults (the process's scheduler): within 8 MiB, the streams' share is 6 MiB in blocks
    # of 2 MiB; read-ahead never passes it, and only the block a consumer waits for may go
    # over it (one per stream: holding it back could deadlock the interleave).
    blob = b"".join(encode_frame(bytes([i % 256]) * 1000) for i in range(5 * 1024))
    urls = [s3_env.put(f"big/{i}.tfrecord", blob) for i in range(2)]
    scheduler = process_scheduler(S3Config().max_pool_connections)
    scheduler.reset_peaks()
    tight = TFRecordDataset(urls, num_parallel_reads=2, max_bytes_in_flight=8 << 20)
    assert sum(1 for _ in tight) == 2 * 5 * 1024
    assert 0 < scheduler.peak_held <= (6 << 20) + 2 * (2 << 20)
    assert (scheduler.held, scheduler.in_flight) == (0, 0)
    # Roomy: a ~3 MiB object is two GETs (the first block, whose reply says the size, then
    # the rest in one: within 4 first blocks), not a ramp of small ones.
    three = blob[: 3000 * (1000 + 16)]
    assert 2 << 20 < len(three) <= 3 << 20
    small = [s3_env.put(f"small/{i}.tfrecord", three) for i in range(2)]
    roomy = TFRecordDataset(small, num_parallel_reads=2)
    assert sum(1 for _ in roomy) == 2 * 3000
    assert roomy.stats.requests == 4  # and no HEAD


def test_files_opened_after_the_first_get_whole_blocks_from_their_start(s3_env: S3Env) -> None:
    # The first file's GETs start small (its first record is the dataset's); a file opened
    # ahead of its turn waits for nobody, so it costs whole blocks only: ceil(size / block).
    blob = b"".join(encode_frame(bytes([i % 256]) * 1000) for i in range(5 * 1024))
    urls = [s3_env.put(f"ahead/{i}.tfrecord", blob) for i in range(2)]
    config = S3Config.from_env(block_size=1 << 20, first_block_size=256 << 10)
    whole_blocks = -(-len(blob) // (1 << 20))
    alone = TFRecordDataset(urls[:1], config=config)
    assert sum(1 for _ in alone) == 5 * 1024
    assert alone.stats.requests > whole_blocks  # 256 KiB, 512 KiB, 1 MiB...
    both = TFRecordDataset(urls, config=config)
    assert sum(1 for _ in both) == 2 * 5 * 1024
    assert both.stats.requests == alone.stats.requests + whole_blocks


def _keys_fetched(s3_env: S3Env) -> tuple[set[str], object]:
    """The keys of the ranged GETs the clients built from now on send (and the hook's remover)."""
    keys: set[str] = set()

    def seen(request: object = None, **kwargs: object) -> None:
        url = str(getattr(request, "url", ""))
        if getattr(request, "method", "") == "GET" and "ahead-" in url:
            keys.add(url.rsplit("/", 1)[-1].split("?")[0])

    def hook(client: object, config: object, role: object) -> None:
        client.meta.events.register("before-send.s3", seen)  # type: ignore[attr-defined]

    s3_client.clear_client_cache()
    return keys, s3_client.add_client_hook(hook)


@pytest.mark.parametrize(("budget", "most"), [(4 << 20, 10), (512 << 10, 7)])
def test_more_files_open_ahead_while_the_network_has_room(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch, budget: int, most: int
) -> None:
    # Sizes unknown (explicit URLs): 4 files ahead to begin with. While the first file is
    # read, each chunk taken opens one more if the scheduler has an idle slot and budget,
    # up to one file per block of the streams' budget (4 MiB: all 9 others; 512 KiB: 6).
    from tfrecord_s3.storage import scheduler as scheduler_module
    from tfrecord_s3.storage.process_local import ProcessLocal

    roomy = ProcessLocal(lambda: scheduler_module.TransferScheduler(max_requests=64, initial_window=64))
    roomy.get()  # made now: the streams find it, whatever cap they ask for
    monkeypatch.setattr(scheduler_module, "_scheduler", roomy)
    first = [bytes([i % 251]) * 1000 for i in range(2000)]
    urls = [s3_env.put("ahead-00.tfrecord", b"".join(encode_frame(r) for r in first))]
    urls += [s3_env.put(f"ahead-{i:02d}.tfrecord", encode_frame(b"x" * 100) * 50) for i in range(1, 10)]
    keys, remove = _keys_fetched(s3_env)
    try:
        config = S3Config.from_env(block_size=64 << 10, first_block_size=16 << 10, max_pool_connections=2)
        iterator = iter(TFRecordDataset(urls, config=config, max_bytes_in_flight=budget))
        assert [next(iterator) for _ in first] == first
        deadline = time.monotonic() + 10
        while len(keys) < most and time.monotonic() < deadline:
            time.sleep(0.02)
        opened = len(keys)
        assert sum(1 for _ in iterator) == 9 * 50
    finally:
        remove()  # type: ignore[operator]
        s3_client.clear_client_cache()
    if most == 10:
        assert opened == 10
    else:
        assert 5 <= opened <= most
