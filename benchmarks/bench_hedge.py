"""Tail latency: one object read block by block over a network with stragglers (a share of
responses whose head comes seconds late), hedged GETs on against off, in the same run.

    python -m benchmarks.bench_hedge [--quick] [--network s3-region] [--stragglers 0.02:2]

Reports, per setting: MB/s (median of the timed runs), and over the blocks of every run the
consumer's wait per block (p50 / p99 / max: how long ``read`` blocked on a block not yet
there), GETs, hedges, and the stragglers the shaper injected. Both settings read through the
same shaper in turn, so each sees the same network and machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ._common import Results, Settings, add_settings_arguments, own_versions, settings_from
from ._data import raw_file
from ._servers import environment, network, s3rver
from .peers._common import Measurement

BUCKET = "bench"
KEY = "hedge/raw.bin"
URL = f"s3://{BUCKET}/{KEY}"
SCENARIO = "s3 single object, stragglers"
#: Blocks of 8 MiB (AWS's advice for ranged GETs): more GETs per run, so more stragglers met.
BLOCK = 8 << 20
#: 2% of responses 2 s late: ~1 straggler per two reads of the full-size object.
STRAGGLERS = "0.02:2"
SETTINGS = (("ours, hedged GETs (default)", 0.5), ("ours, hedging off", None))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _read(hedge_after: float | None, size: int) -> tuple[float, float, list[float], dict[str, int]]:
    """(seconds, CPU seconds, wait per block, counters) of one read of the object through a
    fresh stream."""
    from tfrecord_s3.config import S3Config
    from tfrecord_s3.storage.s3_files import open_s3_stream

    config = S3Config.from_env(block_size=BLOCK, hedge_after=hedge_after)
    waits: list[float] = []
    buffer = bytearray(BLOCK)
    began, cpu = time.perf_counter(), time.process_time()
    with open_s3_stream(URL, config=config) as stream:
        got = 0
        while got < size:
            asked = time.perf_counter()
            count = stream.readinto(buffer)  # at most the rest of the current block
            waits.append(time.perf_counter() - asked)
            if not count:
                raise RuntimeError(f"{URL}: ended at byte {got} of {size}")
            got += count
        counters = stream.counters()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return seconds, cpu, waits, {"requests": counters.requests, "hedges": counters.hedges, "retries": counters.retries}


def run(settings: Settings, stragglers: str = STRAGGLERS) -> Results:
    results = Results(settings.bench_name("hedge"), settings)
    results.versions.update(own_versions())
    file = raw_file(48 if settings.quick else 256)
    runs = 3 if settings.quick else max(6, settings.repeats * settings.rounds * 2)
    with s3rver() as server, network(server, settings.network, stragglers=stragglers):
        results.versions["s3rver"] = "3.7.1"
        results.versions["network"] = server.network.describe()
        server.upload(BUCKET, {KEY: file.path})
        print(f"  [hedge] {URL}: {file.bytes / 1e6:.0f} MB; network: {server.network.describe()}", flush=True)
        measured = {name: Measurement(name, SCENARIO, 0, file.bytes) for name, _ in SETTINGS}
        waits: dict[str, list[float]] = {name: [] for name, _ in SETTINGS}
        totals: dict[str, dict[str, int]] = {
            name: {"requests": 0, "hedges": 0, "stragglers": 0} for name, _ in SETTINGS
        }
        with environment(server.env_ours()):
            _read(0.5, file.bytes)  # warm-up: page cache, client, latency samples
            for turn in range(runs):
                # Alternate which setting goes first, so a busy spell is shared.
                order = SETTINGS if turn % 2 == 0 else SETTINGS[::-1]
                for name, hedge_after in order:
                    before = server.network_stats() or {}
                    seconds, cpu, block_waits, counters = _read(hedge_after, file.bytes)
                    after = server.network_stats() or {}
                    measured[name].seconds.append(seconds)
                    measured[name].cpu_seconds.append(cpu)
                    waits[name] += block_waits
                    totals[name]["requests"] += counters["requests"]
                    totals[name]["hedges"] += counters["hedges"]
                    totals[name]["stragglers"] += after.get("stragglers", 0) - before.get("stragglers", 0)
        for name, _ in SETTINGS:
            m = measured[name]
            w = waits[name]
            m.extra["tail"] = {
                "runs": len(m.seconds),
                "blocks": len(w),
                "wait_p50_s": round(statistics.median(w), 4),
                "wait_p99_s": round(_percentile(w, 0.99), 4),
                "wait_max_s": round(max(w), 4),
                "slowest_run_s": round(max(m.seconds), 3),
                **totals[name],
            }
            results.add("ours", m)
            print(f"  [hedge] {name}: {m.extra['tail']}", flush=True)
        results.note(f"each setting read the object {runs} times, in turns; waits are over all their blocks")
    results.write()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller object, 3 runs per setting")
    add_settings_arguments(parser)
    parser.add_argument("--stragglers", default=STRAGGLERS, help="the shaper's FRACTION:SECONDS")
    args = parser.parse_args(argv)
    run(settings_from(args), args.stragglers)


if __name__ == "__main__":
    main()
