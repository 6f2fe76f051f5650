"""``tfrecord-s3 stat PATH...``: length, mtime and directory flag (TensorFlow's file_io.stat)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from ..storage import filesystem
from ._common import print_json

HELP = "length, modification time and directory flag of files or S3 objects"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("stat", help=HELP, description=HELP, parents=parents)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="local path, file:// or s3:// URL")
    parser.add_argument("--json", action="store_true", help="one JSON object per path")
    parser.set_defaults(run=run)


def iso_time(mtime_nsec: int) -> str:
    seconds, nanos = divmod(mtime_nsec, 1_000_000_000)
    when = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"


def run(args: argparse.Namespace) -> int:
    for index, path in enumerate(args.paths):
        info = filesystem.stat(path)
        if args.json:
            print_json(
                {
                    "path": path,
                    "length": info.length,
                    "mtime_nsec": info.mtime_nsec,
                    "mtime": iso_time(info.mtime_nsec),
                    "is_directory": info.is_directory,
                }
            )
            continue
        if index:
            print()
        print(f"path: {path}")
        print(f"length: {info.length}")
        print(f"mtime_nsec: {info.mtime_nsec}")
        print(f"mtime: {iso_time(info.mtime_nsec)}")
        print(f"is_directory: {str(info.is_directory).lower()}")
    return 0
