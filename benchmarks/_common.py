"""Shared plumbing for our side of the benchmarks: where things live, running a peer script in
its virtualenv, turning measurements into rows, and writing ``benchmarks/out/<name>.json``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .peers._common import Measurement

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "benchmarks" / "out"
# Generated data, the s3rver install and its data directories: gitignored, outside the package.
WORK_DIR = Path(os.environ.get("TFR_BENCH_DIR", str(REPO / ".bench")))
VENVS = Path(os.environ.get("TFR_BENCH_VENVS", "/work/.venvs"))
TF_VENV = VENVS / "tf"
PEERS_VENV = VENVS / "peers"
# ray[data] + tensorflow-cpu, for ray.data.read_tfrecords (benchmarks/bench_ray.py).
RAY_TF_VENV = VENVS / "ray-tf"
PEER_TIMEOUT = 600.0


@dataclass
class Settings:
    """``rounds`` alternations of our side and the peers' side, ``repeats`` timed runs of each
    reader per round (so each figure is a median of rounds x repeats runs)."""

    quick: bool
    repeats: int
    rounds: int = 1

    @property
    def label(self) -> str:
        return "quick" if self.quick else "full"


def parse_settings(description: str, argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small data, fewer repeats (< 2 min in all)")
    add_settings_arguments(parser)
    return settings_from(parser.parse_args(argv))


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per reader per round (default 2, quick 3)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="alternations of ours and the peers (default 3, quick 1)"
    )


def settings_from(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    repeats = args.repeats if args.repeats is not None else (3 if quick else 2)
    rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    return Settings(quick=quick, repeats=max(1, repeats), rounds=max(1, rounds))


@dataclass
class Row:
    """One line of the results table."""

    bench: str
    reader: str
    scenario: str
    kind: str  # "ours" | "peer" | "ceiling"
    records: int
    bytes: int
    median_seconds: float
    records_per_s: float | None
    mb_per_s: float
    cpu_s_per_gb: float | None = None
    first_record_s: float | None = None
    peak_rss_mb: float | None = None
    rss_delta_mb: float | None = None
    repeats: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def to_row(bench: str, kind: str, m: Measurement) -> Row:
    seconds = statistics.median(m.seconds)
    cpu = statistics.median(m.cpu_seconds) if m.cpu_seconds else None
    first = statistics.median(m.first_record_seconds) if m.first_record_seconds else None
    return Row(
        bench=bench,
        reader=m.reader,
        scenario=m.scenario,
        kind=kind,
        records=m.records,
        bytes=m.bytes,
        median_seconds=round(seconds, 4),
        records_per_s=round(m.records / seconds) if m.records else None,
        mb_per_s=round(m.bytes / seconds / 1e6, 1),
        cpu_s_per_gb=round(cpu / (m.bytes / 1e9), 3) if cpu is not None and m.bytes else None,
        first_record_s=round(first, 4) if first is not None else None,
        peak_rss_mb=m.peak_rss_mb,
        rss_delta_mb=m.rss_delta_mb,
        repeats=len(m.seconds),
        extra=m.extra,
    )


@dataclass
class Target:
    """A goal for one of our figures. ``kind``: "ratio" (ours / baseline >= target, the baseline
    measured in the same run), "min" (ours >= target) or "max" (ours < target)."""

    name: str
    ours: float | None
    baseline: float | None
    unit: str
    target: float
    kind: str = "ratio"
    baseline_name: str = ""
    ratio: float | None = None
    met: bool | None = None

    def __post_init__(self) -> None:
        if self.ours is None:
            return
        if self.kind == "ratio":
            if self.baseline:
                self.ratio = round(self.ours / self.baseline, 3)
                self.met = self.ratio >= self.target
        elif self.kind == "min":
            self.met = self.ours >= self.target
        elif self.kind == "max":
            self.met = self.ours < self.target
        else:
            raise ValueError(f"unknown target kind {self.kind!r}")

    @property
    def goal(self) -> str:
        if self.kind == "ratio":
            return f">= {self.target:g}x {self.baseline_name}"
        return f"{'>=' if self.kind == 'min' else '<'} {self.target:g} {self.unit}"


@dataclass(frozen=True)
class CpuSnapshot:
    """Machine-wide busy CPU seconds (/proc/stat) and those of this process and its waited-for
    children (the peer scripts, the S3 server once stopped), at one moment."""

    wall: float
    machine_busy: float
    ours: float

    @staticmethod
    def now() -> CpuSnapshot:
        times = os.times()
        try:
            with open("/proc/stat") as stat:
                fields = [int(x) for x in stat.readline().split()[1:]]
            # user nice system idle iowait irq softirq steal: everything but idle and iowait
            busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            busy = float("nan")
        ours = times.user + times.system + times.children_user + times.children_system
        return CpuSnapshot(wall=time.monotonic(), machine_busy=busy, ours=ours)

    def others_share(self, later: CpuSnapshot) -> float | None:
        """The share of all CPUs that other processes used between the two snapshots. Call it
        after every child was waited for, or their CPU counts as someone else's."""
        capacity = (later.wall - self.wall) * (os.cpu_count() or 1)
        if capacity <= 0 or later.machine_busy != later.machine_busy:  # nan: no /proc/stat
            return None
        others = (later.machine_busy - self.machine_busy) - (later.ours - self.ours)
        return round(min(1.0, max(0.0, others / capacity)), 3)


