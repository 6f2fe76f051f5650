"""Ray layer: ``tfrecord_s3.ray.read_tfrecords`` against Ray Data's own
``ray.data.read_tfrecords`` (TensorFlow default path) on the same eight local shards of ~1 KB
Examples (32 MB in all, ``--quick`` 8 MB, ``TFR_BENCH_RAY_MB`` sets it): records/s of
``ds.count()`` and of a full ``ds.iter_batches()``, each on a local Ray with 2 CPUs, schema
inferred by both (neither is given one), CRCs checked by ours only.

    python -m benchmarks.bench_ray [--quick] [--repeats N] [--network s3-region|s3-far]

``--network`` puts the shards on a local s3rver behind benchmarks/shaper.py instead: ours reads
``s3://`` with ``S3_ENDPOINT`` set to the proxy (Ray's workers inherit the driver's
environment), Ray's reads them through a ``pyarrow.fs.S3FileSystem`` pointed at it.

Ray's TensorFlow path runs in the venv ``RAY_TF_VENV`` (ray[data] + tensorflow-cpu), its
tfx-bsl path in ``RAY_TFX_VENV`` when that exists: Ray removed ``tfx_read_options`` after 2.55
(ray-project/ray#63245, when tfx-bsl still capped pyarrow < 11), but tfx-bsl 1.21 takes
pyarrow > 14, so Ray 2.55.1 + tfx-bsl 1.21.0 + tensorflow-metadata 1.21.0, all ``--no-deps``
over the TF venv's packages (TensorFlow 2.21), installs and runs::

    python3.11 -m venv /work/.venvs/ray-tfx
    echo "$(/work/.venvs/ray-tf/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
        > "$(/work/.venvs/ray-tfx/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ray_tf.pth"
    /work/.venvs/ray-tfx/bin/pip install --no-deps ray==2.55.1 tfx-bsl==1.21.0 tensorflow-metadata==1.21.0
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ._common import (
    RAY_TF_VENV,
    VENVS,
    Results,
    Settings,
    Target,
    alternate,
    collect_peer,
    own_versions,
    parse_settings,
)
from ._data import RecordFile, example_shards
from ._ours import Missing, piece
from ._servers import environment, network, s3rver
from .peers._common import Measurement, Plan, measure_interleaved
from .shaper import PROFILES

SHARDS = 8
#: MB of shards in all: quick and full runs (``TFR_BENCH_RAY_MB`` overrides). Ray's TF path
#: decodes ~1,000 records/s per core, so one peer call over the full set (count() and
#: iter_batches(), ``repeats`` each) must still fit PEER_TIMEOUT: at 80 MB it did not (600 s,
#: on a machine busy with other work).
QUICK_MB, FULL_MB = 8, 32
NUM_CPUS = 2
TARGET = 5.0  # x Ray's default (TensorFlow) path
TARGET_TFX = 1.5  # x its tfx-bsl path
RAY_TFX_VENV = VENVS / "ray-tfx"
BUCKET = "bench-ray"


@dataclass
class Where:
    """Where the shards are read from: local paths, or s3:// URLs behind a (shaped) endpoint."""

    paths: list[str]
    scenario: str
    env: dict[str, str] = field(default_factory=dict)
    #: For Ray's side: the S3 endpoint (host:port, plain http) and credentials, or None (local).
    s3: dict[str, str] | None = None


@contextmanager
def shards_on(files: list[RecordFile], profile: str) -> Iterator[Where]:
    """The shards where ``profile`` puts them: local files on loopback, else on s3rver behind
    the shaping proxy for the block."""
    if profile == "loopback":
        yield Where([str(f.path) for f in files], f"{SHARDS} local shards")
        return
    with s3rver() as direct, network(direct, profile) as server:
        server.upload(BUCKET, {f.path.name: f.path for f in files})
        env = server.env_ours()
        yield Where(
            [f"s3://{BUCKET}/{f.path.name}" for f in files],
            f"{SHARDS} S3 shards, {profile}",
            env,
            {"endpoint": env["S3_ENDPOINT"], **server.credentials_env()},
        )


