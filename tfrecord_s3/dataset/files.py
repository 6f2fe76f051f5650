"""Turn TensorFlow-style ``filenames`` (a path, a glob, or a list of both) into paths."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import ConfigError, ObjectNotFoundError
from ..index.format import INDEX_SUFFIX
from ..storage import filesystem

if TYPE_CHECKING:
    from ..config import S3Config

_GLOB_CHARS = frozenset("*?[")


def is_pattern(path: str) -> bool:
    # Only the key/file part may hold wildcards; "s3://" itself has none.
    return any(c in _GLOB_CHARS for c in path)


def resolve_filenames(filenames: str | Iterable[str], *, config: S3Config | None = None) -> list[str]:
    """Expand globs (each sorted) and keep plain paths, in the order given.

    A glob that matches nothing raises ObjectNotFoundError naming it: an empty epoch that
    trains on nothing is never what the caller meant.
    """
    entries = [filenames] if isinstance(filenames, (str, bytes)) else list(filenames)
    paths: list[str] = []
    for entry in entries:
        if isinstance(entry, bytes):
            entry = entry.decode()
        if not isinstance(entry, str) or not entry:
            raise ConfigError(f"filenames must be non-empty strings, got {entry!r}")
        if is_pattern(entry):
            # Our index sidecars sit beside the data and would match "train-*": never data.
            matches = [m for m in filesystem.glob(entry, config=config) if not m.endswith(INDEX_SUFFIX)]
            if not matches:
                raise ObjectNotFoundError(f"no files match {entry}", path=entry, operation="glob")
            paths.extend(matches)
        else:
            paths.append(entry)
    return paths
