"""Other Python S3 clients reading one object from the local server: s3fs ``open().read()``
and s3torchconnector's reader (when installed). Run in the peers venv.

Arguments: {"bucket", "key", "bytes", "endpoint", "region", "repeats", "chunk"}
"""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any

from benchmarks.peers._common import Measurement, NetworkStats, ServerCPU, emit, finish, measure, read_args


def main() -> None:
    args = read_args()
    repeats = int(args["repeats"])
    bucket, key, size = str(args["bucket"]), str(args["key"]), int(args["bytes"])
    chunk = int(args["chunk"])
    url = f"s3://{bucket}/{key}"
    results: list[Measurement] = []
    server_cpu = ServerCPU(args.get("server_pid"))
    net = NetworkStats(args.get("stats_url"))
    notes: list[str] = []
    versions: dict[str, str] = {}

    import s3fs

    versions["s3fs"] = importlib.metadata.version("s3fs")
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": args["endpoint"]}, use_listings_cache=False)

    def s3fs_read() -> tuple[int, int]:
        with fs.open(url, "rb") as handle:
            data = handle.read()
        return 0, len(data)

    fs.info(url)  # warm-up: client, credentials, connection
    name = "s3fs open().read()"
    results.append(measure(name, "s3 single object", net.wrap(name, server_cpu.wrap(name, s3fs_read)), repeats))

    try:
        from s3torchconnector import S3ClientConfig, S3MapDataset
    except ImportError as exc:
        notes.append(f"s3torchconnector not importable ({exc}); skipped")
    else:
        versions["s3torchconnector"] = importlib.metadata.version("s3torchconnector")
        dataset: Any = S3MapDataset.from_objects(
            url,
            region=args["region"],
            endpoint=args["endpoint"],
            s3client_config=S3ClientConfig(force_path_style=True),
        )

        def s3torch_read() -> tuple[int, int]:
            reader = dataset[0]
            total = 0
            while piece := reader.read(chunk):
                total += len(piece)
            return 0, total

        dataset[0].read(1)  # warm-up: the native client and its connection
        name = f"s3torchconnector S3Reader.read({chunk >> 20} MiB)"
        m = measure(name, "s3 single object", net.wrap(name, server_cpu.wrap(name, s3torch_read)), repeats)
        for _ in range(3):  # time to the first byte, from a fresh reader
            start = time.perf_counter()
            dataset[0].read(1)
            m.first_record_seconds.append(time.perf_counter() - start)
        results.append(m)
    for m in results:
        if m.bytes != size:
            notes.append(f"{m.reader} read {m.bytes} bytes, expected {size}")
    for m in results:
        server_cpu.annotate(m)
        net.annotate(m)
    emit(results, versions, notes)
    finish()


if __name__ == "__main__":
    main()
