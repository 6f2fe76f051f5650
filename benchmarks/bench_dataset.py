"""Dataset layer: eight shards on a local s3rver read through ``TFRecordDataset`` with
``num_parallel_reads`` 1, 2, 4, 8 (records/s, MB/s, peak memory), against TensorFlow +
tensorflow-io ``TFRecordDataset(..., num_parallel_reads=N).batch(256)`` (N = 1, 2, 4, 8) on the
same objects.

    python -m benchmarks.bench_dataset [--quick] [--repeats N]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import TF_VENV, Results, Settings, Target, alternate, collect_peer, own_versions, parse_settings
from ._data import FEATURE_SPEC, RecordFile, example_shards
from ._ours import Instruments, Missing, feature_spec, piece
from ._servers import S3rver, environment, network, s3rver
from .peers._common import Measurement, Plan, measure_interleaved

BUCKET = "bench"
SHARDS = 8
BATCH = 256
PARALLEL = (1, 2, 4, 8)
TF_PARALLEL = 4
#: TF + tensorflow-io batched at these num_parallel_reads too (for the chart of MB/s against it).
TF_MORE_PARALLEL = (1, 2, 8)
DEFAULTS = f"ours TFRecordDataset(files).batch({BATCH}), default arguments"
CRT_DEFAULTS = f"ours (crt) TFRecordDataset(files).batch({BATCH}), default arguments"
CEILING = "boto3 16 x 8 MiB ranged GETs over the shards (bytes only)"
_RANGE = 8 << 20


def _count(element: Any) -> int:
    """Records in one element: a record (bytes), a batch of records, or a parsed batch dict."""
    if isinstance(element, bytes | bytearray):
        return 1
    if isinstance(element, dict):
        return len(next(iter(element.values())))
    return len(element)


def _ceiling(server: S3rver, keys: list[str], sizes: list[int]) -> Callable[[], tuple[int, int]]:
    """Every shard as 8 MiB ranged GETs, 16 at a time, bodies read and dropped."""
    from concurrent.futures import ThreadPoolExecutor

    client = server.client()
    spans = [
        (key, start, min(start + _RANGE, size) - 1)
        for key, size in zip(keys, sizes, strict=True)
        for start in range(0, size, _RANGE)
    ]

    def fetch(span: tuple[str, int, int]) -> int:
        key, first, last = span
        return len(client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={first}-{last}")["Body"].read())

    def run() -> tuple[int, int]:
        with ThreadPoolExecutor(16) as pool:
            total = sum(pool.map(fetch, spans))
        if total != sum(sizes):
            raise RuntimeError(f"ceiling read {total} bytes, expected {sum(sizes)}")
        return 0, total

    return run


def _ours(urls: list[str], files: list[RecordFile], parallel: int | None, how: str) -> Callable[[], tuple[int, int]]:
    (dataset_class,) = piece("tfrecord_s3.dataset", "TFRecordDataset")
    features = feature_spec(FEATURE_SPEC) if how == "parse" else None
    expected = sum(f.records for f in files)
    total_bytes = sum(f.bytes for f in files)

    config = None
    if how == "fixed":  # the fixed read-ahead window of before the scheduler, for comparison
        (config_class,) = piece("tfrecord_s3.config", "S3Config")
        config = config_class.from_env(read_ahead=2)
    if how == "crt":  # the defaults with the AWS Common Runtime carrying the GETs
        (config_class,) = piece("tfrecord_s3.config", "S3Config")
        (load_awscrt,) = piece("tfrecord_s3.storage.crt_client", "load_awscrt")
        try:
            config = config_class.from_env(transport="crt")
            load_awscrt()
        except Exception as exc:
            raise Missing(f"the crt transport: {exc}") from exc

    def run() -> tuple[int, int]:
        dataset = dataset_class(urls, num_parallel_reads=parallel, config=config)
        if how in ("batch", "parse", "fixed", "crt"):
            dataset = dataset.batch(BATCH)
        if how == "parse":
            dataset = dataset.parse_examples(features)
        records = 0
        for element in dataset:
            records += _count(element)
        if records != expected:
            raise RuntimeError(f"ours read {records} records, expected {expected}")
        return records, total_bytes

    return run


def run(settings: Settings) -> Results:
    results = Results(settings.bench_name("dataset"), settings)
    results.versions.update(own_versions())
    files = example_shards(24 if settings.quick else 200, SHARDS)
    keys = {f"shards/part-{i:02d}.tfrecord": f.path for i, f in enumerate(files)}
    urls = [f"s3://{BUCKET}/{key}" for key in keys]
    total = sum(f.bytes for f in files)
    scenario = f"s3 {SHARDS} shards"
    shaped = settings.network != "loopback"
    with s3rver() as server, network(server, settings.network):
        server.upload(BUCKET, keys)
        results.versions["network"] = server.network.describe()
        print(f"  [dataset] {SHARDS} objects, {total / 1e6:.0f} MB on {server.endpoint}", flush=True)
        with environment(server.env_ours()):
            plans: list[tuple[str, int | None, str]] = [
                (DEFAULTS, None, "batch"),
                (CRT_DEFAULTS, None, "crt"),
                (
                    f"ours TFRecordDataset(num_parallel_reads={TF_PARALLEL}).batch({BATCH}), fixed read_ahead=2",
                    TF_PARALLEL,
                    "fixed",
                ),
            ]
            if shaped:
                plans += [
                    (f"ours TFRecordDataset(num_parallel_reads={n}).batch({BATCH})", n, "batch") for n in PARALLEL
                ]
            else:
                plans += [(f"ours TFRecordDataset(num_parallel_reads={n})", n, "records") for n in PARALLEL]
                plans += [
                    (f"ours TFRecordDataset(num_parallel_reads={TF_PARALLEL}).batch({BATCH})", TF_PARALLEL, "batch"),
                    (f"ours (num_parallel_reads={TF_PARALLEL}).batch({BATCH}).parse_examples()", TF_PARALLEL, "parse"),
                ]
            instruments = Instruments(server)
            runnable: list[Plan] = []
            if shaped:
                bytes_only = _ceiling(server, list(keys), [f.bytes for f in files])
                runnable.append((CEILING, scenario, instruments.wrap(CEILING, bytes_only)))
            parallel_of: dict[str, int | None] = {}
            how_of: dict[str, str] = {}
            for name, parallel, how in plans:
                try:
                    reader = _ours(urls, files, parallel, how)
                except Missing as exc:
                    results.note(f"skipped {name}: {exc}")
                    continue
                if not parallel_of:
                    reader()  # warm-up of our first reader: clients, credentials, connection pools
                runnable.append((name, scenario, instruments.wrap(name, reader)))
                parallel_of[name] = parallel
                how_of[name] = how
            cap = int(piece("tfrecord_s3.dataset", "DEFAULT_MAX_BYTES_IN_FLIGHT")[0]) if runnable else 0

            def ours(repeats: int) -> list[tuple[str, Measurement]]:
                # Within a round the settings run in turn: each sees the same server and machine.
                found: list[tuple[str, Measurement]] = []
                for m in measure_interleaved(runnable, repeats):
                    instruments.annotate(m)
                    if m.reader == CEILING:
                        found.append(("ceiling", m))
                        continue
                    m.extra["num_parallel_reads"] = parallel_of[m.reader]
                    m.extra["how"] = how_of[m.reader]  # the series of the report's parallel-reads chart
                    m.extra["max_bytes_in_flight"] = cap
                    if m.reader == DEFAULTS:
                        _first_record(urls, m)
                    found.append(("ours", m))
                return found

            tf_args = {
                "single": None,
                "shards": {"urls": urls, "bytes": total},
                "parallel": TF_PARALLEL,
                "more_parallel": list(TF_MORE_PARALLEL),
                "spec": FEATURE_SPEC,
                "batch": BATCH,
                "parse": not shaped,
                "server_pid": server.process.pid,
                "stats_url": server.stats_url,
            }
            alternate(
                results,
                [ours, lambda n: collect_peer(results, TF_VENV, "tf_s3", {**tf_args, "repeats": n}, server.env_tfio())],
            )

    tf_row = results.find(f"TF+tf-io TFRecordDataset(num_parallel_reads={TF_PARALLEL}).batch({BATCH})")
    defaults = results.find(DEFAULTS)
    if shaped:
        ceiling = results.find(CEILING)
        results.target(
            Target(
                f"dataset, {SHARDS} shards, default arguments, batch {BATCH} vs 16 x 8 MiB ranged GETs",
                defaults.mb_per_s if defaults else None,
                ceiling.mb_per_s if ceiling else None,
                "MB/s",
                0.9,
                baseline_name="boto3 16 x 8 MiB",
            )
        )
        results.target(
            Target(
                f"dataset, {SHARDS} shards, default arguments, batch {BATCH} vs TF+tf-io",
                defaults.records_per_s if defaults else None,
                tf_row.records_per_s if tf_row else None,
                "rec/s",
                4.0,
                baseline_name=f"TF+tf-io num_parallel_reads={TF_PARALLEL}",
            )
        )
    ours_batch = results.find(f"ours TFRecordDataset(num_parallel_reads={TF_PARALLEL}).batch({BATCH})")
    results.target(
        Target(
            f"dataset, {SHARDS} s3 shards, num_parallel_reads={TF_PARALLEL}, batch {BATCH}",
            ours_batch.records_per_s if ours_batch else None,
            tf_row.records_per_s if tf_row else None,
            "rec/s",
            1.0,
            baseline_name="TF+tf-io",
        )
    )
    # Memory per transport: the CRT keeps a part pool of its own besides our block buffers.
    for transport, rows in (
        ("urllib3 (default)", [r for r in results.rows if r.kind == "ours" and r.extra.get("how") != "crt"]),
        ("crt", [r for r in results.rows if r.kind == "ours" and r.extra.get("how") == "crt"]),
    ):
        rows = [r for r in rows if r.rss_delta_mb is not None]
        if not rows:
            continue
        worst = max(rows, key=lambda r: r.rss_delta_mb or 0.0)
        cap_mb = float(worst.extra.get("max_bytes_in_flight", 0)) / 1e6
        results.target(
            Target(
                f"dataset RSS above start, {transport} transport (cap {cap_mb:.0f} MB in flight + 100 MB)",
                worst.rss_delta_mb,
                None,
                "MB",
                round(cap_mb + 100.0, 1),
                kind="max",
            )
        )
    results.write()
    return results


def _first_record(urls: list[str], m: Measurement) -> None:
    """Seconds to the first batch of a fresh dataset with default arguments."""
    import time

    (dataset_class,) = piece("tfrecord_s3.dataset", "TFRecordDataset")
    start = time.perf_counter()
    iterator = iter(dataset_class(urls).batch(BATCH))
    next(iterator)
    m.first_record_seconds.append(time.perf_counter() - start)
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
