"""``tfrecord-s3 ls PATTERN...``: the files a glob matches (or a directory holds), with sizes."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ObjectNotFoundError
from ..storage import filesystem
from ..storage.base import FileStatistics
from ._common import has_glob, print_json

HELP = "list files matching a glob, or the entries of a directory / S3 prefix, with sizes"

# stat on S3 is one HEAD per object: a few in flight hide the round trips.
_STAT_THREADS = 8


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ls", help=HELP, description=HELP, parents=parents)
    parser.add_argument("patterns", nargs="+", metavar="PATTERN", help="path, directory or glob ('*', '?', '[..]')")
    parser.add_argument("--json", action="store_true", help="one JSON object per entry")
    parser.set_defaults(run=run)


def entries_of(pattern: str) -> list[str]:
    if has_glob(pattern):
        matches = filesystem.glob(pattern)
        if not matches:
            raise ObjectNotFoundError(f"{pattern}: no files match", path=pattern, operation="glob")
        return matches
    info = filesystem.stat(pattern)
    if not info.is_directory:
        return [pattern]
    base = pattern if pattern.endswith("/") else pattern + "/"
    return [base + name for name in filesystem.listdir(pattern)]


def run(args: argparse.Namespace) -> int:
    paths = [path for pattern in args.patterns for path in entries_of(pattern)]
    with ThreadPoolExecutor(max_workers=_STAT_THREADS) as pool:
        infos: list[FileStatistics] = list(pool.map(filesystem.stat, paths))
    total = 0
    for path, info in zip(paths, infos, strict=True):
        total += info.length
        if args.json:
            print_json(
                {"path": path, "length": info.length, "is_directory": info.is_directory, "mtime_nsec": info.mtime_nsec}
            )
        else:
            size = "DIR" if info.is_directory else str(info.length)
            print(f"{size:>14}  {path}")
    if not args.json:
        print(f"{total:>14}  total ({len(paths)} entries)")
    return 0
