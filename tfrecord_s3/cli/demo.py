"""``tfrecord-s3 demo``: the whole path in one command, with nothing to set up.

Starts a local S3 server in this process (moto, 127.0.0.1 only), writes a sample dataset of
TFRecord shards of tf.train.Example records to it, streams it back through TFRecordDataset
with decoding, checks every record came back once, and prints what it read and how fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TFRecordS3Error
from ._common import Progress, positive_int
from ._jsonify import to_json
from ._sample import EMBEDDING_SIZE, IMAGE_SHAPE, sample_records

HELP = "write a sample dataset to a local in-process S3 server, stream it back, show what and how fast"

BUCKET = "tfrecord-s3-demo"
# Full size: 8 shards x 6000 records of ~930 bytes (a 16x16x3 image and a few small features),
# ~5.7 MB a shard: big enough to stream, small enough to finish in well under a minute.
DEFAULT_SHARDS = 8
DEFAULT_RECORDS = 6000
SMALL_SHARDS = 3
SMALL_RECORDS = 300


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("demo", help=HELP, description=HELP, parents=parents)
    parser.add_argument("--shards", type=positive_int, default=None, help=f"shards to write (default {DEFAULT_SHARDS})")
    parser.add_argument(
        "--records-per-shard", type=positive_int, default=None, help=f"records per shard (default {DEFAULT_RECORDS})"
    )
    parser.add_argument("--small", action="store_true", help=f"{SMALL_SHARDS} shards x {SMALL_RECORDS} records")
    parser.add_argument("--parallel", type=positive_int, default=4, help="shards read at once (default 4)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="records per decoded batch (default 256)")
    parser.set_defaults(run=run)


@dataclass
class ReadBack:
    records: int = 0
    per_shard: Counter[int] = field(default_factory=Counter)
    ids: list[np.ndarray[Any, Any]] = field(default_factory=list)
    first_batch: dict[str, Any] | None = None
    seconds: float = 0.0
    first_record_seconds: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """Point the library at the local server for the length of the demo only. The user's own
    credentials and profile are hidden so that nothing real is ever signed or sent."""
    hidden = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")
    saved = {k: os.environ.get(k) for k in (*values, *hidden)}
    try:
        for key in hidden:
            os.environ.pop(key, None)
        os.environ.update(values)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def feature_spec() -> dict[str, Any]:
    from ..decode import FixedLenFeature

    return {
        "id": FixedLenFeature([], "int64"),
        "shard": FixedLenFeature([], "int64"),
        "label": FixedLenFeature([], "int64"),
        "label_name": FixedLenFeature([], "bytes"),
        "embedding": FixedLenFeature([EMBEDDING_SIZE], "float32"),
        "image": FixedLenFeature([], "bytes"),
        "image_shape": FixedLenFeature([len(IMAGE_SHAPE)], "int64"),
    }


def write_dataset(shards: int, per_shard: int) -> tuple[list[str], int, float]:
    """(paths, bytes written, seconds) of the sample shards, written through TFRecordWriter."""
    from ..records.writer import TFRecordWriter

    paths = [f"s3://{BUCKET}/train/part-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
    written = 0
    started = time.perf_counter()
    with Progress(shards, "shard", "write") as bar:
        for shard, path in enumerate(paths):
            with TFRecordWriter(path) as writer:
                for record in sample_records(shard, per_shard, first_id=shard * per_shard):
                    writer.write(record)
                    written += len(record) + 16
            bar.update()
    return paths, written, time.perf_counter() - started


def read_dataset(pattern: str, parallel: int, batch_size: int) -> ReadBack:
    """Stream every shard back through TFRecordDataset, decoding batches of Examples."""
    from ..dataset import TFRecordDataset

    result = ReadBack()
    dataset = TFRecordDataset(pattern, num_parallel_reads=parallel)
    started = time.perf_counter()
    with Progress(None, "rec", "read") as bar:
        for batch in dataset.batch(batch_size).parse_examples(feature_spec()):
            if result.first_record_seconds is None:
                result.first_record_seconds = time.perf_counter() - started
                result.first_batch = batch
            ids = np.asarray(batch["id"])
            result.records += len(ids)
            result.ids.append(ids)
            result.per_shard.update(np.asarray(batch["shard"]).tolist())
            bar.update(len(ids))
    result.seconds = time.perf_counter() - started
    result.stats = dataset.stats.as_dict()
    return result


def sample_of(batch: dict[str, Any]) -> dict[str, Any]:
    """The first record of a decoded batch, with the image summarised rather than dumped."""
    record = {key: np.asarray(values)[0] for key, values in batch.items()}
    shape = tuple(int(n) for n in record["image_shape"])
    image = np.frombuffer(bytes(record.pop("image")), dtype=np.uint8).reshape(shape)
    out: dict[str, Any] = to_json(record)
    out["image"] = f"<{'x'.join(map(str, shape))} uint8 image, mean {image.mean():.1f}>"
    return out


def run(args: argparse.Namespace) -> int:
    from ..demo_server import LocalS3Server

    shards = args.shards or (SMALL_SHARDS if args.small else DEFAULT_SHARDS)
    per_shard = args.records_per_shard or (SMALL_RECORDS if args.small else DEFAULT_RECORDS)
    total_started = time.perf_counter()
    with LocalS3Server() as server, patched_environ(server.environ()):
        server.create_bucket(BUCKET)
        print(f"local S3 server (moto) at {server.url}, bucket {BUCKET}")
        paths, written, write_seconds = write_dataset(shards, per_shard)
        print(
            f"wrote {shards} shards x {per_shard} records = {shards * per_shard} tf.train.Example records, "
            f"{written / 1e6:.1f} MB in {write_seconds:.1f} s ({paths[0]}, ...)"
        )
        pattern = f"s3://{BUCKET}/train/part-*.tfrecord"
        print(
            f"reading {pattern} with TFRecordDataset(num_parallel_reads={args.parallel})"
            f".batch({args.batch_size}).parse_examples(spec)"
        )
        got = read_dataset(pattern, args.parallel, args.batch_size)
    expected = shards * per_shard
    ids = np.sort(np.concatenate(got.ids)) if got.ids else np.zeros(0, dtype=np.int64)
    intact = bool(got.records == expected and np.array_equal(ids, np.arange(expected)))
    stats = got.stats
    print(f"read {got.records} records, {stats['bytes'] / 1e6:.1f} MB of records, in {got.seconds:.2f} s:")
    print(
        f"  {got.records / got.seconds:,.0f} records/s, {stats['bytes'] / got.seconds / 1e6:.1f} MB/s, "
        f"{stats['requests']} GET requests, {stats['retries']} retries, "
        f"first batch after {(got.first_record_seconds or 0) * 1000:.0f} ms"
    )
    print("  records per shard: " + ", ".join(f"{n}: {got.per_shard[n]}" for n in range(shards)))
    if got.first_batch is not None:
        print(f"  a decoded record: {json.dumps(sample_of(got.first_batch))}")
    print(f"every id 0..{expected - 1} read exactly once: {'yes' if intact else 'NO'}")
    print("(the server runs in this process and shares its CPU: these figures show the path works,")
    print(" not how fast it goes; run `tfrecord-s3 bench` on your own data for that)")
    print(f"demo finished in {time.perf_counter() - total_started:.1f} s")
    if not intact:
        raise TFRecordS3Error(f"the demo read back {got.records} records, expected {expected} distinct ids")
    return 0
