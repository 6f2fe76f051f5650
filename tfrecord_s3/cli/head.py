"""``tfrecord-s3 head PATHS... -n N``: the first N records as JSON lines.

Each line is ``{"path", "offset", ...}`` plus ``"features"`` (an Example), ``"context"`` and
``"feature_lists"`` (a SequenceExample) or ``"raw"`` (base64 of the record bytes).
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Iterator
from typing import Any

from ..errors import DecodeError
from ..records.framing import FRAME_OVERHEAD
from ..records.reader import open_records
from ._common import add_compression_option, close_iterator, compression_of, expand_paths, non_negative_int, print_json
from ._jsonify import to_json
from ._record_kind import EXAMPLE, RAW, SEQUENCE_EXAMPLE, record_kind

HELP = "print the first N records as JSON lines (decoded Example / SequenceExample, or --raw)"

_TYPES = {"auto": None, "example": EXAMPLE, "sequence": SEQUENCE_EXAMPLE}


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("head", help=HELP, description=HELP, parents=parents)
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or globs (local, file://, s3://)")
    parser.add_argument(
        "-n", "--records", type=non_negative_int, default=10, metavar="N", help="how many records in all (default 10)"
    )
    parser.add_argument("--raw", action="store_true", help="print the raw record bytes as base64, undecoded")
    parser.add_argument(
        "--type",
        choices=sorted(_TYPES),
        default="auto",
        help="how to decode: auto (by the record's fields; undecodable records print raw), "
        "example or sequence (a record that does not decode is an error)",
    )
    add_compression_option(parser)
    parser.set_defaults(run=run)


def records_of(paths: list[str], compression: str | None, limit: int) -> Iterator[tuple[str, int, bytes]]:
    """(path, offset, record) for the first ``limit`` records across ``paths`` in order."""
    left = limit
    for path in paths:
        if left <= 0:
            return
        reader = open_records(path, compression)
        offset = 0  # a record's offset: the sum of the frames before it (16 bytes + data each)
        try:
            for record in reader:
                yield path, offset, record
                offset += FRAME_OVERHEAD + len(record)
                left -= 1
                if left <= 0:
                    return
        finally:
            close_iterator(reader)


def decode_record(record: bytes, kind: str | None, path: str, offset: int) -> dict[str, Any]:
    """The JSON fields of one record. ``kind`` None means guess, printing it raw if it does not
    decode; a forced kind lets the DecodeError (naming path and offset) through."""
    from ..decode import parse_example, parse_sequence_example

    guessed = kind or record_kind(record)
    try:
        if guessed == EXAMPLE:
            return {"features": to_json(parse_example(record, path=path, offset=offset))}
        if guessed == SEQUENCE_EXAMPLE:
            context, feature_lists = parse_sequence_example(record, path=path, offset=offset)
            return {"context": to_json(context), "feature_lists": to_json(feature_lists)}
    except DecodeError:
        if kind is not None:
            raise
    return {"raw": base64.b64encode(record).decode("ascii")}


def run(args: argparse.Namespace) -> int:
    paths = expand_paths(args.paths)
    kind = RAW if args.raw else _TYPES[args.type]
    for path, offset, record in records_of(paths, compression_of(args), args.records):
        line: dict[str, Any] = {"path": path, "offset": offset, "length": len(record)}
        if kind == RAW:
            line["raw"] = base64.b64encode(record).decode("ascii")
        else:
            line.update(decode_record(record, kind, path, offset))
        print_json(line)
    return 0
