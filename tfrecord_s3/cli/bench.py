"""``tfrecord-s3 bench PATHS...``: read throughput through TFRecordDataset, as training sees it.

Reports records/s, MB/s (record payload), storage requests and retries, and the time to the
first record. ``--decode`` adds Example decoding (batched, the columnar fast path).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence
from typing import Any

from ..records.reader import open_records
from ._common import Progress, add_compression_option, close_iterator, compression_of, positive_int, print_json

HELP = "measure read throughput (records/s, MB/s, requests, retries, time to first record)"

_PROGRESS_EVERY = 256


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bench", help=HELP, description=HELP, parents=parents)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or globs (local, file://, s3://)")
    parser.add_argument(
        "--parallel", type=positive_int, default=1, metavar="N", help="files read at once (num_parallel_reads)"
    )
    parser.add_argument(
        "--decode",
        action="store_true",
        help="also decode every record as a tf.train.Example (VarLenFeature specs from the first records)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, metavar="N", help="records per decoded batch (default 256)"
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the CRC checks")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    add_compression_option(parser)
    parser.set_defaults(run=run)


def measure(
    paths: Sequence[str],
    *,
    compression: str | None,
    parallel: int,
    decode: bool,
    batch_size: int = 256,
    verify: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Read ``paths`` once through TFRecordDataset; return the dataset's figures."""
    from ..dataset import TFRecordDataset

    dataset = TFRecordDataset(list(paths), compression, num_parallel_reads=parallel, verify_crc=verify)
    pipeline: Any = dataset
    if decode:
        spec = infer_spec(dataset.files[0], compression)
        pipeline = dataset.batch(batch_size).parse_examples(spec)
    started = time.perf_counter()
    first: float | None = None
    elements = 0
    with Progress(None, "batch" if decode else "rec", "bench") as bar:
        for _ in pipeline:
            if first is None:
                first = time.perf_counter() - started
            elements += 1
            if progress and elements % _PROGRESS_EVERY == 0:
                bar.update(_PROGRESS_EVERY)
    figures = dataset.stats.as_dict()
    return {
        "files": len(dataset.files),
        **{key: figures[key] for key in _FIGURES},
        "first_record_seconds": first,
        "parallel": parallel,
        "decode": decode,
    }


_FIGURES = ("records", "bytes", "seconds", "records_per_s", "mb_per_s", "requests", "bytes_requested", "retries")


def infer_spec(path: str, compression: str | None, sample: int = 64) -> dict[str, Any]:
    """A VarLenFeature per feature seen in the first ``sample`` records of ``path``, typed as
    first seen: every value decoded through the batched (columnar) path, as training would."""
    from ..decode.example import infer_specs

    records = open_records(path, compression)
    try:
        sampled = list(itertools.islice(records, sample))
    finally:
        close_iterator(records)
    return infer_specs(sampled, path=path)


def format_figures(figures: dict[str, Any]) -> list[str]:
    first = figures["first_record_seconds"]
    first_label = "first batch " if figures["decode"] else "first record"
    return [
        f"files            {figures['files']}",
        f"records          {figures['records']}",
        f"bytes            {figures['bytes']} ({figures['bytes'] / 1e6:.1f} MB of records)",
        f"seconds          {figures['seconds']:.3f}",
        f"records/s        {figures['records_per_s']:,.0f}",
        f"MB/s             {figures['mb_per_s']:.1f}",
        f"requests         {figures['requests']} ({figures['bytes_requested'] / 1e6:.1f} MB requested)",
        f"retries          {figures['retries']}",
        f"{first_label}     {'-' if first is None else f'{first * 1000:.1f} ms'}",
        f"parallel reads   {figures['parallel']}",
        f"decode           {'yes' if figures['decode'] else 'no'}",
    ]


def run(args: argparse.Namespace) -> int:
    figures = measure(
        args.paths,
        compression=compression_of(args),
        parallel=args.parallel,
        decode=args.decode,
        batch_size=args.batch_size,
        verify=not args.no_verify,
    )
    if args.json:
        print_json(figures)
    else:
        print("\n".join(format_figures(figures)))
    return 0
