"""Helpers shared by the peer scripts and our own benchmarks. Standard library only: these run
inside the peer virtualenvs too, where neither numpy nor tfrecord_s3 is installed."""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


class PeakRSS:
    """Samples RSS on a daemon thread; ``delta`` is the peak above the RSS at ``start``.

    ru_maxrss cannot do this: it is the peak over the whole process life, so a second
    measurement in the same process would inherit the first one's peak.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start_bytes = 0
        self.peak_bytes = 0

    def __enter__(self) -> PeakRSS:
        self.start_bytes = self.peak_bytes = rss_bytes()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, rss_bytes())

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak_bytes = max(self.peak_bytes, rss_bytes())

    @property
    def delta_mb(self) -> float:
        return (self.peak_bytes - self.start_bytes) / 1e6

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 1e6


@dataclass
class Measurement:
    """One reader on one input, timed ``len(seconds)`` times. Units: bytes are file bytes
    (frames included), MB = 1e6 bytes; rates are computed by the report from the median."""

    reader: str
    scenario: str
    records: int
    bytes: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    first_record_seconds: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    rss_delta_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def timed(measurement: Measurement) -> Iterator[None]:
    """Appends the wall and CPU (all threads of this process) seconds of the block."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    measurement.seconds.append(time.perf_counter() - wall)
    measurement.cpu_seconds.append(time.process_time() - cpu)


Plan = tuple[str, str, Callable[[], tuple[int, int]]]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (another one too), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerCPU:
    """Records the CPU seconds the local S3 server spends serving each reader's runs: on two
    cores server and client compete, so a reader that costs the server more is slower too."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.spent: dict[str, list[float]] = {}

    def wrap(self, reader: str, run: Callable[[], tuple[int, int]]) -> Callable[[], tuple[int, int]]:
        if self.pid is None:
            return run
        pid, spent = self.pid, self.spent.setdefault(reader, [])

        def wrapped() -> tuple[int, int]:
            before = process_cpu_seconds(pid)
            result = run()
            spent.append(process_cpu_seconds(pid) - before)
            return result

        return wrapped

    def annotate(self, measurement: Measurement) -> None:
        """Stores the median server CPU seconds per GB read in ``measurement.extra``."""
        spent = self.spent.get(measurement.reader)
        if spent and measurement.bytes:
            median = statistics.median(spent)
            measurement.extra["server_cpu_s_per_gb"] = round(median / (measurement.bytes / 1e9), 3)


def fetch_stats(stats_url: str, *, reset: bool = False) -> dict[str, Any]:
    """The shaping proxy's counters (benchmarks/shaper.py); ``reset`` restarts its peaks."""
    with urllib.request.urlopen(stats_url + ("reset" if reset else "stats"), timeout=10) as reply:
        payload: dict[str, Any] = json.loads(reply.read())
    return payload


class NetworkStats:
    """What each reader's runs cost on the shaped network: requests (GET, HEAD, LIST) and
    503s per run, connections opened per run, and the peak of connections open and of
    requests in flight at once, read from the shaping proxy around every run."""

    _COUNTS = ("requests", "gets", "heads", "lists", "slowdowns", "connections")

    def __init__(self, stats_url: str | None) -> None:
        self.url = stats_url
        self.runs: dict[str, list[dict[str, int]]] = {}

    def wrap(self, reader: str, run: Callable[[], tuple[int, int]]) -> Callable[[], tuple[int, int]]:
        if self.url is None:
            return run
        url, runs = self.url, self.runs.setdefault(reader, [])

        def wrapped() -> tuple[int, int]:
            before = fetch_stats(url, reset=True)
            result = run()
            after = fetch_stats(url)
            cost = {key: after[key] - before[key] for key in self._COUNTS}
            cost["peak_connections"] = after["peak_connections"]
            cost["peak_in_flight"] = after["peak_in_flight"]
            runs.append(cost)
            return result

        return wrapped

    def annotate(self, measurement: Measurement) -> None:
        """Stores the median of each figure over the reader's runs in ``measurement.extra``."""
        runs = self.runs.get(measurement.reader)
        if runs:
            measurement.extra["network"] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def measure_interleaved(plans: list[Plan], repeats: int, *, track_memory: bool = True) -> list[Measurement]:
    """Runs each plan (reader, scenario, run -> (records, bytes)) once per round, ``repeats``
    rounds, so slow drift of the machine (page-cache writeback, a noisy neighbour) hits every
    reader alike and ratios between them stay fair. Memory: the highest peak of any run, and
    the most RSS any run added above its own start."""
    results = [Measurement(reader=reader, scenario=scenario, records=0, bytes=0) for reader, scenario, _ in plans]
    for _ in range(repeats):
        for result, (_reader, _scenario, run) in zip(results, plans, strict=True):
            tracker = PeakRSS()
            with tracker if track_memory else _null(), timed(result):
                result.records, result.bytes = run()
            if track_memory:
                result.peak_rss_mb = round(max(result.peak_rss_mb or 0.0, tracker.peak_mb), 1)
                result.rss_delta_mb = round(max(result.rss_delta_mb or 0.0, tracker.delta_mb), 1)
    return results


def measure(
    reader: str,
    scenario: str,
    run: Callable[[], tuple[int, int]],
    repeats: int,
    *,
    track_memory: bool = True,
    warmup: bool = False,
) -> Measurement:
    """Runs ``run`` (returning records, bytes) ``repeats`` times. ``warmup`` runs it once
    untimed first (client set-up, connection pools, lazy imports)."""
    if warmup:
        run()
    return measure_interleaved([(reader, scenario, run)], repeats, track_memory=track_memory)[0]


@contextmanager
def _null() -> Iterator[None]:
    yield


def read_args() -> dict[str, Any]:
    """The JSON object a peer script gets as its only argument."""
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: python -m {sys.argv[0]} '<json arguments>'")
    args = json.loads(sys.argv[1])
    if not isinstance(args, dict):
        raise SystemExit("the argument must be a JSON object")
    return args


def emit(measurements: list[Measurement], versions: dict[str, str], notes: list[str]) -> None:
    """Prints the one result line the parent parses (the last line of stdout starting '{')."""
    payload = {"measurements": [asdict(m) for m in measurements], "versions": versions, "notes": notes}
    sys.stdout.write("\n" + json.dumps(payload) + "\n")
    sys.stdout.flush()


def finish(code: int = 0) -> None:
    """Ends a peer process without interpreter teardown: TensorFlow with tensorflow-io aborts
    at exit once it touched s3:// ("pure virtual method called", tensorflow/io#2039)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
