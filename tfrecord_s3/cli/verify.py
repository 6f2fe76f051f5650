"""``tfrecord-s3 verify PATHS...``: check every CRC; report each problem with path, offset, kind.

A bad data CRC leaves the frame boundary intact, so checking goes on in the same file; a bad
length, a truncation or a damaged compressed stream loses the boundary, so checking moves on
to the next file. Storage failures (missing file, no connection) stop the run: what cannot be
read cannot be verified.
"""

from __future__ import annotations

import argparse
import threading
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptRecordError, RecordError, RecordTooLargeError, TruncatedRecordError
from ..records.reader import open_records
from ._common import Progress, add_compression_option, compression_of, expand_paths, print_json, say
from ._concurrent import Stopped, add_jobs_option, in_order
from ._errors import ExitCode

HELP = "check every record's CRCs; list each problem (path, offset, kind); exit 1 if any"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("verify", help=HELP, description=HELP, parents=parents)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or globs (local, file://, s3://)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file, then a summary")
    add_compression_option(parser)
    add_jobs_option(parser)
    parser.set_defaults(run=run)


@dataclass
class Problem:
    offset: int | None
    kind: str
    detail: str


@dataclass
class FileReport:
    path: str
    records: int = 0
    problems: list[Problem] = field(default_factory=list)


def kind_of(exc: RecordError) -> str:
    if isinstance(exc, RecordTooLargeError):
        return "too-large"
    if isinstance(exc, CorruptRecordError):
        return f"corrupt-{exc.part or 'record'}"
    if isinstance(exc, TruncatedRecordError):
        return "truncated"
    return "bad-record"


def detail_of(exc: RecordError, path: str) -> str:
    # The library's messages start with the path (and offset); the report prints those apart.
    message = str(exc)
    for prefix in (f"{path} at byte {exc.offset}: ", f"{path}: "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def verify_file(path: str, compression: str | None, stop: threading.Event | None = None) -> FileReport:
    """Every problem of ``path``; storage errors raise (:class:`Stopped` once ``stop`` is set)."""
    report = FileReport(path)

    def note(exc: RecordError) -> None:
        report.problems.append(Problem(exc.offset, kind_of(exc), detail_of(exc, path)))

    def bad_data(exc: CorruptRecordError, frame_bytes: int) -> None:
        note(exc)  # a bad data CRC keeps the frame boundary: the reader goes on after it

    try:
        for _ in open_records(path, compression, verify_crc=True, on_data_error=bad_data):
            if stop is not None and stop.is_set():
                raise Stopped(path)
            report.records += 1
    except RecordError as exc:
        note(exc)  # the boundary is lost: nothing after this point can be framed
    return report


def print_report(report: FileReport, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "path": report.path,
                "records": report.records,
                "ok": not report.problems,
                "problems": [{"offset": p.offset, "kind": p.kind, "detail": p.detail} for p in report.problems],
            }
        )
        return
    if not report.problems:
        say(f"OK   {report.path}  ({report.records} records)", flush=True)
    for problem in report.problems:
        say(f"BAD  {report.path}  offset {problem.offset}  {problem.kind}: {problem.detail}", flush=True)


def run(args: argparse.Namespace) -> int:
    paths = expand_paths(args.paths)
    compression = compression_of(args)
    reports: list[FileReport] = []
    checked = in_order(lambda path, stop: verify_file(path, compression, stop), paths, args.jobs)
    with Progress(len(paths), "file", "verify") as bar, closing(checked):
        for report in checked:
            reports.append(report)
            print_report(report, args.json)
            bar.update()
    problems = sum(len(r.problems) for r in reports)
    damaged = sum(1 for r in reports if r.problems)
    records = sum(r.records for r in reports)
    if args.json:
        print_json({"files": len(reports), "records": records, "problems": problems, "damaged_files": damaged})
    else:
        say(f"verified {len(reports)} files, {records} good records: {problems} problems in {damaged} files")
    return ExitCode.PROBLEMS_FOUND if problems else ExitCode.OK
