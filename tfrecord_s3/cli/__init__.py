"""The ``tfrecord-s3`` command line (also ``python -m tfrecord_s3``).

Every subcommand takes local paths, ``file://`` and ``s3://`` URLs and globs, configured by
the same environment variables as the library (AWS_REGION, S3_ENDPOINT, S3_USE_HTTPS,
S3_VERIFY_SSL, ...). Errors print one line, ``tfrecord-s3: error: <path>: <what>``, and exit
with a code per kind of failure (see :class:`ExitCode`); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from ._errors import PROG, ExitCode, error_line, exit_code_for

__all__ = ["ExitCode", "build_parser", "main"]

_EPILOG = """\
exit codes: 0 ok, 1 verify found problems, 2 usage or configuration error, 3 not found,
4 access denied, 5 corrupt or truncated record, 6 other storage error, 7 record does not
decode, 70 internal error, 130 interrupted, 141 stdout closed early (e.g. piped into `head`).
environment: AWS_REGION, S3_ENDPOINT, S3_USE_HTTPS, S3_VERIFY_SSL, S3_CONNECT_TIMEOUT_MSEC,
S3_REQUEST_TIMEOUT_MSEC, S3_CA_FILE, and boto3's credential chain (AWS_PROFILE, ...)."""


def _global_options(defaults: bool) -> argparse.ArgumentParser:
    # Accepted before and after the subcommand; SUPPRESS keeps a subcommand's copy from
    # overwriting a value given before it.
    parser = argparse.ArgumentParser(add_help=False)
    default_bool = False if defaults else argparse.SUPPRESS
    default_count = 0 if defaults else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=default_bool, help="show tracebacks on errors")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default_count,
        help="log more (-v info, -vv debug, -vvv botocore too)",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    from . import bench, count, demo, head, ls, stat, uploads, verify

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, verify and benchmark TFRecord files on local disk and S3.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [_global_options(defaults=False)]
    for module in (stat, ls, count, head, verify, bench, uploads, demo):
        module.add_parser(subparsers, parents)
    return parser


def _version() -> str:
    from .. import __version__

    return __version__


def configure_logging(verbosity: int) -> None:
    """The library never configures logging; the command line does, on stderr."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    # Third-party loggers stay at WARNING unless asked for (-vvv): botocore at DEBUG is a flood.
    root.setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    logging.getLogger("tfrecord_s3").setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        code = int(args.run(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # `tfrecord-s3 head ... | head -1`: the reader left; stop quietly, as `cat` does.
        _silence_stdout()
        return ExitCode.BROKEN_PIPE
    except (Exception, KeyboardInterrupt) as exc:
        if args.debug:
            traceback.print_exc()
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        print(error_line(exc), file=sys.stderr)
        return exit_code_for(exc)


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
