"""S3 layer: one large object on a local s3rver. Ours (ranged-GET stream; records with CRCs)
against a plain streaming ``get_object`` of the same object in the same run (the ceiling), a
raw HTTP GET, s3fs, s3torchconnector, PyPI ``tfrecord`` over s3fs and TensorFlow + tensorflow-io.

    python -m benchmarks.bench_s3 [--quick] [--repeats N]
"""

from __future__ import annotations

import dataclasses
import http.client
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._common import (
    PEERS_VENV,
    TF_VENV,
    Results,
    Settings,
    Target,
    alternate,
    collect_peer,
    own_versions,
    parse_settings,
)
from ._data import FEATURE_SPEC, RecordFile, example_file
from ._ours import Instruments, Missing, piece
from ._servers import REGION, S3rver, environment, network, s3rver
from .peers._common import Measurement, Plan, measure_interleaved

BUCKET = "bench"
KEY = "single/examples.tfrecord"
URL = f"s3://{BUCKET}/{KEY}"
CHUNK = 1 << 20
BATCH = 256
SCENARIO = "s3 single object"
RANGE_BLOCK = 8 << 20  # AWS's advice for ranged GETs: 8-16 MiB
#: The ceiling on a shaped network: what 16 connections of ranged GETs give (bytes only).
CEILING_THREADS = 16
CEILING = f"boto3 {CEILING_THREADS} x {RANGE_BLOCK >> 20} MiB ranged GETs (bytes only)"
S3TORCH = "s3torchconnector S3Reader.read(8 MiB)"
# A second configuration of ours, to show whether bigger blocks or deeper read-ahead would pay.
TUNED_BLOCK = 16 << 20
TUNED_AHEAD = 4
#: Our rows over the AWS Common Runtime (S3_TRANSPORT=crt) beside the default urllib3 ones.
CRT_STREAM = "ours (crt) read()"
CRT_RECORDS = "ours (crt) tf_record_iterator (CRC)"


def _boto3_stream(client: Any, size: int) -> Callable[[], tuple[int, int]]:
    def run() -> tuple[int, int]:
        body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"]
        total = 0
        while chunk := body.read(CHUNK):
            total += len(chunk)
        _check(total, size, "boto3")
        return 0, total

    return run


def _boto3_ranges(client: Any, size: int, threads: int) -> Callable[[], tuple[int, int]]:
    """The object as RANGE_BLOCK-sized ranged GETs, ``threads`` at a time, bodies read whole:
    what a block stream costs at best on this server (s3rver serves ranges slower than one GET)."""
    ranges = [(start, min(start + RANGE_BLOCK, size) - 1) for start in range(0, size, RANGE_BLOCK)]

    def fetch(span: tuple[int, int]) -> int:
        body = client.get_object(Bucket=BUCKET, Key=KEY, Range=f"bytes={span[0]}-{span[1]}")["Body"]
        return len(body.read())

    def run() -> tuple[int, int]:
        with ThreadPoolExecutor(threads) as pool:
            total = sum(pool.map(fetch, ranges))
        _check(total, size, "ranged GETs")
        return 0, total

    return run


def _http_get(server: S3rver, size: int) -> Callable[[], tuple[int, int]]:
    """One GET over http.client with a presigned URL: no SDK work per byte at all."""
    url = urllib.parse.urlsplit(
        server.client().generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600)
    )

    def run() -> tuple[int, int]:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            connection.request("GET", f"{url.path}?{url.query}")
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"raw GET answered {response.status}")
            total = 0
            while chunk := response.read(CHUNK):
                total += len(chunk)
        finally:
            connection.close()
        _check(total, size, "raw GET")
        return 0, total

    return run


def _check(got: int, want: int, who: str) -> None:
    if got != want:
        raise RuntimeError(f"{who} read {got} bytes, expected {want}")


def _counters(stream: Any) -> dict[str, Any]:
    """The stream's request counters (on the BlockStream under the buffered reader, if any)."""
    counters = getattr(stream, "counters", None) or getattr(getattr(stream, "raw", None), "counters", None)
    if callable(counters):
        counters = counters()
    if counters is None:
        return {}
    if dataclasses.is_dataclass(counters) and not isinstance(counters, type):
        return dataclasses.asdict(counters)
    return dict(vars(counters))


def _config(**overrides: Any) -> Any:
    """Our S3Config from the environment, with ``overrides``; Missing when the transport asked
    for is not there (no ``transport`` field yet, or awscrt not installed)."""
    (config_class,) = piece("tfrecord_s3.config", "S3Config")
    try:
        config = config_class.from_env(**overrides)
    except Exception as exc:
        raise Missing(f"S3Config({overrides}): {exc}") from exc
    if overrides.get("transport") == "crt":
        (load_awscrt,) = piece("tfrecord_s3.storage.crt_client", "load_awscrt")
        try:
            load_awscrt()
        except Exception as exc:
            raise Missing(str(exc)) from exc
    return config


