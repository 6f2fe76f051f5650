"""``tfrecord-s3 index PATHS...``: write a record index (sidecar) beside each data file.

Each file is scanned once, streaming, with every CRC checked (a damaged file gets no index),
several files at a time. The sidecar is ``<file>.tfrecord-s3.idx`` (our binary format, with
the file's size and mtime/ETag so a stale index is detected), or ``--text`` writes the
``tfrecord2idx`` text format DALI and PyPI tfrecord read, as ``<file>.idx`` by default.
"""

from __future__ import annotations

import argparse
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..index import build_index, sidecar_path, write_index
from ..storage import filesystem
from ._common import Progress, add_compression_option, compression_of, expand_paths, positive_int, print_json

HELP = "build a record index beside each file, for random access (CRCs checked)"
_TEXT_SUFFIX = ".idx"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("index", help=HELP, description=__doc__, parents=parents)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or globs (local, file://, s3://)")
    parser.add_argument(
        "--out-dir", metavar="DIR", help="write the indexes into DIR (local or s3://) instead of beside the data"
    )
    parser.add_argument(
        "--text", action="store_true", help="write the tfrecord2idx text format (DALI, PyPI tfrecord) as <file>.idx"
    )
    parser.add_argument("--jobs", type=positive_int, default=4, help="files scanned at once (default 4)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, then one with the total")
    add_compression_option(parser)
    parser.set_defaults(run=run)


def target_of(path: str, out_dir: str | None, text: bool) -> str:
    if not text:
        return sidecar_path(path, out_dir)
    if out_dir is None:
        return path + _TEXT_SUFFIX
    return out_dir.rstrip("/") + "/" + path.rstrip("/").rsplit("/", 1)[-1] + _TEXT_SUFFIX


def run(args: argparse.Namespace) -> int:
    paths = expand_paths(args.paths)
    compression = compression_of(args)
    sizes = [filesystem.stat(p).length for p in paths]
    lock = threading.Lock()
    total_records = 0
    with Progress(sum(sizes), "B", "index") as bar:

        def progress(scanned: int) -> None:
            with lock:
                bar.update(scanned)

        def one(path: str) -> tuple[str, int, str]:
            index = build_index(path, compression_type=compression, on_progress=progress)
            target = target_of(path, args.out_dir, args.text)
            write_index(index, target, text=args.text)
            return path, len(index), target

        with ThreadPoolExecutor(min(args.jobs, len(paths))) as pool:
            # map() yields in argument order and re-raises the first failure.
            for path, records, target in pool.map(one, paths):
                total_records += records
                if args.json:
                    print_json({"path": path, "records": records, "index": target})
                else:
                    print(f"{records:>12}  {path}  ->  {target}", flush=True)
    if args.json:
        print_json({"total": total_records, "files": len(paths)})
    else:
        print(f"{total_records:>12}  total ({len(paths)} files indexed)")
    return 0
