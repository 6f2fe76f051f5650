"""Runs every layer benchmark, then writes RESULTS.md and throughput.png.

    python -m benchmarks [--quick] [--repeats N] [--rounds N] [--report-only]
                         [--only core,s3,tls,dataset,small,ray,hedge]
                         [--network loopback|s3-region|s3-far]

``--network`` puts a shaping proxy (benchmarks/shaper.py: first-byte latency, bandwidth per
connection and per NIC, 503 SlowDown past a request rate) between every client and the server;
its results go to ``benchmarks/out/<layer>@<profile>.json`` and their own sections of RESULTS.md.

Each layer runs in a fresh process, so its memory figures carry nothing of another layer's
(torch imported by one, a server's buffers in another). Peers come from the virtualenvs made
by ``benchmarks/setup_peers.sh``; a peer that is not installed, or a layer of ours that is not
importable yet, is skipped with a note.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from . import report
from ._common import REPO, add_settings_arguments, settings_from

_BENCHES = ("core", "s3", "tls", "dataset", "small", "ray", "hedge")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, fewer repeats (< 2 min)")
    add_settings_arguments(parser)
    parser.add_argument("--only", default=",".join(_BENCHES), help="comma-separated subset of " + ",".join(_BENCHES))
    parser.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md/PNG from benchmarks/out")
    args = parser.parse_args(argv)
    if not args.report_only:
        settings = settings_from(args)
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        for name in names:
            if name not in _BENCHES:
                parser.error(f"unknown benchmark {name!r}; choose from {', '.join(_BENCHES)}")
        passed = ["--repeats", str(settings.repeats), "--rounds", str(settings.rounds), "--network", settings.network]
        if settings.network != "loopback":
            # The local layers have no network; a shaped run is about the S3 layers.
            names = [n for n in names if n in report.SHAPED]
        if settings.quick:
            passed.append("--quick")
        for name in names:
            print(f"== {name} ({settings.label}, {settings.rounds} rounds x {settings.repeats} repeats)", flush=True)
            started = time.perf_counter()
            # One broken layer must not hide the others' figures: a failure is reported and the
            # previous results of that layer, if any, stay in the report.
            done = subprocess.run([sys.executable, "-m", f"benchmarks.bench_{name}", *passed], cwd=REPO, check=False)
            if done.returncode != 0:
                print(f"== {name} FAILED (exit {done.returncode}; see above)", flush=True)
            print(f"== {name} took {time.perf_counter() - started:.0f} s", flush=True)
    report.main()


if __name__ == "__main__":
    main()
