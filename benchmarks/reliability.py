"""Every fault scenario of RELIABILITY.md and the fault storm, with the figures nobody has to
take on faith: ``python -m benchmarks.reliability`` writes benchmarks/RELIABILITY_RESULTS.md.

Self-contained: starts its own moto S3 server (a subprocess on 127.0.0.1) and a FaultProxy
in front of it, and stops both (by PID / by handle) at the end. ``--network s3-region`` (or
``s3-far``) puts the shaping proxy of benchmarks/shaper.py between the fault proxy and moto,
so every reply also waits a first-byte latency and is paced like S3's; its report replaces
only that network's section of the results file. Each scenario runs twice in
the same invocation, without faults (the baseline) and with them, both under tracemalloc so
their wall times compare. The scenarios themselves (and their checks) are the ones the test
suite runs: tests/reliability/scenarios_*.py.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks._servers import shaper
from benchmarks.shaper import PROFILES
from tests.faults.proxy import FaultProxy
from tests.reliability import scenarios_network as net
from tests.reliability import scenarios_object as obj
from tests.reliability.harness import Outcome
from tests.reliability.scenarios_storm import storm
from tests.reliability.world import World, admin_client, environment, reader_env
from tfrecord_s3.storage import s3_client

RESULTS = Path(__file__).resolve().parent / "RELIABILITY_RESULTS.md"
Scenario = Callable[..., Outcome]


def scenarios(quick: bool) -> list[tuple[str, Scenario, str, str]]:
    """(title, function, compression, variant) for every row of the report."""
    rows: list[tuple[str, Scenario, str, str]] = []
    for compression in ("", "GZIP"):
        rows += [
            ("N1 reset before headers", net.n1, compression, "get+first-get"),
            ("N2 reset after N body bytes", net.n2, compression, "reset"),
            ("N3 clean close after N bytes", net.n3, compression, "close"),
            ("N4 reset at every offset", net.n4, compression, "sweep"),
            ("N5 stall past the read timeout", net.n5, compression, "stall"),
            ("N6 503 SlowDown x3", net.n6, compression, "slowdown"),
            ("N7 500 on every GET", net.n7, compression, "500-storm"),
        ]
        for variant in ("full_200_at_0", "full_200", "partial_200", "wrong_content_range"):
            rows.append(("N8 bad reply", net.n8, compression, variant))
        variants = ("data", "length", "crc", "skip_record") if not compression else ("data",)
        rows += [("N9 bit flip", net.n9, compression, v) for v in variants]
        rows += [("C1 overwritten mid-read", obj.c1, compression, "other_size")]
        if not compression:
            rows.append(("C1 overwritten mid-read", obj.c1, compression, "same_size"))
        rows += [
            ("C2 deleted mid-read", obj.c2, compression, "deleted"),
            ("C3 empty object", obj.c3, compression, "empty"),
            ("C3 object < one block", obj.c3, compression, "small"),
            ("A1 ExpiredToken once", obj.a1, compression, "expired_token"),
            ("A2 AccessDenied (GET)", obj.a2, compression, "get"),
            ("A2 AccessDenied (HEAD)", obj.a2, compression, "head"),
            ("A3 secrets at DEBUG", obj.a3, compression, "debug-logs"),
        ]
    records = 60 if quick else 200
    for compression in ("", "GZIP"):
        rows.append(
            ("Storm 5% of GETs, 8 files, interleave 4", partial(storm, records=records), compression, "dataset")
        )
        rows.append(("Storm 5% of GETs, DataLoader 2 workers", partial(storm, records=records), compression, "torch"))
    return rows


@dataclass
class Row:
    title: str
    outcome: Outcome
    clean_seconds: float
    peak_mib: float
    threads_leaked: int
    sockets_leaked: int


def socket_count() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
    return count


def settle(probe: Callable[[], int], target: int, timeout: float = 3.0) -> int:
    deadline = time.monotonic() + timeout
    value = probe()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.05)
        value = probe()
    return value


def measure(world: World, function: Scenario, compression: str, variant: str, inject: bool) -> tuple[Outcome, int]:
    world.reset()
    tracemalloc.start()
    try:
        result = function(world, compression, variant, inject)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def forget_traceback(error: BaseException | None) -> None:
    """Keep the error's type and message for the report, drop the frames it holds (they hold
    the connections of the failed requests, which would otherwise look leaked)."""
    while error is not None:
        chained = error.__cause__ or error.__context__
        error.__traceback__ = error.__cause__ = error.__context__ = None
        error = chained


def quiescent() -> tuple[int, int]:
    """(threads, sockets) once clients are closed and garbage is collected."""
    s3_client.clear_client_cache()
    gc.collect()
    return threading.active_count(), socket_count()


def run_row(world: World, title: str, function: Scenario, compression: str, variant: str) -> Row:
    clean, _ = measure(world, function, compression, variant, False)
    forget_traceback(clean.error)
    world.proxy.wait_idle(5.0)
    threads, sockets = quiescent()
    faulty, peak = measure(world, function, compression, variant, True)
    forget_traceback(faulty.error)
    world.proxy.wait_idle(5.0)
    quiescent()
    leaked_threads = settle(threading.active_count, threads) - threads
    leaked_sockets = settle(socket_count, sockets) - sockets
    if not clean.ok:
        faulty.problems = [f"baseline: {p}" for p in clean.problems] + faulty.problems
    return Row(title, faulty, clean.seconds, peak / 2**20, max(leaked_threads, 0), max(leaked_sockets, 0))


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server in a subprocess on a free loopback port; stopped by PID."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fmt_bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def report(rows: list[Row], seconds: float) -> str:
    head = (
        "| scenario | variant | data | result | faults injected / survived | records expected / emitted "
        "| lost | dup | corrupt emitted | out of order | withheld by typed error | bytes re-downloaded "
        "| clean s | faulty s | overhead | peak MiB | threads / sockets leaked | error raised |"
    )
    lines = [head, "|" + " --- |" * 18]
    for row in rows:
        o = row.outcome
        t = o.tally
        overhead = f"{o.seconds - row.clean_seconds:+.2f} s"
        lost = f"{t.lost}" if o.strict else f"{t.lost} (skip mode)"
        error = type(o.error).__name__ if o.error is not None else "-"
        lines.append(
            f"| {row.title} | {o.variant} | {o.compression or 'raw'} | {'pass' if o.ok else '**FAIL**'} "
            f"| {o.injected} / {o.survived} | {t.expected} / {t.emitted} | {lost} | {t.duplicated} | {t.corrupt} "
            f"| {t.out_of_order} | {t.withheld} | {fmt_bytes(o.redownloaded)} | {row.clean_seconds:.2f} "
            f"| {o.seconds:.2f} | {overhead} | {row.peak_mib:.1f} | {row.threads_leaked} / {row.sockets_leaked} "
            f"| {error} |"
        )
    failed = [row for row in rows if not row.outcome.ok]
    strict_bad = [
        row
        for row in rows
        if (row.outcome.strict and row.outcome.tally.lost) or row.outcome.tally.duplicated or row.outcome.tally.corrupt
    ]
    out = [
        "# Reliability results",
        "",
        "Written by `python -m benchmarks.reliability` (do not edit by hand). Every scenario of",
        "`../shared/design/RELIABILITY.md` runs through a fault proxy in front of a local moto S3",
        "server, with the library configured through TensorFlow's variables (`S3_ENDPOINT` at the proxy;",
        "2 KiB blocks, 1 KiB for the storm, so a ~10 KiB object takes several ranged GETs). Records carry",
        "their own (file, index) and a seeded payload, so every count below is exact.",
        "",
        f"Total {seconds:.0f} s on {os.cpu_count()} CPUs, Python {sys.version.split()[0]}.",
        "",
        f"**{len(rows) - len(failed)} of {len(rows)} scenario rows pass.** Rows with lost (strict mode), "
        f"duplicated or corrupt emitted records: **{len(strict_bad)}**.",
        "",
        *lines,
        "",
        "Columns: *faults injected* = proxy log entries with a fault applied; *survived* = all of them when",
        "the scenario met every expectation of RELIABILITY.md (identical output, or the specified typed",
        "error at the specified file and offset), else 0. *withheld* = records after the point where a read",
        "stopped with a typed error (reported, not lost). *lost* counts records silently missing. *bytes",
        "re-downloaded* = body bytes the proxy sent twice. *clean s / faulty s* = wall time of the same read",
        "without and with the faults (both under tracemalloc; N4 sums one read per offset).",
        "*peak MiB* = tracemalloc peak of the faulty",
        "run (reader, proxy buffers; moto runs in its own process). *leaked* = threads and sockets of",
        "this process above the count before the faulty run, once clients are closed and garbage is",
        "collected (the connection of a failed GET is closed when the error's traceback goes away).",
        "",
    ]
    if failed:
        out += ["## Failures", ""]
        out += [f"- {row.title}: {row.outcome.describe()}" for row in failed]
        out.append("")
    return "\n".join(out)


#: Rows measured outside this script (real servers, frozen servers, soaks) follow this line
#: in RESULTS and survive a rewrite.
KEPT_MARKER = "<!-- measured outside benchmarks.reliability: kept on rewrite -->"


def _kept_tail() -> str:
    old = RESULTS.read_text() if RESULTS.exists() else ""
    at = old.find(KEPT_MARKER)
    return "" if at < 0 else "\n" + old[at:]


def network_section(profile: str, text: str) -> str:
    """The results of a run under ``profile``, as the section of RESULTS it replaces."""
    table = text[text.index("Total ") :]  # the time, the verdict, the table and its legend
    return "\n".join(
        [
            _begin(profile),
            f"## Under the `{profile}` network",
            "",
            f"Written by `python -m benchmarks.reliability --network {profile}`: the same scenarios and checks,",
            f"with the shaping proxy (benchmarks/shaper.py: {PROFILES[profile].describe()}) between the",
            "fault proxy and moto, and the library's defaults otherwise (adaptive transfer scheduler, growing",
            "blocks, hedged GETs).",
            "",
            table.rstrip(),
            _end(profile),
        ]
    )


def _begin(profile: str) -> str:
    return f"<!-- network {profile}: written by benchmarks.reliability --network {profile} -->"


def _end(profile: str) -> str:
    return f"<!-- end of network {profile} -->"


def write_network_section(profile: str, text: str) -> None:
    """Replace (or append) ``profile``'s section; the loopback rewrite keeps it (it lies past
    KEPT_MARKER)."""
    old = RESULTS.read_text() if RESULTS.exists() else KEPT_MARKER + "\n"
    section = network_section(profile, text)
    begin, end = old.find(_begin(profile)), old.find(_end(profile))
    if begin >= 0 and end > begin:
        new = old[:begin] + section + old[end + len(_end(profile)) :]
    else:
        if KEPT_MARKER not in old:
            old = old.rstrip("\n") + "\n\n" + KEPT_MARKER + "\n"
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(new)


@contextlib.contextmanager
def shaped(upstream: str, profile: str) -> Iterator[str]:
    """``upstream`` as the fault proxy sees it: moto itself, or the shaper in front of it."""
    if not PROFILES[profile].shaped:
        yield upstream
        return
    with shaper(int(upstream.rsplit(":", 1)[1]), profile) as port:
        yield f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller storm (60 records per file instead of 200)")
    parser.add_argument("--only", default="", help="run rows whose title starts with this (e.g. N4)")
    parser.add_argument("--network", default="loopback", choices=sorted(PROFILES), help="see benchmarks/shaper.py")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("tfrecord_s3").setLevel(logging.ERROR)  # retries are expected here
    started = time.perf_counter()
    rows: list[Row] = []
    with (
        moto_server() as upstream,
        shaped(upstream, args.network) as behind,
        tempfile.TemporaryDirectory(prefix="tfr-rel-") as tmp,
    ):
        empty = Path(tmp) / "aws-empty"
        empty.write_text("")
        admin = admin_client(upstream)
        proxy = FaultProxy(behind).start()
        try:
            with environment(reader_env(proxy.port, str(empty))):
                world = World.create(proxy, admin)
                for title, function, compression, variant in scenarios(args.quick):
                    if args.only and not title.startswith(args.only):
                        continue
                    began = time.perf_counter()
                    row = run_row(world, title, function, compression, variant)
                    status = "pass" if row.outcome.ok else "FAIL"
                    took = time.perf_counter() - began
                    print(f"{status} {title} [{variant}, {compression or 'raw'}] ({took:.1f} s)", flush=True)
                    rows.append(row)
        finally:
            proxy.stop()
            admin.close()
    text = report(rows, time.perf_counter() - started)
    if not args.only and PROFILES[args.network].shaped:
        write_network_section(args.network, text)
        print(f"wrote the {args.network} section of {RESULTS}")
    elif not args.only:
        RESULTS.write_text(text + _kept_tail())
        print(f"wrote {RESULTS}")
    else:
        print(text)
    return 0 if all(r.outcome.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
