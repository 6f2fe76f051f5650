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
from typing import Any

from ._common import PEERS_VENV, TF_VENV, Results, Settings, Target, add_peer, own_versions, parse_settings
from ._data import FEATURE_SPEC, RecordFile, example_file
from ._ours import Missing, piece
from ._servers import REGION, S3rver, environment, s3rver
from .peers._common import Measurement, measure

BUCKET = "bench"
KEY = "single/examples.tfrecord"
URL = f"s3://{BUCKET}/{KEY}"
CHUNK = 1 << 20
BATCH = 256


def _boto3_stream(server: S3rver, size: int) -> Callable[[], tuple[int, int]]:
    client = server.client()

    def run() -> tuple[int, int]:
        body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"]
        total = 0
        while chunk := body.read(CHUNK):
            total += len(chunk)
        _check(total, size, "boto3")
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
    counters = getattr(stream, "counters", None)
    if counters is None:
        return {}
    if dataclasses.is_dataclass(counters) and not isinstance(counters, type):
        return dataclasses.asdict(counters)
    return dict(vars(counters))


def _ours_stream(size: int, last: dict[str, Any]) -> Callable[[], tuple[int, int]]:
    (open_s3,) = piece("tfrecord_s3.storage.s3_files", "open_s3")
    (config_class,) = piece("tfrecord_s3.config", "S3Config")

    def run() -> tuple[int, int]:
        total = 0
        with open_s3(URL, "rb", config=config_class.from_env()) as stream:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
            last.update(_counters(stream))
        _check(total, size, "ours")
        return 0, total

    return run


def _ours_records(file: RecordFile) -> Callable[[], tuple[int, int]]:
    (tf_record_iterator,) = piece("tfrecord_s3", "tf_record_iterator")
    piece("tfrecord_s3.storage.s3_files", "open_s3")

    def run() -> tuple[int, int]:
        records = 0
        for _ in tf_record_iterator(URL):
            records += 1
        _check(records, file.records, "ours records")
        return records, file.bytes

    return run


def _first_record(make: Callable[[], Callable[[], tuple[int, int]]], m: Measurement) -> None:
    """Time to the first record, from a fresh iterator."""
    (tf_record_iterator,) = piece("tfrecord_s3", "tf_record_iterator")
    start = time.perf_counter()
    iterator = tf_record_iterator(URL)
    next(iterator)
    m.first_record_seconds.append(time.perf_counter() - start)
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def run(settings: Settings) -> Results:
    results = Results("s3", settings)
    results.versions.update(own_versions())
    repeats = settings.repeats
    file = example_file(24 if settings.quick else 200)
    with s3rver() as server:
        results.versions["s3rver"] = "3.7.1"
        server.upload(BUCKET, {KEY: file.path})
        print(f"  [s3] {URL}: {file.bytes / 1e6:.0f} MB, {file.records} records on {server.endpoint}", flush=True)
        _boto3_stream(server, file.bytes)()  # warm-up: server page cache, client set-up
        results.add(
            "ceiling",
            measure(
                "boto3 get_object streaming (1 MiB reads)",
                "s3 single object",
                _boto3_stream(server, file.bytes),
                repeats,
            ),
        )
        results.add(
            "ceiling", measure("raw HTTP GET (http.client)", "s3 single object", _http_get(server, file.bytes), repeats)
        )
        with environment(server.env_ours()):
            counters: dict[str, Any] = {}
            try:
                stream = measure(
                    "ours open_s3 read()", "s3 single object", _ours_stream(file.bytes, counters), repeats, warmup=True
                )
                stream.extra["counters"] = dict(counters)
                results.add("ours", stream)
            except Missing as exc:
                results.note(f"skipped ours open_s3 read(): {exc}")
            try:
                records = measure(
                    "ours tf_record_iterator (CRC)", "s3 single object", _ours_records(file), repeats, warmup=True
                )
                _first_record(lambda: _ours_records(file), records)
                results.add("ours", records)
            except Missing as exc:
                results.note(f"skipped ours tf_record_iterator over s3: {exc}")

        s3_args = {
            "bucket": BUCKET,
            "key": KEY,
            "bytes": file.bytes,
            "endpoint": server.endpoint,
            "region": REGION,
            "repeats": repeats,
            "chunk": 8 << 20,
        }
        add_peer(results, PEERS_VENV, "s3_clients", s3_args, env=server.credentials_env())
        add_peer(
            results,
            PEERS_VENV,
            "pypi_tfrecord",
            {
                "local": None,
                "s3": {"url": URL, "bytes": file.bytes, "endpoint": server.endpoint},
                "spec": FEATURE_SPEC,
                "repeats": repeats,
                "decode_records": 0,
            },
            env=server.credentials_env(),
        )
        add_peer(
            results,
            TF_VENV,
            "tf_s3",
            {
                "single": {"url": URL, "bytes": file.bytes},
                "shards": None,
                "parallel": 4,
                "spec": FEATURE_SPEC,
                "batch": BATCH,
                "repeats": repeats,
                "parse": True,
            },
            env=server.env_tfio(),
        )

    ceiling = results.find("boto3 get_object streaming (1 MiB reads)")
    ours = results.find("ours tf_record_iterator (CRC)")
    results.target(
        Target(
            "s3 records with CRC vs streaming GET",
            ours.mb_per_s if ours else None,
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


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
