"""Files read a few at a time, results handed back in the order of the list.

Many small S3 objects read one after another cost one first-byte latency each; a few in
flight at once overlap those. Results still come back in list order, so output does not
depend on which file finished first, and the first failure (in list order) is raised where
the sequential loop would have raised it.
"""

from __future__ import annotations

import argparse
import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ._common import positive_int

T = TypeVar("T")
R = TypeVar("R")

#: Files read at once by default: enough to hide S3's first-byte latency for small objects,
#: few enough that threads and connections stay cheap (boto3's pool holds 10).
DEFAULT_JOBS = 8


class Stopped(Exception):
    """Raised inside a worker asked to stop (an earlier file failed, or Ctrl-C)."""


def add_jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=DEFAULT_JOBS,
        help=f"files read at once (default {DEFAULT_JOBS}); output stays in file order",
    )


def in_order(work: Callable[[T, threading.Event], R], items: Sequence[T], jobs: int) -> Generator[R, None, None]:
    """``work(item, stop)`` for each item, up to ``jobs`` at once, yielded in item order.

    At most ``jobs`` items are in flight (started but not yet yielded). When the caller stops
    early, or an item's work raises, ``stop`` is set so running work can end soon (it may
    raise :class:`Stopped`), and nothing further is started; the failure is re-raised."""
    if jobs <= 1 or len(items) <= 1:
        never = threading.Event()
        for item in items:
            yield work(item, never)
        return
    stop = threading.Event()
    pending: deque[Future[R]] = deque()
    upcoming = iter(items)
    pool = ThreadPoolExecutor(min(jobs, len(items)), thread_name_prefix="tfrecord-s3-cli")
    try:
        for item in upcoming:
            pending.append(pool.submit(work, item, stop))
            if len(pending) >= jobs:
                break
        while pending:
            result = pending.popleft().result()
            for item in upcoming:
                pending.append(pool.submit(work, item, stop))
                break
            yield result
    finally:
        stop.set()
        for future in pending:
            future.cancel()
        # Running work sees `stop` at its next record: joining is quick.
        pool.shutdown(wait=True)
