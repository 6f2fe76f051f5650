"""Our library's pieces, looked up at run time: layers land at different times, and a section
whose piece is missing is skipped with a printed note instead of failing the whole run."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ._common import REPO

# `python -m benchmarks` from the repo root finds the package anyway; this covers other cwds.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


class Missing(Exception):
    """A piece of the library is not importable yet."""


def piece(module: str, *names: str) -> tuple[Any, ...]:
    """``names`` from ``module``; raises :class:`Missing` naming what is absent."""
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        raise Missing(f"{module} not importable ({exc})") from exc
    found = []
    for name in names:
        value = getattr(loaded, name, None)
        if value is None:
            raise Missing(f"{module}.{name} not available yet")
        found.append(value)
    return tuple(found)


def feature_spec(spec: dict[str, tuple[str, list[int]]]) -> dict[str, Any]:
    """FEATURE_SPEC as our FixedLenFeature objects."""
    (fixed,) = piece("tfrecord_s3.decode", "FixedLenFeature")
    dtypes = {"bytes": "bytes", "int64": "int64", "float32": "float32"}
    return {name: fixed(shape, dtypes[dtype]) for name, (dtype, shape) in spec.items()}


class SchedulerWindow:
    """The window our process's transfer scheduler reached in each of a reader's runs (its
    peak and where it ended), and the peak of GETs in flight: stored in ``extra["scheduler"]``."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict[str, int]]] = {}

    def wrap(self, reader: str, run: Any) -> Any:
        try:
            (process_scheduler,) = piece("tfrecord_s3.storage.scheduler", "process_scheduler")
        except Missing:
            return run
        runs = self.runs.setdefault(reader, [])

        def wrapped() -> Any:
            scheduler = process_scheduler(1)
            scheduler.reset_peaks()
            result = run()
            runs.append(
                {
                    "window": scheduler.window,
                    "peak_window": scheduler.peak_window,
                    "peak_in_flight": scheduler.peak_in_flight,
                    "peak_held_mb": round(scheduler.peak_held / 1e6),
                }
            )
            return result

        return wrapped

    def annotate(self, measurement: Any) -> None:
        runs = self.runs.get(measurement.reader)
        if runs:
            measurement.extra["scheduler"] = runs[-1]


class Instruments:
    """What each reader's runs cost besides time, recorded around every run: the S3 server's
    CPU, the shaped network's counters (requests, connections) and, for our readers, the
    window our scheduler reached. ``wrap`` a run, ``annotate`` its measurement."""

    def __init__(self, server: Any) -> None:
        from .peers._common import NetworkStats, ServerCPU

        self.server_cpu = ServerCPU(server.process.pid)
        self.net = NetworkStats(server.stats_url)
        self.window = SchedulerWindow()

    def wrap(self, reader: str, run: Any) -> Any:
        return self.window.wrap(reader, self.net.wrap(reader, self.server_cpu.wrap(reader, run)))

    def wrap_plans(self, plans: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
        return [(reader, scenario, self.wrap(reader, run)) for reader, scenario, run in plans]

    def annotate(self, measurement: Any) -> None:
        self.server_cpu.annotate(measurement)
        self.net.annotate(measurement)
        if measurement.reader.startswith("ours"):
            self.window.annotate(measurement)
