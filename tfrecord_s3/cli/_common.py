"""What the subcommands share: expanding paths and globs, output helpers, progress bars."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

from ..dataset.files import is_pattern, resolve_filenames

T = TypeVar("T")

COMPRESSION_CHOICES = {"auto": "auto", "none": None, "gzip": "GZIP", "zlib": "ZLIB"}

# The dataset's rules, so the CLI and the library agree on what a pattern is and what it matches.
has_glob = is_pattern


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Each argument as itself, or the sorted files its glob matches (in argument order).

    A glob that matches nothing is an error (ObjectNotFoundError), never an empty run."""
    return resolve_filenames(list(paths))


def add_compression_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compression",
        type=str.lower,  # GZIP as TensorFlow spells it, gzip as the help does
        choices=sorted(COMPRESSION_CHOICES),
        default="auto",
        help="compression of the files (default: auto, by extension: .gz GZIP, .zz/.zlib ZLIB)",
    )


def compression_of(args: argparse.Namespace) -> str | None:
    return COMPRESSION_CHOICES[args.compression]


def print_json(obj: Any) -> None:
    # allow_nan=False: every line must be valid JSON; callers turn nan/inf into strings first.
    say(json.dumps(obj, allow_nan=False, ensure_ascii=False))


# The bars on screen now: a line printed while one is shown goes through tqdm, which clears
# the bar, prints the line and draws the bar again below it (no bar glued to a result).
_shown: list[Any] = []


def say(line: str = "", *, flush: bool = False, file: TextIO | None = None) -> None:
    """Print ``line`` to stdout (or ``file``), through the progress bar when one is shown."""
    out = sys.stdout if file is None else file
    if _shown:
        tqdm.write(line, file=out)
    else:
        out.write(line + "\n")
    if flush:
        out.flush()


def progress_enabled() -> bool:
    """Progress bars only for a person watching: stdout is a terminal."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A tqdm bar on stderr when stdout is a terminal; nothing at all otherwise. While it is
    shown, print with :func:`say` (or :func:`print_json`) so that lines do not cut into it."""

    def __init__(self, total: int | None, unit: str, desc: str) -> None:
        self._bar: Any = None
        if progress_enabled():
            self._bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)
            _shown.append(self._bar)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def note(self, **values: object) -> None:
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            _shown.remove(self._bar)
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def with_progress(items: list[T], unit: str, desc: str) -> Iterator[T]:
    with Progress(len(items), unit, desc) as bar:
        for item in items:
            yield item
            bar.update()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {value}")
    return value


def close_iterator(iterator: Iterator[Any]) -> None:
    """Close a record iterator left early (open_records returns a generator owning its file)."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
