"""``tfrecord-s3 uploads s3://bucket/prefix [--abort]``: incomplete multipart uploads."""

from __future__ import annotations

import argparse
from typing import Any

from ..storage.s3_uploads import abort_upload, list_uploads
from ._common import print_json

HELP = "list (or --abort) incomplete multipart uploads under an S3 prefix; their parts cost storage"


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("uploads", help=HELP, description=HELP, parents=parents)
    parser.add_argument("prefix", metavar="PREFIX", help="s3://bucket/prefix (every key that starts with it)")
    parser.add_argument("--abort", action="store_true", help="abort each one listed (its parts are deleted)")
    parser.add_argument("--json", action="store_true", help="one JSON object per upload")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    uploads = list_uploads(args.prefix)
    for upload in uploads:
        if args.abort:
            abort_upload(upload)
        when = upload.initiated.isoformat() if upload.initiated else "?"
        if args.json:
            print_json({"url": upload.url, "upload_id": upload.upload_id, "initiated": when, "aborted": args.abort})
        else:
            print(f"{when}  {upload.url}  {upload.upload_id}{'  aborted' if args.abort else ''}")
    if not args.json:
        verb = "aborted" if args.abort else "incomplete"
        print(f"{len(uploads)} {verb} upload{'s' if len(uploads) != 1 else ''} under {args.prefix}")
    return 0