def _ours(files: list[RecordFile], where: Where) -> list[Plan]:
    (read_tfrecords,) = piece("tfrecord_s3.ray", "read_tfrecords")
    paths = where.paths
    expected = sum(f.records for f in files)
    size = sum(f.bytes for f in files)
    scenario = where.scenario

    def checked(records: int) -> tuple[int, int]:
        if records != expected:
            raise RuntimeError(f"ours read {records} records, expected {expected}")
        return records, size

    def count() -> tuple[int, int]:
        return checked(int(read_tfrecords(paths).count()))

    def iterate() -> tuple[int, int]:
        records = 0
        for batch in read_tfrecords(paths).iter_batches():
            records += len(next(iter(batch.values())))
        return checked(records)

    return [("ours read_tfrecords count()", scenario, count), ("ours read_tfrecords iter_batches()", scenario, iterate)]


def _side(plans: list[Plan], env: dict[str, str]) -> Callable[[int], list[tuple[str, Measurement]]]:
    def ours(repeats: int) -> list[tuple[str, Measurement]]:
        # A Ray of our own per round, shut down before the peer's Ray starts; its workers
        # inherit the S3 variables set here.
        with environment(env):
            return _in_ray(plans, repeats)

    return ours


def _in_ray(plans: list[Plan], repeats: int) -> list[tuple[str, Measurement]]:
    import ray

    ray.init(num_cpus=NUM_CPUS, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        plans[0][2]()  # warm-up: worker processes start, import the package
        return [("ours", m) for m in measure_interleaved(plans, repeats, track_memory=False)]
    finally:
        ray.shutdown()


def run(settings: Settings) -> Results:
    results = Results(settings.bench_name("ray"), settings)
    results.versions.update(own_versions())
    for package in ("ray", "pyarrow"):
        try:
            results.versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    files = example_shards(int(os.environ.get("TFR_BENCH_RAY_MB") or (QUICK_MB if settings.quick else FULL_MB)), SHARDS)
    total = sum(f.bytes for f in files)
    print(f"  [ray] {SHARDS} shards, {sum(f.records for f in files):,} records, {total / 1e6:.0f} MB", flush=True)
    with shards_on(files, settings.network) as where:
        if where.s3 is not None:
            results.versions["network"] = PROFILES[settings.network].describe()
        sides: list[Callable[[int], list[tuple[str, Measurement]]]] = []
        try:
            sides.append(_side(_ours(files, where), where.env))
        except Missing as exc:
            results.note(f"skipped ours: {exc}")
        peer_args: dict[str, Any] = {
            "paths": where.paths,
            "scenario": where.scenario,
            "s3": where.s3,
            "bytes": total,
            "records": sum(f.records for f in files),
            "num_cpus": NUM_CPUS,
        }
        sides.append(lambda n: collect_peer(results, RAY_TF_VENV, "ray_tf", {**peer_args, "repeats": n}))
        if (RAY_TFX_VENV / "bin" / "python").exists():
            tfx_args = {**peer_args, "tfx": True}
            sides.append(lambda n: collect_peer(results, RAY_TFX_VENV, "ray_tf", {**tfx_args, "repeats": n}))
        else:
            results.note(f"no tfx-bsl row: {RAY_TFX_VENV} is missing (its recipe is in bench_ray's docstring)")
        alternate(results, sides)
    for path, goal in (("TF", TARGET), ("tfx-bsl", TARGET_TFX)):
        for what in ("count()", "iter_batches()"):
            ours = results.find(f"ours read_tfrecords {what}")
            peer = results.find(f"ray.data.read_tfrecords ({path}) {what}")
            if path != "TF" and peer is None:
                continue
            results.target(
                Target(
                    f"Ray Data {what}{'' if path == 'TF' else ' vs ' + path}, {where.scenario}",
                    ours.records_per_s if ours else None,
                    peer.records_per_s if peer else None,
                    "rec/s",
                    goal,
                    baseline_name=f"ray.data.read_tfrecords ({path})",
                )
            )
    results.write()
    return results


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