def _ours_stream(size: int, last: dict[str, Any], **overrides: Any) -> Callable[[], tuple[int, int]]:
    (open_s3,) = piece("tfrecord_s3.storage.s3_files", "open_s3")
    _config(**overrides)

    def run() -> tuple[int, int]:
        total = 0
        with open_s3(URL, "rb", config=_config(**overrides)) as stream:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
            last.update(_counters(stream))
        _check(total, size, "ours")
        return 0, total

    return run


def _records_of(**overrides: Any) -> Callable[[], Any]:
    """A fresh iterator of the object's records (CRCs checked): the public
    ``tf_record_iterator`` with the environment's settings, or ``open_records`` with the
    environment's settings and ``overrides``."""
    open_records, tf_record_iterator = piece("tfrecord_s3", "open_records", "tf_record_iterator")
    piece("tfrecord_s3.storage.s3_files", "open_s3")
    _config(**overrides)
    if overrides:
        return lambda: open_records(URL, config=_config(**overrides))
    return lambda: tf_record_iterator(URL)


def _ours_records(file: RecordFile, *, tuned: bool = False, **overrides: Any) -> Callable[[], tuple[int, int]]:
    """Records of the object, CRCs checked (see :func:`_records_of`); ``tuned``: bigger
    blocks and a fixed read-ahead."""
    if tuned:
        overrides.update(block_size=TUNED_BLOCK, read_ahead=TUNED_AHEAD)
    records_of = _records_of(**overrides)

    def run() -> tuple[int, int]:
        records = 0
        for _ in records_of():
            records += 1
        _check(records, file.records, "ours records")
        return records, file.bytes

    return run


