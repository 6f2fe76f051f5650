"""Exit codes of the command line, and the one-line message printed for an error."""

from __future__ import annotations

import enum

from ..errors import (
    AccessDeniedError,
    ConfigError,
    DecodeError,
    IndexFileError,
    ObjectNotFoundError,
    RecordError,
    StorageError,
)

PROG = "tfrecord-s3"


class ExitCode(enum.IntEnum):
    """One code per kind of failure, so scripts can tell them apart."""

    OK = 0
    PROBLEMS_FOUND = 1  # verify: at least one damaged record or file
    USAGE = 2  # bad arguments or a bad environment value (ConfigError); argparse uses 2 too
    NOT_FOUND = 3  # no such file, key or bucket; a pattern that matches nothing
    ACCESS_DENIED = 4
    CORRUPT = 5  # a CRC mismatch, a truncated record, a damaged compressed stream, a stale index
    STORAGE = 6  # any other storage failure: connection, retries exhausted, object changed
    DECODE = 7  # a record that is not a valid Example / SequenceExample
    INTERNAL = 70  # a bug: rerun with --debug for the traceback
    INTERRUPTED = 130  # Ctrl-C
    BROKEN_PIPE = 141  # the reader of stdout went away (as a shell reports SIGPIPE)


def exit_code_for(exc: BaseException) -> ExitCode:
    # Order matters: the library's classes also derive from the builtin ones below.
    if isinstance(exc, ConfigError):
        return ExitCode.USAGE
    if isinstance(exc, (ObjectNotFoundError, FileNotFoundError)):
        return ExitCode.NOT_FOUND
    if isinstance(exc, (AccessDeniedError, PermissionError)):
        return ExitCode.ACCESS_DENIED
    if isinstance(exc, DecodeError):
        return ExitCode.DECODE
    if isinstance(exc, (RecordError, IndexFileError)):
        return ExitCode.CORRUPT
    if isinstance(exc, (StorageError, OSError)):
        return ExitCode.STORAGE
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL


def error_line(exc: BaseException) -> str:
    """``tfrecord-s3: error: <path>: <what>`` on one line (the path only if the message lacks it)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    path = getattr(exc, "path", None) or getattr(exc, "filename", None)
    if path and str(path) not in message:
        message = f"{path}: {message}"
    if exit_code_for(exc) is ExitCode.INTERNAL:
        message = f"{type(exc).__name__}: {message} (internal error; rerun with --debug for the traceback)"
    return f"{PROG}: error: {message}"
