"""Ray Data's own ``ray.data.read_tfrecords`` (TensorFlow parses each record) on local shards:
``ds.count()`` and a full ``ds.iter_batches()``. Run in a venv with ray[data] + tensorflow-cpu.

Arguments: {"paths": [...], "bytes": int, "records": int, "repeats": int, "num_cpus": int}
"""

from __future__ import annotations

import importlib.metadata as md
import logging
from collections.abc import Callable

from benchmarks.peers._common import Measurement, emit, finish, measure, read_args


def main() -> None:
    args = read_args()
    import ray

    ray.init(num_cpus=int(args["num_cpus"]), include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    paths, size, expected = list(args["paths"]), int(args["bytes"]), int(args["records"])

    def checked(records: int) -> tuple[int, int]:
        if records != expected:
            raise RuntimeError(f"ray.data.read_tfrecords read {records} records, expected {expected}")
        return records, size

    def count() -> tuple[int, int]:
        return checked(ray.data.read_tfrecords(paths).count())

    def iterate() -> tuple[int, int]:
        records = 0
        for batch in ray.data.read_tfrecords(paths).iter_batches():
            records += len(next(iter(batch.values())))
        return checked(records)

    plans: list[tuple[str, Callable[[], tuple[int, int]]]] = [
        ("ray.data.read_tfrecords (TF) count()", count),
        ("ray.data.read_tfrecords (TF) iter_batches()", iterate),
    ]
    ray.data.read_tfrecords(paths[:1]).count()  # warm-up: worker processes, TensorFlow import in each
    results: list[Measurement] = []
    for name, run in plans:
        results.append(measure(name, f"{len(paths)} local shards", run, int(args["repeats"]), track_memory=False))
    ray.shutdown()
    versions = {}
    for package in ("ray", "tensorflow-cpu", "tensorflow", "pyarrow", "tfx-bsl"):
        try:
            versions[f"ray venv {package}"] = md.version(package)
        except md.PackageNotFoundError:
            pass
    emit(results, versions, [])
    finish()


if __name__ == "__main__":
    main()
