"""Runs every layer benchmark, then writes RESULTS.md and throughput.png.

    python -m benchmarks [--quick] [--repeats N] [--only core,s3,dataset] [--report-only]

Peers come from the virtualenvs made by ``benchmarks/setup_peers.sh``; a peer that is not
installed, or a layer of ours that is not importable yet, is skipped with a note.
"""

from __future__ import annotations

import argparse
import time
import traceback

from . import bench_core, bench_dataset, bench_s3, report
from ._common import add_settings_arguments, settings_from

_BENCHES = {"core": bench_core.run, "s3": bench_s3.run, "dataset": bench_dataset.run}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small data, fewer repeats (< 2 min)")
    add_settings_arguments(parser)
    parser.add_argument("--only", default=",".join(_BENCHES), help="comma-separated subset of core,s3,dataset")
    parser.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md/PNG from benchmarks/out")
    args = parser.parse_args(argv)
    if not args.report_only:
        settings = settings_from(args)
        for name in [n.strip() for n in args.only.split(",") if n.strip()]:
            if name not in _BENCHES:
                parser.error(f"unknown benchmark {name!r}; choose from {', '.join(_BENCHES)}")
            print(f"== {name} ({settings.label}, {settings.rounds} rounds x {settings.repeats} repeats)", flush=True)
            started = time.perf_counter()
            try:
                _BENCHES[name](settings)
            except Exception:  # one broken layer must not hide the others' figures
                traceback.print_exc()
                print(f"== {name} FAILED (see above); its previous results, if any, stay in the report")
            print(f"== {name} took {time.perf_counter() - started:.0f} s", flush=True)
    report.main()


if __name__ == "__main__":
    main()
