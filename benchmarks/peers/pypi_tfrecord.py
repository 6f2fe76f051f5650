"""PyPI ``tfrecord`` (1.14): its iterator (no CRC check at all) over a local file and over s3fs,
and its decoding loader (per-record protobuf -> numpy). Run in the peers venv.

Its iterator takes only a local path (it calls ``io.open`` and ``os.path.getsize``), so for S3
we hand it s3fs's file object through a small shim: what a user would have to do too.

Arguments: {"local": {"path", "bytes", "records"} | null, "gzip": {"path", "bytes"} | null,
            "s3": {"url", "bytes", "endpoint", "server_pid"} | null, "spec", "decode_records": int, "repeats"}
"""

from __future__ import annotations

import importlib.metadata
import itertools
import types
from typing import Any

from benchmarks.peers._common import Measurement, NetworkStats, ServerCPU, emit, finish, measure, read_args

_TYPES = {"bytes": "byte", "int64": "int", "float32": "float"}


def _s3_shim(fs: Any) -> types.SimpleNamespace:
    """Stands in for the ``io`` and ``os`` modules inside ``tfrecord.reader``."""
    return types.SimpleNamespace(
        open=lambda path, mode="rb": fs.open(path, mode),
        path=types.SimpleNamespace(getsize=fs.size),
    )


def main() -> None:
    args = read_args()
    from tfrecord import reader

    repeats = int(args["repeats"])
    results: list[Measurement] = []
    notes: list[str] = []

    def iterate(path: str, size: int, compression: str | None = None) -> tuple[int, int]:
        records = 0
        for _ in reader.tfrecord_iterator(path, compression_type=compression):
            records += 1
        return records, size

    local = args.get("local")
    if local:
        path, size = str(local["path"]), int(local["bytes"])
        results.append(
            measure("PyPI tfrecord iterator (no CRC)", "1 KB Examples", lambda: iterate(path, size), repeats)
        )
        description = {name: _TYPES[dtype] for name, (dtype, _shape) in args["spec"].items()}
        limit = int(args["decode_records"])

        def decode() -> tuple[int, int]:
            records = sum(1 for _ in itertools.islice(reader.tfrecord_loader(path, None, description), limit))
            return records, size * records // int(local["records"])

        results.append(measure("PyPI tfrecord decoding loader", "1 KB Examples", decode, repeats))
        numeric = args.get("torch_features")
        if numeric:
            import torch.utils.data
            from tfrecord.torch.dataset import TFRecordDataset

            torch_description = {name: description[name] for name in numeric}

            def data_loader() -> tuple[int, int]:
                loader = torch.utils.data.DataLoader(
                    TFRecordDataset(path, None, torch_description), batch_size=256, num_workers=0
                )
                records = 0
                for batch in itertools.islice(loader, -(-limit // 256)):
                    records += len(batch[numeric[0]])
                return records, size * records // int(local["records"])

            results.append(
                measure(
                    "PyPI tfrecord torch TFRecordDataset + DataLoader",
                    "1 KB Examples, torch, 4 numeric features",
                    data_loader,
                    repeats,
                )
            )
        notes.append(f"PyPI tfrecord decoding loader timed on the first {limit} records only (it is slow)")
    gz = args.get("gzip")
    if gz:
        gz_path, gz_size = str(gz["path"]), int(gz["bytes"])
        results.append(
            measure(
                "PyPI tfrecord iterator (no CRC)",
                "1 KB Examples, GZIP",
                lambda: iterate(gz_path, gz_size, "gzip"),
                repeats,
            )
        )
    s3 = args.get("s3")
    if s3:
        import s3fs

        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3["endpoint"]}, use_listings_cache=False)
        shim = _s3_shim(fs)
        reader.io, reader.os = shim, shim
        url, size = str(s3["url"]), int(s3["bytes"])
        fs.info(url)  # warm-up: client, credentials, connection
        name = "PyPI tfrecord iterator over s3fs (no CRC)"
        server_cpu = ServerCPU(s3.get("server_pid"))
        net = NetworkStats(args.get("stats_url"))
        m = measure(
            name, "s3 single object", net.wrap(name, server_cpu.wrap(name, lambda: iterate(url, size))), repeats
        )
        server_cpu.annotate(m)
        net.annotate(m)
        results.append(m)
    versions = {name: importlib.metadata.version(name) for name in ("tfrecord", "s3fs")}
    emit(results, versions, notes)
    finish()


if __name__ == "__main__":
    main()
