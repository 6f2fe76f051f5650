"""Dataset layer: eight shards on a local s3rver read through ``TFRecordDataset`` with
``num_parallel_reads`` 1, 2, 4, 8 (records/s, MB/s, peak memory), against TensorFlow +
tensorflow-io ``TFRecordDataset(..., num_parallel_reads=4).batch(256)`` on the same objects.

    python -m benchmarks.bench_dataset [--quick] [--repeats N]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import TF_VENV, Results, Settings, Target, alternate, collect_peer, own_versions, parse_settings
from ._data import FEATURE_SPEC, RecordFile, example_shards
from ._ours import Missing, feature_spec, piece
from ._servers import environment, s3rver
from .peers._common import Measurement, Plan, ServerCPU, measure_interleaved

BUCKET = "bench"
SHARDS = 8
BATCH = 256
PARALLEL = (1, 2, 4, 8)
TF_PARALLEL = 4


def _count(element: Any) -> int:
    """Records in one element: a record (bytes), a batch of records, or a parsed batch dict."""
    if isinstance(element, bytes | bytearray):
        return 1
    if isinstance(element, dict):
        return len(next(iter(element.values())))
    return len(element)


def _ours(urls: list[str], files: list[RecordFile], parallel: int, how: str) -> Callable[[], tuple[int, int]]:
    (dataset_class,) = piece("tfrecord_s3.dataset", "TFRecordDataset")
    features = feature_spec(FEATURE_SPEC) if how == "parse" else None
    expected = sum(f.records for f in files)
    total_bytes = sum(f.bytes for f in files)

    def run() -> tuple[int, int]:
        dataset = dataset_class(urls, num_parallel_reads=parallel)
        if how in ("batch", "parse"):
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
    results = Results("dataset", settings)
    results.versions.update(own_versions())
    files = example_shards(24 if settings.quick else 200, SHARDS)
    keys = {f"shards/part-{i:02d}.tfrecord": f.path for i, f in enumerate(files)}
    urls = [f"s3://{BUCKET}/{key}" for key in keys]
    total = sum(f.bytes for f in files)
    scenario = f"s3 {SHARDS} shards"
    with s3rver() as server:
        server.upload(BUCKET, keys)
        print(f"  [dataset] {SHARDS} objects, {total / 1e6:.0f} MB on {server.endpoint}", flush=True)
        with environment(server.env_ours()):
            plans = [(f"ours TFRecordDataset(num_parallel_reads={n})", n, "records") for n in PARALLEL]
            plans += [
                (f"ours TFRecordDataset(num_parallel_reads={TF_PARALLEL}).batch({BATCH})", TF_PARALLEL, "batch"),
                (f"ours (num_parallel_reads={TF_PARALLEL}).batch({BATCH}).parse_examples()", TF_PARALLEL, "parse"),
            ]
            server_cpu = ServerCPU(server.process.pid)
            runnable: list[Plan] = []
            parallel_of: dict[str, int] = {}
            for name, parallel, how in plans:
                try:
                    reader = _ours(urls, files, parallel, how)
                except Missing as exc:
                    results.note(f"skipped {name}: {exc}")
                    continue
                if not runnable:
                    reader()  # warm-up: clients, credentials, connection pools
                runnable.append((name, scenario, server_cpu.wrap(name, reader)))
                parallel_of[name] = parallel
            cap = int(piece("tfrecord_s3.dataset", "DEFAULT_MAX_BYTES_IN_FLIGHT")[0]) if runnable else 0

            def ours(repeats: int) -> list[tuple[str, Measurement]]:
                # Within a round the settings run in turn: each sees the same server and machine.
                found: list[tuple[str, Measurement]] = []
                for m in measure_interleaved(runnable, repeats):
                    server_cpu.annotate(m)
                    m.extra["num_parallel_reads"] = parallel_of[m.reader]
                    m.extra["max_bytes_in_flight"] = cap
                    found.append(("ours", m))
                return found

            tf_args = {
                "single": None,
                "shards": {"urls": urls, "bytes": total},
                "parallel": TF_PARALLEL,
                "spec": FEATURE_SPEC,
                "batch": BATCH,
                "parse": True,
                "server_pid": server.process.pid,
            }
            alternate(
                results,
                [ours, lambda n: collect_peer(results, TF_VENV, "tf_s3", {**tf_args, "repeats": n}, server.env_tfio())],
            )

    tf_row = results.find(f"TF+tf-io TFRecordDataset(num_parallel_reads={TF_PARALLEL}).batch({BATCH})")
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
    ours_rows = [r for r in results.rows if r.kind == "ours" and r.rss_delta_mb is not None]
    if ours_rows:
        worst = max(ours_rows, key=lambda r: r.rss_delta_mb or 0.0)
        cap_mb = float(worst.extra.get("max_bytes_in_flight", 0)) / 1e6
        results.target(
            Target(
                f"dataset RSS above start (cap {cap_mb:.0f} MB in flight + 100 MB)",
                worst.rss_delta_mb,
                None,
                "MB",
                round(cap_mb + 100.0, 1),
                kind="max",
            )
        )
    results.write()
    return results


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
