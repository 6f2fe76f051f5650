"""The seeded fault storm: a random fault on ~5% of the GETs of 8 files, read interleaved
(num_parallel_reads=4) or through a torch DataLoader with 2 workers, must give exactly the
record sequence of a fault-free read of the same files with the same settings."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any

from tests.faults.schedule import default_storm_faults
from tests.reliability.corpus import index_of, make_file
from tests.reliability.harness import Checks, Outcome, Run, outcome, read
from tests.reliability.world import KiB, World
from tfrecord_s3.config import S3Config

STORM_BLOCK = 1 * KiB


def _read_torch(urls: list[str], compression: str, config: S3Config) -> Run:
    from torch.utils.data import DataLoader

    from tfrecord_s3.torch import TFRecordIterableDataset

    dataset = TFRecordIterableDataset(urls, compression_type=compression or None, num_parallel_reads=2, config=config)
    loader: Any = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
    records: list[bytes] = []
    error: BaseException | None = None
    started = time.perf_counter()
    try:
        records.extend(loader)
    except Exception as exc:
        error = exc
    return Run(records, error, None, time.perf_counter() - started)


def _storm_bucket(world: World, seed: int) -> str:
    bucket = f"rel-storm-{seed}"
    with contextlib.suppress(
        world.admin.exceptions.BucketAlreadyOwnedByYou, world.admin.exceptions.BucketAlreadyExists
    ):
        world.admin.create_bucket(Bucket=bucket)
    return bucket


def storm(
    world: World,
    compression: str,
    variant: str = "dataset",
    inject: bool = True,
    *,
    files: int = 8,
    records: int = 60,
    seed: int = 20261124,
    fraction: float = 0.05,
) -> Outcome:
    # Faults are drawn per request from (seed, path, Range): a fixed bucket and prefix make the
    # storm, and so the number of faults, the same on every run.
    world = dataclasses.replace(world, bucket=_storm_bucket(world, seed), prefix=f"{variant}-{compression or 'raw'}")
    corpus = [make_file(i, records, compression=compression) for i in range(files)]
    urls = [world.put(f"storm-{f.file}.tfrecord", f.blob) for f in corpus]
    config = world.config(block_size=STORM_BLOCK)

    def once() -> Run:
        if variant == "torch":
            return _read_torch(urls, compression, config)
        return read(urls, compression, config, num_parallel_reads=4)

    reference = once()
    checks = Checks()
    checks.error_is(reference.error, None)
    known = index_of(corpus)
    # The fault-free order (interleaved): every record exactly once, each file in order.
    order = [known[r] for r in reference.records if r in known]
    checks.equal(sorted(order), sorted(k for k in known.values()), "records of the clean run")
    run = reference
    injected = 0
    if inject:
        world.proxy.clear_log()
        world.proxy.start_storm(seed, fraction, default_storm_faults(max_offset=STORM_BLOCK), key=world.prefix)
        try:
            run = once()
        finally:
            stopped = world.proxy.stop_storm()
        injected = stopped.injected if stopped is not None else 0
        checks.error_is(run.error, None)
        checks.that(run.records == reference.records, "the storm changed the record sequence")
        checks.that(injected > 0, "the storm injected no fault")
    result = outcome(world, "storm", variant, compression, corpus, order, run, checks)
    result.injected = injected
    result.notes = f"{files} files x {records} records, {STORM_BLOCK}-byte blocks, seed {seed}, {fraction:.0%} of GETs"
    return result
