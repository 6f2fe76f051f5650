"""Random access, index building and sharded writing (short): writes benchmarks/RANDOM_RESULTS.md.

    python -m benchmarks.bench_random [--quick] [--network loopback|s3-region|s3-far]

- ``TFRecordMapDataset``: ``ds[i]`` one record at a time, and ``__getitems__`` with 256
  random indices (a true global shuffle) and with 256 consecutive ones (coalesced into one
  read), on a local file and on one object of a local s3rver (loopback);
- PyPI ``tfrecord``'s index-based reader (``tfrecord_iterator(path, index, shard=(i, n))``
  with n = the number of records reads exactly record i), local file, peers virtualenv;
- ``tfrecord-s3 index`` (``build_index``) MB/s, local and S3;
- ``ShardedWriter`` MB/s, local and S3, against boto3's ``upload_fileobj`` of the same bytes.

Each figure is the median of a few runs; the S3 server shares the machine's cores.
``--network`` puts benchmarks/shaper.py between the S3 clients (ours and boto3) and s3rver;
each network's figures get a section of their own in RANDOM_RESULTS.md, the others kept.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ._common import PEERS_VENV, REPO, CpuSnapshot
from ._data import example_file
from ._servers import environment, network, s3rver
from .shaper import PROFILES

BUCKET = "bench-random"
OUT = REPO / "benchmarks" / "RANDOM_RESULTS.md"
BATCH = 256
_SECTION = "<!-- bench_random network={} -->"

_PEER = """
import json, random, sys, time
from tfrecord import reader
path, index, n, lookups, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rates = []
for r in range(repeats):
    rng = random.Random(r)
    started = time.perf_counter()
    for _ in range(lookups):
        i = rng.randrange(n)
        for record in reader.tfrecord_iterator(path, index, shard=(i, n)):
            pass
    rates.append(lookups / (time.perf_counter() - started))
print(json.dumps(rates))
"""


def median_rate(run: Callable[[], int], repeats: int) -> float:
    """Median of ``units / seconds`` over ``repeats`` runs of ``run`` (which returns units)."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        units = run()
        rates.append(units / (time.perf_counter() - started))
    return statistics.median(rates)