@dataclass
class Results:
    bench: str
    settings: Settings
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    # On a 2-core machine any other work (a test suite next door) skews absolute figures, so
    # the report shows how much CPU other processes took while this benchmark ran.
    started: CpuSnapshot = field(default_factory=lambda: CpuSnapshot.now())
    others_share: float | None = None

    def add(self, kind: str, measurement: Measurement) -> Row:
        row = to_row(self.bench, kind, measurement)
        self.rows.append(row)
        rate = f"{row.records_per_s:>9,} rec/s" if row.records_per_s else " " * 15
        print(
            f"  [{self.bench}] {row.reader:<44} {row.scenario:<26} {rate} {row.mb_per_s:>8.1f} MB/s"
            + (f"  rss+{row.rss_delta_mb:.0f} MB" if row.rss_delta_mb is not None else ""),
            flush=True,
        )
        return row

    def note(self, text: str) -> None:
        if text in self.notes:  # peers run once per round and repeat their notes
            return
        print(f"  [{self.bench}] note: {text}", flush=True)
        self.notes.append(text)

    def target(self, target: Target) -> None:
        self.targets.append(target)
        verdict = {True: "met", False: "MISSED", None: "n/a"}[target.met]
        ratio = f" ratio {target.ratio:.2f}" if target.ratio is not None else ""
        print(
            f"  [{self.bench}] target {target.name}: {target.ours} {target.unit}{ratio} ({target.goal}): {verdict}",
            flush=True,
        )

    def find(self, reader: str, scenario: str | None = None) -> Row | None:
        for row in self.rows:
            if row.reader == reader and (scenario is None or row.scenario == scenario):
                return row
        return None

    def write(self) -> Path:
        self.others_share = self.started.others_share(CpuSnapshot.now())
        if self.others_share is not None and self.others_share > 0.1:
            self.note(
                f"machine busy: other processes used {self.others_share:.0%} of the CPUs during this benchmark "
                "(absolute figures are low; same-run ratios suffer less)"
            )
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUT_DIR / f"{self.bench}.json"
        payload = {
            "bench": self.bench,
            "mode": self.settings.label,
            "repeats": self.settings.repeats * self.settings.rounds,
            "rounds": self.settings.rounds,
            "rows": [asdict(r) for r in self.rows],
            "targets": [asdict(t) for t in self.targets],
            "notes": self.notes,
            "versions": self.versions,
            "others_cpu_share": self.others_share,
        }
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"  [{self.bench}] wrote {path.relative_to(REPO)}", flush=True)
        return path


