"""A long run: 30 epochs over 8 shards with 1% of GETs faulted (resets, early closes, 500s,
503s, a cut head): every epoch identical, and no growth of memory, threads or sockets."""

from __future__ import annotations

import random
import threading

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault, default_storm_faults
from tests.s3.resources import open_socket_count, settles
from tfrecord_s3.config import S3Config
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client

EPOCHS = 30
KiB = 1024
MiB = 1024 * KiB


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")  # pragma: no cover - Linux only


@pytest.mark.slow
@pytest.mark.servers("moto", reason="the fault proxy's storm and moto keep it in one process")
def test_thirty_faulted_epochs_are_identical_and_leak_nothing(s3_env: S3Env, s3_proxy: FaultProxy) -> None:
    rng = random.Random(14)
    for f in range(8):
        recs = [rng.randbytes(rng.randrange(100, 3000)) for _ in range(150)]
        s3_env.put(f"soak/part-{f}.tfrecord", b"".join(encode_frame(r) for r in recs))
    pattern = s3_env.url("soak/part-*.tfrecord")
    config = S3Config.from_env(block_size=16 * KiB, backoff_base=0.001, throttle_backoff_base=0.002)
    expected = list(tfr.TFRecordDataset(pattern, num_parallel_reads=4, config=config))
    faults = [*default_storm_faults(8 * KiB), Fault.cut_head(12)]
    storm = s3_proxy.start_storm(seed=14, fraction=0.01, faults=faults, key="soak/part-")
    curve: list[tuple[int, int, int]] = []
    for _ in range(EPOCHS):
        assert list(tfr.TFRecordDataset(pattern, num_parallel_reads=4, config=config)) == expected
        curve.append((rss_bytes(), threading.active_count(), open_socket_count()))
    s3_proxy.stop_storm()
    print("epoch rss_MiB threads sockets")
    for epoch, (rss, threads, sockets) in enumerate(curve, 1):
        print(f"{epoch} {rss / MiB:.1f} {threads} {sockets}")
    assert storm.injected > 0
    # After a warm-up epoch (clients, pools, caches): flat.
    base_rss, base_threads, base_sockets = curve[1]
    assert max(r for r, _, _ in curve[1:]) - base_rss < 20 * MiB
    assert max(t for _, t, _ in curve[1:]) <= base_threads + 2
    s3_client.clear_client_cache()
    assert settles(open_socket_count, base_sockets) <= base_sockets