def random_access(path: str, records: int, lookups: int, repeats: int) -> dict[str, float]:
    import tfrecord_s3 as tfr

    ds = tfr.TFRecordMapDataset(path)
    assert len(ds) == records
    rng = random.Random(0)

    def single() -> int:
        for _ in range(lookups):
            ds[rng.randrange(records)]
        return lookups

    def shuffled() -> int:
        for _ in range(max(lookups // BATCH, 4)):
            ds.__getitems__([rng.randrange(records) for _ in range(BATCH)])
        return max(lookups // BATCH, 4) * BATCH

    def consecutive() -> int:
        for _ in range(max(lookups // BATCH, 4)):
            start = rng.randrange(records - BATCH)
            ds.__getitems__(range(start, start + BATCH))
        return max(lookups // BATCH, 4) * BATCH

    out = {
        "ds[i]": median_rate(single, repeats),
        f"__getitems__ {BATCH} random": median_rate(shuffled, repeats),
        f"__getitems__ {BATCH} consecutive": median_rate(consecutive, repeats),
    }
    ds.close()
    return out


def index_build(path: str, size: int, repeats: int) -> float:
    from tfrecord_s3.index import build_index

    return median_rate(lambda: (build_index(path), size)[1], repeats) / 1e6


def sharded_write(pattern: str, data: bytes, repeats: int, **options: object) -> float:
    import tfrecord_s3 as tfr
    from tfrecord_s3.records.framing import iter_frames

    records = list(iter_frames(io.BytesIO(data)))

    def run() -> int:
        with tfr.ShardedWriter(pattern, **options) as writer:  # type: ignore[arg-type]
            for record in records:
                writer.write(record)
        return len(data)

    return median_rate(run, repeats) / 1e6


def pypi_tfrecord(path: str, records: int, lookups: int, repeats: int) -> float | None:
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        return None
    index = path + ".pypi.idx"
    from tfrecord_s3.index import build_index, encode_text_index

    Path(index).write_bytes(encode_text_index(build_index(path)))
    done = subprocess.run(
        [str(python), "-c", _PEER, path, index, str(records), str(lookups), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
    )
    rates: list[float] = json.loads(done.stdout)
    return statistics.median(rates)


def write_section(profile: str, text: str) -> str:
    """RANDOM_RESULTS.md with ``profile``'s section replaced by ``text`` (or added), the other
    networks' sections kept, in the order of benchmarks/shaper.py's profiles."""
    old = OUT.read_text() if OUT.exists() else ""
    found: dict[str, str] = {}
    for chunk in old.split("<!-- bench_random network=")[1:]:
        name, _, body = chunk.partition(" -->\n")
        found[name] = body
    if old and not found:  # written before sections existed: all of it is loopback's
        found["loopback"] = old
    found[profile] = text
    return "".join(_SECTION.format(name) + "\n" + found[name] for name in PROFILES if name in found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--network", default="loopback", choices=tuple(PROFILES), help="benchmarks/shaper.py profile")
    args = parser.parse_args(argv)
    profile = PROFILES[args.network]
    where = "S3 loopback" if not profile.shaped else f"S3 {profile.name}"
    mb = 16 if args.quick else 64
    repeats = 3 if args.quick else 5
    lookups = 1000 if args.quick else 4000
    started = CpuSnapshot.now()
    source = example_file(mb, seed=11, name="random")
    data = source.path.read_bytes()
    rows: list[tuple[str, str, str]] = []
    ratios: list[str] = []
    print(f"  [random] {source.records} records, {source.bytes / 1e6:.0f} MB, network {args.network}", flush=True)
    local = random_access(str(source.path), source.records, lookups, repeats)
    for name, rate in local.items():
        rows.append((f"local, {name}", f"{rate:,.0f} rec/s", "tfrecord-s3"))
    peer = pypi_tfrecord(str(source.path), source.records, max(lookups // 20, 50), repeats)
    if peer is not None:
        rows.append(("local, one record by index", f"{peer:,.0f} rec/s", "PyPI tfrecord, shard=(i, n)"))
        ratios.append(f"local `ds[i]` / PyPI tfrecord's index reader (local): {local['ds[i]'] / peer:,.0f}x")
    build = index_build(str(source.path), source.bytes, repeats)
    rows.append(("local, index build", f"{build:,.0f} MB/s", "tfrecord-s3"))
    with tempfile.TemporaryDirectory() as tmp:
        rate = sharded_write(f"{tmp}/s-{{index:03d}}-of-{{count:03d}}.tfrecord", data, repeats, max_bytes=8 << 20)
        rows.append(("local, ShardedWriter 8 MB shards + indexes", f"{rate:,.0f} MB/s", "tfrecord-s3"))
    with s3rver() as direct, network(direct, args.network) as server:
        server.upload(BUCKET, {"random.tfrecord": source.path})
        url = f"s3://{BUCKET}/random.tfrecord"
        with environment(server.env_ours()):
            s3_lookups = max(lookups // 10, 200)
            remote = random_access(url, source.records, s3_lookups, repeats)
            for name, rate in remote.items():
                rows.append((f"{where}, {name}", f"{rate:,.0f} rec/s", "tfrecord-s3"))
            if peer is not None:
                ratios.append(
                    f"{where} `ds[i]` / PyPI tfrecord's index reader on a local file (it reads no S3): "
                    f"{remote['ds[i]'] / peer:,.1f}x"
                )
            build = index_build(url, source.bytes, repeats)
            rows.append((f"{where}, index build", f"{build:,.0f} MB/s", "tfrecord-s3"))
            renamed = sharded_write(
                f"s3://{BUCKET}/out/s-{{index:03d}}-of-{{count:03d}}.tfrecord", data, repeats, max_bytes=32 << 20
            )
            rows.append(
                (
                    f"{where}, ShardedWriter 32 MB shards + indexes, renamed at close",
                    f"{renamed:,.0f} MB/s",
                    "tfrecord-s3",
                )
            )
            shards = -(-len(data) // (32 << 20))
            final = sharded_write(
                f"s3://{BUCKET}/out/n-{{index:03d}}-of-{{count:03d}}.tfrecord",
                data,
                repeats,
                max_bytes=32 << 20,
                num_shards=shards,
            )
            rows.append(
                (f"{where}, ShardedWriter, num_shards given (final names)", f"{final:,.0f} MB/s", "tfrecord-s3")
            )
            client = server.client()

            def upload() -> int:
                client.upload_fileobj(io.BytesIO(data), BUCKET, "out/boto3.bin")
                return len(data)

            boto = median_rate(upload, repeats) / 1e6
            rows.append((f"{where}, same bytes in one object", f"{boto:,.0f} MB/s", "boto3 upload_fileobj"))
            ratios.append(f"{where} ShardedWriter (final names) / boto3 upload_fileobj: {final / boto:.2f}x")
            ratios.append(f"{where} ShardedWriter (renamed at close) / boto3 upload_fileobj: {renamed / boto:.2f}x")
    others = started.others_share(CpuSnapshot.now())
    load = f"; other processes used {others:.0%} of the CPUs meanwhile" if others is not None else ""
    command = "python -m benchmarks.bench_random" + (" --quick" if args.quick else "")
    if profile.shaped:
        command += f" --network {profile.name}"
    lines = [
        "# Random access, index build, sharded write" + (f", network `{profile.name}`" if profile.shaped else ""),
        "",
        f"`{command}`: {source.records} ~1 KB Examples "
        f"({source.bytes / 1e6:.0f} MB), medians of {repeats} runs, s3rver on 127.0.0.1 sharing the cores{load}.",
        *(
            [
                "",
                f"S3 clients (ours and boto3) go through benchmarks/shaper.py: {profile.describe()}. "
                "The shaper forwards request bodies unpaced, so uploads pay its first-byte time per "
                "request but not its bandwidth. Local rows are in the same run for the ratios.",
            ]
            if profile.shaped
            else []
        ),
        "",
        "| what | rate | who |",
        "| --- | ---: | --- |",
        *(f"| {what} | {rate} | {who} |" for what, rate, who in rows),
        "",
        *(["Same-run ratios:", "", *(f"- {r}" for r in ratios), ""] if ratios else []),
    ]
    text = "\n".join(lines)
    OUT.write_text(write_section(profile.name, text))
    print(text)


if __name__ == "__main__":
    main()