@dataclass
class PeerOutput:
    measurements: list[Measurement]
    versions: dict[str, str]
    notes: list[str]


def venv_python(venv: Path) -> Path | None:
    python = venv / "bin" / "python"
    return python if python.exists() else None


def run_peer(venv: Path, module: str, args: dict[str, Any], *, env: dict[str, str] | None = None) -> PeerOutput:
    """Runs ``benchmarks.peers.<module>`` with the venv's python and parses its JSON line.

    Raises RuntimeError with the tail of stderr when the venv is missing or the script fails;
    callers turn that into a note and go on.
    """
    python = venv_python(venv)
    if python is None:
        raise RuntimeError(f"no virtualenv at {venv} (run benchmarks/setup_peers.sh)")
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO), **(env or {})}
    try:
        done = subprocess.run(
            [str(python), "-m", f"benchmarks.peers.{module}", json.dumps(args)],
            cwd=REPO,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=PEER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"peer {module} timed out after {PEER_TIMEOUT:.0f} s") from exc
    line = next((x for x in reversed(done.stdout.splitlines()) if x.startswith("{")), None)
    if done.returncode != 0 or line is None:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"peer {module} exited {done.returncode}: {tail[-400:]}")
    payload = json.loads(line)
    return PeerOutput(
        measurements=[Measurement(**m) for m in payload["measurements"]],
        versions=dict(payload.get("versions", {})),
        notes=list(payload.get("notes", [])),
    )


def collect_peer(
    results: Results, venv: Path, module: str, args: dict[str, Any], env: dict[str, str] | None = None
) -> list[tuple[str, Measurement]]:
    """Runs a peer once and returns its (kind, measurement) pairs; its versions and notes go to
    ``results``, and a failure becomes a note (and no measurements)."""
    print(f"  [{results.bench}] peer {module} ...", flush=True)
    try:
        output = run_peer(venv, module, args, env=env)
    except RuntimeError as exc:
        results.note(f"skipped peer {module}: {exc}")
        return []
    results.versions.update(output.versions)
    for text in output.notes:
        results.note(text)
    return [("ceiling" if m.extra.get("ceiling") else "peer", m) for m in output.measurements]


Side = Callable[[int], list[tuple[str, Measurement]]]


def alternate(results: Results, sides: list[Side]) -> None:
    """Runs each side (a callable taking a repeat count, returning (kind, measurement) pairs)
    once per round, reversing the order every other round, and adds the merged measurements
    to ``results``. Ours and the peers run in different processes, so they cannot share
    rounds of one loop; alternating them keeps a busy spell of the machine from landing on
    one side only."""
    merged: dict[tuple[str, str], tuple[str, Measurement]] = {}
    for round_index in range(results.settings.rounds):
        order = sides if round_index % 2 == 0 else list(reversed(sides))
        for side in order:
            for kind, m in side(results.settings.repeats):
                key = (m.reader, m.scenario)
                if key not in merged:
                    merged[key] = (kind, m)
                    continue
                total = merged[key][1]
                total.seconds += m.seconds
                total.cpu_seconds += m.cpu_seconds
                total.first_record_seconds += m.first_record_seconds
                total.records, total.bytes = m.records, m.bytes
                total.peak_rss_mb = _max(total.peak_rss_mb, m.peak_rss_mb)
                total.rss_delta_mb = _max(total.rss_delta_mb, m.rss_delta_mb)
                total.extra.update(m.extra)
    for kind, m in merged.values():
        results.add(kind, m)


def _max(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


def own_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("boto3", "crc32c", "numpy", "protobuf"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    sys.path.insert(0, str(REPO))
    try:
        import tfrecord_s3

        versions["tfrecord_s3"] = str(getattr(tfrecord_s3, "__version__", "?"))
    except ImportError:
        pass
    return versions
