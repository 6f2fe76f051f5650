"""No crash and no hang at exit: streams and dataset iterators the user never closed are
closed (requests cancelled, sockets shut, threads joined) before the interpreter tears
down; the CLI over TLS exits 0 run after run, and 141 without a traceback when its stdout
is closed early."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests import golden
from tests.cli.conftest import REPO, run_cli
from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.servers.tls import Certificates, TlsFront
from tfrecord_s3.storage import exit_safety

#: CLI runs per stress test (each is a fresh interpreter); more under ``-m slow``.
RUNS = 8
SLOW_RUNS = 20


def child_env(s3_env: S3Env, endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "S3_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": s3_env.key_id,
        "AWS_SECRET_ACCESS_KEY": s3_env.secret,
        "AWS_REGION": "us-east-1",
        **extra,
    }


@pytest.fixture
def shards(s3_env: S3Env) -> str:
    data = golden.path_of("examples_none.tfrecord").read_bytes()
    for i in range(4):
        s3_env.put(f"exit/part-{i}.tfrecord", data)
    return s3_env.url("exit/part-*.tfrecord")


def bench_over_tls(s3_env: S3Env, shards: str, front: TlsFront, certs: Certificates, runs: int) -> None:
    env = child_env(s3_env, front.host_port, S3_USE_HTTPS="1", S3_CA_FILE=str(certs.ca_file))
    codes = []
    for _ in range(runs):
        result = run_cli("bench", "--parallel", "2", "--decode", shards, env=env)
        assert "Traceback" not in result.err, result.err
        codes.append(result.code)
    assert codes == [0] * runs
    # The output closed before bench writes its figures: the conventional 141, quietly.
    full = {k: v for k, v in os.environ.items() if not k.startswith("S3_")}
    full.update(env, PYTHONPATH=str(REPO))
    for _ in range(max(2, runs // 2)):
        child = subprocess.Popen(
            [sys.executable, "-m", "tfrecord_s3", "bench", "--parallel", "2", "--decode", shards],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full,
            cwd=REPO,
        )
        assert child.stdout is not None
        child.stdout.close()
        _, err = child.communicate(timeout=120)
        assert child.returncode == 141, err
        assert err == b"", err


@pytest.mark.servers("moto", reason="the stress runs on the quickest server in the default run")
def test_bench_over_tls_exits_cleanly_every_time(
    s3_env: S3Env, shards: str, tls_front: TlsFront, tls_certificates: Certificates
) -> None:
    bench_over_tls(s3_env, shards, tls_front, tls_certificates, RUNS)


@pytest.mark.slow
def test_bench_over_tls_exits_cleanly_many_times(
    s3_env: S3Env, shards: str, tls_front: TlsFront, tls_certificates: Certificates
) -> None:
    bench_over_tls(s3_env, shards, tls_front, tls_certificates, SLOW_RUNS)


_ABANDON = """
import atexit, sys, threading, tfrecord_s3 as tfr

def report():  # atexit handlers run after the interpreter's shutdown began
    alive = [t.name for t in threading.enumerate() if t.name.startswith("tfrecord-s3") and t.is_alive()]
    print(f"left {len(alive)} threads", flush=True)

atexit.register(report)
kind = sys.argv[2]
if kind == "dataset":
    it = iter(tfr.TFRecordDataset(sys.argv[1], num_parallel_reads=2))
else:
    it = tfr.open(sys.argv[1], "rb", config=tfr.S3Config.from_env(block_size=4096, read_ahead=3))
first = next(it) if kind == "dataset" else it.read(100)
assert first
print("read", flush=True)
# No close: the interpreter must stop the read-ahead GETs stalled behind the proxy itself.
"""


@pytest.mark.parametrize("kind", ["dataset", "stream"])
def test_an_abandoned_reader_with_stalled_gets_does_not_hold_up_exit(
    s3_env: S3Env, shards: str, s3_proxy: FaultProxy, kind: str
) -> None:
    url = s3_env.url("exit/part-0.tfrecord")
    target = shards if kind == "dataset" else url
    # What the first record needs answers; every other GET stalls mid-body far past the
    # test: for the stream, every block after the first (the read-ahead); for the dataset,
    # every GET of the files after the first. (A GET still
    # waiting for its headers at exit is only joined once its read timeout ends it.)
    stall = Fault.stall(300, after=100)
    if kind == "stream":
        s3_proxy.add_rule(stall, method="GET", window=(4096, 1 << 40), times=None)
    else:
        # The first record comes from part-0; files opened ahead may ask in any order.
        s3_proxy.add_rule(stall, method="GET", key_regex=r"exit/part-[1-3]", times=None)
    env = child_env(s3_env, f"127.0.0.1:{s3_proxy.port}", S3_USE_HTTPS="0", S3_REQUEST_TIMEOUT_MSEC="120000")
    began = time.monotonic()
    full = {k: v for k, v in os.environ.items() if not k.startswith("S3_")}
    full.update(env, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_ABANDON), target, kind],
        capture_output=True,
        text=True,
        env=full,
        timeout=100,
        check=False,
    )
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert done.stdout == "read\nleft 0 threads\n"  # every reader thread joined before teardown
    assert "Traceback" not in done.stderr
    assert took < 60  # the stall is 300 s and the read timeout 120 s: exit did not wait them out


def test_closed_streams_are_no_longer_tracked(s3_env: S3Env) -> None:
    import tfrecord_s3 as tfr

    url = s3_env.put("exit/small.bin", b"x" * 10_000)
    before = exit_safety.open_count()
    f = tfr.open(url, "rb")
    assert exit_safety.open_count() == before + 1
    f.close()
    assert exit_safety.open_count() == before