def _first_record(m: Measurement, samples: int = 3, **overrides: Any) -> None:
    """Time to the first record, from fresh iterators (clients already made, as for a peer)."""
    records_of = _records_of(**overrides)
    for _ in range(samples):
        start = time.perf_counter()
        iterator = records_of()
        next(iterator)
        m.first_record_seconds.append(time.perf_counter() - start)
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def run(settings: Settings) -> Results:
    results = Results(settings.bench_name("s3"), settings)
    results.versions.update(own_versions())
    file = example_file(24 if settings.quick else 200)
    with s3rver() as server, network(server, settings.network):
        results.versions["s3rver"] = "3.7.1"
        results.versions["network"] = server.network.describe()
        server.upload(BUCKET, {KEY: file.path})
        print(f"  [s3] {URL}: {file.bytes / 1e6:.0f} MB, {file.records} records on {server.endpoint}", flush=True)
        print(f"  [s3] network: {server.network.describe()}", flush=True)
        _boto3_stream(server.client(), file.bytes)()  # warm-up: server page cache, client set-up
        plans: list[Plan] = [
            ("boto3 get_object streaming (1 MiB reads)", SCENARIO, _boto3_stream(server.client(), file.bytes)),
            ("raw HTTP GET (http.client)", SCENARIO, _http_get(server, file.bytes)),
            (
                f"boto3 {RANGE_BLOCK >> 20} MiB ranged GETs, 1 thread",
                SCENARIO,
                _boto3_ranges(server.client(), file.bytes, 1),
            ),
            (CEILING, SCENARIO, _boto3_ranges(server.client(), file.bytes, CEILING_THREADS)),
        ]
        if not server.network.shaped:
            plans.append(
                (
                    f"boto3 {RANGE_BLOCK >> 20} MiB ranged GETs, 3 threads",
                    SCENARIO,
                    _boto3_ranges(server.client(), file.bytes, 3),
                )
            )
        counters: dict[str, Any] = {}
        crt_counters: dict[str, Any] = {}
        with environment(server.env_ours()):
            wanted: list[tuple[str, Callable[[], Callable[[], tuple[int, int]]]]] = [
                ("ours open_s3 read()", lambda: _ours_stream(file.bytes, counters)),
                ("ours tf_record_iterator (CRC)", lambda: _ours_records(file)),
                (
                    f"ours open_records (CRC), {TUNED_BLOCK >> 20} MiB blocks, read-ahead {TUNED_AHEAD}",
                    lambda: _ours_records(file, tuned=True),
                ),
                (CRT_STREAM, lambda: _ours_stream(file.bytes, crt_counters, transport="crt")),
                (CRT_RECORDS, lambda: _ours_records(file, transport="crt")),
            ]
            for name, make in wanted:
                try:
                    reader = make()
                    reader()  # warm-up (and a check that it works at all)
                except Missing as exc:
                    results.note(f"skipped {name}: {exc}")
                    continue
                except Exception as exc:  # a layer in progress must not sink the whole benchmark
                    results.note(f"skipped {name}: failed with {type(exc).__name__}: {exc}")
                    continue
                plans.append((name, SCENARIO, reader))
            # Within a round, the ceiling and ours run in turn: they see the same server and machine.
            instruments = Instruments(server)
            plans = instruments.wrap_plans(plans)

            def ours(repeats: int) -> list[tuple[str, Measurement]]:
                found: list[tuple[str, Measurement]] = []
                for measurement in measure_interleaved(plans, repeats):
                    instruments.annotate(measurement)
                    if measurement.reader == "ours open_s3 read()":
                        measurement.extra["counters"] = dict(counters)
                    if measurement.reader == CRT_STREAM:
                        measurement.extra["counters"] = dict(crt_counters)
                    if measurement.reader == "ours tf_record_iterator (CRC)":
                        _first_record(measurement)
                    if measurement.reader == CRT_RECORDS:
                        _first_record(measurement, transport="crt")
                    found.append(("ours" if measurement.reader.startswith("ours") else "ceiling", measurement))
                return found

            pid = server.process.pid
            s3_args = {
                "bucket": BUCKET,
                "key": KEY,
                "bytes": file.bytes,
                "endpoint": server.endpoint,
                "region": REGION,
                "chunk": 8 << 20,
                "server_pid": pid,
                "stats_url": server.stats_url,
            }
            pypi_args = {
                "local": None,
                "s3": {"url": URL, "bytes": file.bytes, "endpoint": server.endpoint, "server_pid": pid},
                "spec": FEATURE_SPEC,
                "decode_records": 0,
                "stats_url": server.stats_url,
            }
            tf_args = {
                "single": {"url": URL, "bytes": file.bytes},
                "shards": None,
                "parallel": 4,
                "spec": FEATURE_SPEC,
                "batch": BATCH,
                "parse": not server.network.shaped,
                "server_pid": pid,
                "stats_url": server.stats_url,
            }
            credentials = server.credentials_env()
            alternate(
                results,
                [
                    ours,
                    lambda n: collect_peer(results, PEERS_VENV, "s3_clients", {**s3_args, "repeats": n}, credentials),
                    lambda n: collect_peer(
                        results, PEERS_VENV, "pypi_tfrecord", {**pypi_args, "repeats": n}, credentials
                    ),
                    lambda n: collect_peer(results, TF_VENV, "tf_s3", {**tf_args, "repeats": n}, server.env_tfio()),
                ],
            )

    ceiling = results.find("boto3 get_object streaming (1 MiB reads)")
    ours_records = results.find("ours tf_record_iterator (CRC)")
    if settings.network != "loopback":
        _shaped_targets(results, ours_records)
        results.write()
        return results
    results.target(
        Target(
            "s3 records with CRC vs streaming GET",
            ours_records.mb_per_s if ours_records else None,
            ceiling.mb_per_s if ceiling else None,
            "MB/s",
            0.9,
            baseline_name="boto3 streaming get_object",
        )
    )
    ours_stream = results.find("ours open_s3 read()")
    results.target(
        Target(
            "s3 stream read() vs streaming GET",
            ours_stream.mb_per_s if ours_stream else None,
            ceiling.mb_per_s if ceiling else None,
            "MB/s",
            0.9,
            baseline_name="boto3 streaming get_object",
        )
    )
    results.write()
    return results


def _shaped_targets(results: Results, ours_records: Any) -> None:
    """Issue 10's goals on a shaped network: records with CRC against the 16-connection ranged
    ceiling and s3torchconnector's sequential read; first record against its first byte."""
    ceiling = results.find(CEILING)
    s3torch = results.find(S3TORCH)
    ours = ours_records.mb_per_s if ours_records else None
    results.target(
        Target(
            "s3 records with CRC vs 16 x 8 MiB ranged GETs",
            ours,
            ceiling.mb_per_s if ceiling else None,
            "MB/s",
            0.9,
            baseline_name="boto3 16 x 8 MiB",
        )
    )
    results.target(
        Target(
            "s3 records with CRC vs s3torchconnector",
            ours,
            s3torch.mb_per_s if s3torch else None,
            "MB/s",
            1.5,
            baseline_name="s3torchconnector sequential read",
        )
    )
    first = ours_records.first_record_s if ours_records else None
    if first is not None and s3torch is not None and s3torch.first_record_s is not None:
        results.target(
            Target(
                "s3 first record vs s3torchconnector's first byte",
                first,
                None,
                "s",
                s3torch.first_record_s * 1.001,
                kind="max",
            )
        )


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
