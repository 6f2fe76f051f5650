"""s3torchconnector's ``S3IterableDataset.from_prefix`` reading every object under a prefix
whole (one GET per object, one object after another). Run in the peers venv.

Arguments: {"prefix", "objects", "bytes", "endpoint", "region", "repeats", "scenario",
            "server_pid", "stats_url"}
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from benchmarks.peers._common import Measurement, NetworkStats, ServerCPU, emit, finish, measure, read_args


def main() -> None:
    args = read_args()
    notes: list[str] = []
    results: list[Measurement] = []
    versions: dict[str, str] = {}
    try:
        from s3torchconnector import S3ClientConfig, S3IterableDataset
    except ImportError as exc:
        emit([], versions, [f"s3torchconnector not importable ({exc}); skipped"])
        finish()
        return
    versions["s3torchconnector"] = importlib.metadata.version("s3torchconnector")
    objects, size = int(args["objects"]), int(args["bytes"])
    dataset: Any = S3IterableDataset.from_prefix(
        str(args["prefix"]),
        region=str(args["region"]),
        endpoint=str(args["endpoint"]),
        s3client_config=S3ClientConfig(force_path_style=True),
        transform=lambda reader: len(reader.read()),
    )

    def read_all() -> tuple[int, int]:
        count = total = 0
        for got in dataset:
            count += 1
            total += got
        if (count, total) != (objects, size):
            raise RuntimeError(f"read {count} objects, {total} bytes; expected {objects}, {size}")
        return 0, total

    server_cpu = ServerCPU(args.get("server_pid"))
    net = NetworkStats(args.get("stats_url"))
    name = "s3torchconnector S3IterableDataset.from_prefix"
    m = measure(name, str(args["scenario"]), net.wrap(name, server_cpu.wrap(name, read_all)), int(args["repeats"]))
    server_cpu.annotate(m)
    net.annotate(m)
    results.append(m)
    emit(results, versions, notes)
    finish()


if __name__ == "__main__":
    main()
