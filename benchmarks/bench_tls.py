"""S3 over HTTPS: one large object on a local s3rver behind a TLS front (a CA made for the
run, given to us by ``S3_CA_FILE`` as a user would), ours against boto3's streaming
``get_object`` over the same front in the same run. With ``--network`` the shaping proxy
sits between the front and the server, and the 16-connection ranged ceiling runs over TLS too.

Ours runs twice: as shipped (the socket receiver drains every TLS record that has arrived into
the block buffer per wake-up) and with that off (one 16 KiB record per read, as http.client
reads them; what the TLS path did before), so the gain is measured in the same run.

    python -m benchmarks.bench_tls [--quick] [--repeats N] [--network PROFILE]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._common import REPO, WORK_DIR, Results, Settings, Target, alternate, own_versions, parse_settings
from ._data import example_file
from ._ours import Instruments, Missing, piece
from ._servers import REGION, S3rver, _stop, environment, network, s3rver
from .bench_s3 import (
    BUCKET,
    CEILING_THREADS,
    CHUNK,
    KEY,
    RANGE_BLOCK,
    URL,
    _boto3_ranges,
    _boto3_stream,
    _check,
    _counters,
)
from .peers._common import Measurement, Plan, measure_interleaved

SCENARIO = "s3 single object, TLS"
STREAM = "boto3 get_object streaming over TLS (1 MiB reads)"
CEILING = f"boto3 {CEILING_THREADS} x {RANGE_BLOCK >> 20} MiB ranged GETs over TLS (bytes only)"
READ = "ours open_s3 read() over TLS"
RECORDS = "ours tf_record_iterator (CRC) over TLS"
BEFORE = ", one TLS record per read (before)"


@contextmanager
def tls_front(upstream_port: int) -> Iterator[tuple[int, Path]]:
    """(port, CA file) of a TLS front (benchmarks/tls_front.py, its own process) relaying
    to ``upstream_port`` on 127.0.0.1; stopped by PID on exit."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="tls-front-", dir=WORK_DIR))
    command = [sys.executable, "-m", "benchmarks.tls_front", "--upstream", f"127.0.0.1:{upstream_port}"]
    process = subprocess.Popen([*command, "--dir", str(directory)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        if len(line) != 3 or line[0] != "listening":
            raise RuntimeError(f"TLS front did not start: {line!r}")
        yield int(line[1]), Path(line[2])
    finally:
        _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def _tls_client(server: S3rver, port: int, ca_file: Path, pool: int = 10) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 2},
        max_pool_connections=pool,
    )
    credentials = server.credentials_env()
    return boto3.client(
        "s3",
        endpoint_url=f"https://127.0.0.1:{port}",
        verify=str(ca_file),
        region_name=REGION,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


@contextmanager
def _draining(on: bool) -> Iterator[None]:
    (receiver,) = piece("tfrecord_s3.storage.socket_receiver", "SocketReceiver")
    saved = receiver.drain_tls
    receiver.drain_tls = on
    try:
        yield
    finally:
        receiver.drain_tls = saved


def _ours(size: int, records: int, *, drain: bool, crc: bool, last: dict[str, Any]) -> Callable[[], tuple[int, int]]:
    (open_s3,) = piece("tfrecord_s3.storage.s3_files", "open_s3")
    (tf_record_iterator,) = piece("tfrecord_s3", "tf_record_iterator")
    (config_class,) = piece("tfrecord_s3.config", "S3Config")

    def run() -> tuple[int, int]:
        with _draining(drain):
            if crc:
                count = sum(1 for _ in tf_record_iterator(URL))
                _check(count, records, "ours records over TLS")
                return count, size
            total = 0
            with open_s3(URL, "rb", config=config_class.from_env()) as stream:
                while chunk := stream.read(CHUNK):
                    total += len(chunk)
                last.update(_counters(stream))
            _check(total, size, "ours over TLS")
            return 0, total

    return run


def run(settings: Settings) -> Results:
    results = Results(settings.bench_name("tls"), settings)
    results.versions.update(own_versions())
    file = example_file(24 if settings.quick else 200)
    with s3rver() as server, network(server, settings.network), tls_front(server.port) as (port, ca_file):
        results.versions["s3rver"] = "3.7.1"
        results.versions["network"] = server.network.describe() + ", TLS front (Python ssl, own process)"
        server.upload(BUCKET, {KEY: file.path})
        print(f"  [tls] {URL}: {file.bytes / 1e6:.0f} MB over https://127.0.0.1:{port}", flush=True)
        client = _tls_client(server, port, ca_file, pool=CEILING_THREADS)
        _boto3_stream(client, file.bytes)()  # warm-up: page cache, handshake, client set-up
        plans: list[Plan] = [(STREAM, SCENARIO, _boto3_stream(client, file.bytes))]
        if server.network.shaped:
            plans.append((CEILING, SCENARIO, _boto3_ranges(client, file.bytes, CEILING_THREADS)))
        counters: dict[str, Any] = {}
        env = {
            **server.credentials_env(),
            "S3_ENDPOINT": f"127.0.0.1:{port}",
            "S3_USE_HTTPS": "1",
            "S3_CA_FILE": str(ca_file),
        }
        with environment(env):
            for name, crc in ((READ, False), (RECORDS, True)):
                for drain in (True, False):
                    label = name if drain else name + BEFORE
                    try:
                        reader = _ours(file.bytes, file.records, drain=drain, crc=crc, last=counters)
                        reader()  # warm-up, and a check that it works at all
                    except Missing as exc:
                        results.note(f"skipped {label}: {exc}")
                        continue
                    plans.append((label, SCENARIO, reader))
            instruments = Instruments(server)
            plans = instruments.wrap_plans(plans)

            def side(repeats: int) -> list[tuple[str, Measurement]]:
                found: list[tuple[str, Measurement]] = []
                for measurement in measure_interleaved(plans, repeats):
                    instruments.annotate(measurement)
                    ours = measurement.reader.startswith("ours")
                    if measurement.reader == READ:
                        measurement.extra["counters"] = dict(counters)
                    found.append(("ours" if ours else "ceiling", measurement))
                return found

            alternate(results, [side])
    _targets(results, shaped=settings.network != "loopback")
    results.write()
    return results


def _targets(results: Results, *, shaped: bool) -> None:
    """Issue 10 item 5: ours >= 0.9x boto3 streaming over the same TLS front (and, shaped,
    the ranged ceiling over TLS); plus what draining TLS records gained."""
    baseline_name = CEILING if shaped else STREAM
    baseline = results.find(baseline_name)
    for name, label in ((RECORDS, "records with CRC"), (READ, "stream read()")):
        ours, before = results.find(name), results.find(name + BEFORE)
        results.target(
            Target(
                f"tls {label} vs {'ranged ceiling' if shaped else 'streaming GET'} over TLS",
                ours.mb_per_s if ours else None,
                baseline.mb_per_s if baseline else None,
                "MB/s",
                0.9,
                baseline_name=baseline_name,
            )
        )
        if ours is not None and before is not None and ours.cpu_s_per_gb and before.cpu_s_per_gb:
            results.note(
                f"{label}: draining TLS records {before.cpu_s_per_gb:.2f} -> {ours.cpu_s_per_gb:.2f} CPU s/GB, "
                f"{before.mb_per_s:.0f} -> {ours.mb_per_s:.0f} MB/s"
            )


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
