"""Many small objects: 1,000 objects of ~100 KB (110 records of ~900 bytes) read through
``TFRecordDataset("s3://bench/small/obj-*.tfrecord").batch(256)`` with default arguments and
with ``num_parallel_reads`` 8 and 32, against s3torchconnector's
``S3IterableDataset.from_prefix`` reading the same objects whole (issue 15).

    python -m benchmarks.bench_small [--quick] [--repeats N] [--network s3-region]
"""

from __future__ import annotations

from collections.abc import Callable

from ._common import PEERS_VENV, Results, Settings, Target, alternate, collect_peer, own_versions, parse_settings
from ._data import small_objects
from ._ours import Instruments, piece
from ._servers import REGION, environment, network, s3rver
from .peers._common import Measurement, Plan, measure_interleaved

BUCKET = "small"
PREFIX = "objs/"
BATCH = 256
RECORDS = 110
PARALLEL = (8, 32)
DEFAULTS = f"ours TFRecordDataset(glob).batch({BATCH}), default arguments"


def _ours(pattern: str, parallel: int | None, records: int) -> Callable[[], tuple[int, int]]:
    (dataset_class,) = piece("tfrecord_s3.dataset", "TFRecordDataset")

    def run() -> tuple[int, int]:
        dataset = dataset_class(pattern, num_parallel_reads=parallel)
        count = sum(len(batch) for batch in dataset.batch(BATCH))
        if count != records:
            raise RuntimeError(f"ours read {count} records, expected {records}")
        return count, 0

    return run


def run(settings: Settings) -> Results:
    results = Results(settings.bench_name("small"), settings)
    results.versions.update(own_versions())
    files = small_objects(100 if settings.quick else 1000, RECORDS)
    keys = {f"{PREFIX}obj-{i:05d}.tfrecord": f.path for i, f in enumerate(files)}
    size = sum(f.bytes for f in files)
    records = sum(f.records for f in files)
    scenario = f"s3 {len(files)} objects of ~{size / len(files) / 1e3:.0f} KB"
    pattern = f"s3://{BUCKET}/{PREFIX}obj-*.tfrecord"
    with s3rver() as server, network(server, settings.network):
        server.upload(BUCKET, keys)
        results.versions["network"] = server.network.describe()
        print(f"  [small] {len(files)} objects, {size / 1e6:.0f} MB on {server.endpoint}", flush=True)
        instruments = Instruments(server)
        with environment(server.env_ours()):
            plans: list[Plan] = []
            for name, parallel in [(DEFAULTS, None)] + [
                (f"ours TFRecordDataset(glob, num_parallel_reads={n}).batch({BATCH})", n) for n in PARALLEL
            ]:
                reader = _ours(pattern, parallel, records)
                sized = _sized(reader, size)
                plans.append((name, scenario, instruments.wrap(name, sized)))
            plans[0][2]()  # warm-up: clients, credentials

            def ours(repeats: int) -> list[tuple[str, Measurement]]:
                found = []
                for m in measure_interleaved(plans, repeats):
                    instruments.annotate(m)
                    found.append(("ours", m))
                return found

            peer_args = {
                "prefix": f"s3://{BUCKET}/{PREFIX}",
                "objects": len(files),
                "bytes": size,
                "endpoint": server.endpoint,
                "region": REGION,
                "scenario": scenario,
                "server_pid": server.process.pid,
                "stats_url": server.stats_url,
            }
            alternate(
                results,
                [
                    ours,
                    lambda n: collect_peer(
                        results, PEERS_VENV, "s3torch_prefix", {**peer_args, "repeats": n}, server.credentials_env()
                    ),
                ],
            )
    defaults = results.find(DEFAULTS)
    peer = results.find("s3torchconnector S3IterableDataset.from_prefix")
    best = max((r for r in results.rows if r.kind == "ours"), key=lambda r: r.mb_per_s, default=None)
    # Issue 15's goal is for a shaped network: on loopback a request costs no latency, only CPU.
    shaped = settings.network != "loopback"
    if shaped:
        results.target(
            Target(
                f"{len(files)} small objects, defaults vs s3torchconnector from_prefix",
                defaults.mb_per_s if defaults else None,
                peer.mb_per_s if peer else None,
                "MB/s",
                5.0,
                baseline_name="s3torchconnector from_prefix",
            )
        )
    results.target(
        Target(
            f"{len(files)} small objects, defaults vs our best num_parallel_reads (within 1.5x)",
            defaults.mb_per_s if defaults else None,
            best.mb_per_s if best else None,
            "MB/s",
            round(1 / 1.5, 3),
            baseline_name=best.reader if best else "",
        )
    )
    net_figures = (defaults.extra.get("network") if defaults else None) or {}
    if net_figures:
        per_object = (net_figures["gets"] + net_figures["heads"]) / len(files)
        results.target(
            Target("requests per small object from a glob", per_object, None, "requests", 1.0001, kind="max")
        )
    results.write()
    return results


def _sized(run: Callable[[], tuple[int, int]], size: int) -> Callable[[], tuple[int, int]]:
    def sized() -> tuple[int, int]:
        records, _ = run()
        return records, size

    return sized


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
