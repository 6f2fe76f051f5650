"""``tfrecord-s3 count PATHS...``: records per file and in total, without decoding them."""

from __future__ import annotations

import argparse
import threading
from contextlib import closing
from typing import Any

from ..records.reader import open_records
from ._common import Progress, add_compression_option, compression_of, expand_paths, print_json, say
from ._concurrent import Stopped, add_jobs_option, in_order

HELP = "count the records of each file and in total (CRCs checked unless --no-verify)"

_PROGRESS_EVERY = 4096


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("count", help=HELP, description=HELP, parents=parents)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or globs (local, file://, s3://)")
    parser.add_argument("--no-verify", action="store_true", help="skip the CRC checks (framing is still checked)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, then one with the total")
    add_compression_option(parser)
    add_jobs_option(parser)
    parser.set_defaults(run=run)


def count_file(
    path: str, compression: str | None, *, verify: bool, bar: Progress, stop: threading.Event | None = None
) -> tuple[int, int]:
    """(records, payload bytes) of ``path``; raises the first RecordError or StorageError
    (:class:`Stopped` once ``stop`` is set)."""
    records = 0
    payload = 0
    for record in open_records(path, compression, verify_crc=verify):
        records += 1
        payload += len(record)
        if stop is not None and stop.is_set():
            raise Stopped(path)
        if records % _PROGRESS_EVERY == 0:
            bar.note(records=records)
    return records, payload


def run(args: argparse.Namespace) -> int:
    paths = expand_paths(args.paths)
    compression = compression_of(args)
    total_records = 0
    total_bytes = 0
    with Progress(len(paths), "file", "count") as bar:

        def one(path: str, stop: threading.Event) -> tuple[int, int]:
            return count_file(path, compression, verify=not args.no_verify, bar=bar, stop=stop)

        with closing(in_order(one, paths, args.jobs)) as counted:
            for path, (records, payload) in zip(paths, counted, strict=True):
                total_records += records
                total_bytes += payload
                bar.update()
                if args.json:
                    print_json({"path": path, "records": records, "bytes": payload})
                else:
                    say(f"{records:>12}  {path}", flush=True)
    if args.json:
        print_json({"total": total_records, "bytes": total_bytes, "files": len(paths)})
    else:
        say(f"{total_records:>12}  total ({len(paths)} files)")
    return 0
