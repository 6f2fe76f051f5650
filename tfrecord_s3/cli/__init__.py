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

from ._common import say
from ._errors import PROG, ExitCode, error_line, exit_code_for

__all__ = ["ExitCode", "build_parser", "main", "version_text"]

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
    from . import bench, count, demo, head, index, ls, stat, verify

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, verify and benchmark TFRecord files on local disk and S3.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(defaults=True)],
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the version and whether the compiled kernels are in use"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [_global_options(defaults=False)]
    for module in (stat, ls, count, head, verify, index, bench, demo):
        module.add_parser(subparsers, parents)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: computed only when asked (it imports the kernels), then exit."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        sys.stdout.write(version_text() + "\n")
        parser.exit()


def version_text() -> str:
    """The version, and for each compiled kernel whether this process uses it."""
    from .. import __version__
    from ..decode import _gather
    from ..records import framing

    lines = [f"{PROG} {__version__}"]
    kernels = (
        ("tfrecord_s3.records._native (record framing)", framing._HAVE_NATIVE, framing.native_available()),
        ("tfrecord_s3.decode._native (Example decoding)", _gather._HAVE_NATIVE, _gather.native_available()),
    )
    for name, built, used in kernels:
        if used:
            state = "in use"
        elif built:
            state = "built, but off (TFRECORD_S3_PURE_PYTHON is set): pure Python"
        else:
            state = "not built: pure Python (slower; install from source with a C compiler to build it)"
        lines.append(f"  {name}: {state}")
    return "\n".join(lines)


class _BarAwareHandler(logging.Handler):
    """Log lines on stderr, printed through a progress bar when one is shown."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            say(self.format(record), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def configure_logging(verbosity: int) -> None:
    """The library never configures logging; the command line does, on stderr."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _BarAwareHandler()
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
