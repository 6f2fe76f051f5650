"""Ray Data's own ``ray.data.read_tfrecords`` (TensorFlow parses each record) on local or S3
shards: ``ds.count()`` and a full ``ds.iter_batches()``. Run in a venv with ray[data] +
tensorflow-cpu; with ``"tfx": true`` its tfx-bsl path instead (``tfx_read_options``, in Ray
releases up to 2.55, with tfx-bsl installed ``--no-deps``).

Arguments: {"paths": [...], "bytes": int, "records": int, "repeats": int, "num_cpus": int,
"scenario": str, "s3": null | {"endpoint": "host:port", "AWS_ACCESS_KEY_ID": ..., ...}}; with
``s3`` the paths are s3:// URLs, read through a ``pyarrow.fs.S3FileSystem`` on that endpoint.
"""

from __future__ import annotations

import importlib.metadata as md
import logging
from collections.abc import Callable
from typing import Any

from benchmarks.peers._common import Measurement, emit, finish, measure, read_args


def main() -> None:
    args = read_args()
    # TensorFlow (and tfx-bsl) imported here, once, before Ray Data's threads import them
    # concurrently: a racing second import fails ("tf.RaggedTensorSpec has already been registered").
    import tensorflow  # noqa: F401

    if args.get("tfx"):
        import tfx_bsl  # type: ignore[import-not-found]  # noqa: F401
    import ray

    ray.init(num_cpus=int(args["num_cpus"]), include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    paths, size, expected = list(args["paths"]), int(args["bytes"]), int(args["records"])
    scenario = str(args.get("scenario") or f"{len(paths)} local shards")
    options: dict[str, Any] = {}
    tfx = bool(args.get("tfx"))
    path = "tfx-bsl" if tfx else "TF"
    if tfx:
        # Ray's fast path: tfx-bsl decodes batches of records into Arrow (schema inferred by it).
        options["tfx_read_options"] = ray.data.TFXReadOptions()  # type: ignore[attr-defined]  # Ray <= 2.55
    s3 = args.get("s3")
    if s3:
        from pyarrow import fs

        # Ray's documented way to a non-AWS endpoint: its own filesystem argument.
        options["filesystem"] = fs.S3FileSystem(
            access_key=s3["AWS_ACCESS_KEY_ID"],
            secret_key=s3["AWS_SECRET_ACCESS_KEY"],
            region=s3["AWS_REGION"],
            endpoint_override=s3["endpoint"],
            scheme="http",
        )

    def checked(records: int) -> tuple[int, int]:
        if records != expected:
            raise RuntimeError(f"ray.data.read_tfrecords read {records} records, expected {expected}")
        return records, size

    def count() -> tuple[int, int]:
        return checked(ray.data.read_tfrecords(paths, **options).count())

    def iterate() -> tuple[int, int]:
        records = 0
        for batch in ray.data.read_tfrecords(paths, **options).iter_batches():
            records += len(next(iter(batch.values())))
        return checked(records)

    plans: list[tuple[str, Callable[[], tuple[int, int]]]] = [
        (f"ray.data.read_tfrecords ({path}) count()", count),
        (f"ray.data.read_tfrecords ({path}) iter_batches()", iterate),
    ]
    results: list[Measurement] = []
    notes: list[str] = []
    unreadable = _no_s3_in_tensorflow(paths[0]) if tfx and s3 else None
    if unreadable:
        notes.append(f"no tfx-bsl row on S3: {unreadable}")
    else:
        ray.data.read_tfrecords(paths[:1], **options).count()  # warm-up: worker processes, TensorFlow import
        for name, run in plans:
            results.append(measure(name, scenario, run, int(args["repeats"]), track_memory=False))
    ray.shutdown()
    versions = {}
    for package in ("ray", "tensorflow-cpu", "tensorflow", "pyarrow", "tfx-bsl"):
        try:
            versions[f"{'ray-tfx' if tfx else 'ray'} venv {package}"] = md.version(package)
        except md.PackageNotFoundError:
            pass
    emit(results, versions, notes)
    finish()


def _no_s3_in_tensorflow(path: str) -> str | None:
    """Why TensorFlow cannot open ``path`` (Ray's tfx-bsl path reads every file with
    ``tf.data.TFRecordDataset``, whatever ``filesystem`` says), or None if it can."""
    import tensorflow as tf

    try:
        tf.io.gfile.exists(path)
    except tf.errors.UnimplementedError as exc:
        return f"Ray's tfx-bsl path reads files through TensorFlow {tf.__version__}, which says: {exc.message}"
    return None


if __name__ == "__main__":
    main()
