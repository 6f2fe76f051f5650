"""Core layer: local files, framing with CRCs, batch decoding, memory; TensorFlow and PyPI
``tfrecord`` on the same files in the same run.

    python -m benchmarks.bench_core [--quick] [--repeats N]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ._common import (
    PEERS_VENV,
    TF_VENV,
    Results,
    Settings,
    Target,
    alternate,
    collect_peer,
    own_versions,
    parse_settings,
)
from ._data import FEATURE_SPEC, NUMERIC_FEATURES, RecordFile, example_file, gzip_file, raw_file
from ._ours import Missing, feature_spec, piece
from ._servers import environment
from .peers._common import Measurement, Plan, measure_interleaved

BATCH = 256
READ_CHUNK = 1 << 20


def _raw_read(file: RecordFile) -> Callable[[], tuple[int, int]]:
    def run() -> tuple[int, int]:
        total = 0
        with file.path.open("rb", buffering=0) as handle:
            while chunk := handle.read(READ_CHUNK):
                total += len(chunk)
        return file.records, total

    return run


def _iterate(
    file: RecordFile, *, verify_crc: bool = True, pure_python: bool = False, compression: str | None = None
) -> Callable[[], tuple[int, int]]:
    """Our iterator over ``file``; ``pure_python`` forces the Python frame loop even where the
    compiled kernel is built (the library reads TFRECORD_S3_PURE_PYTHON when iteration starts)."""
    (tf_record_iterator,) = piece("tfrecord_s3", "tf_record_iterator")
    if pure_python and not _native_kernel():
        raise Missing("the compiled frame kernel is not built, so the default run is already pure Python")

    def run() -> tuple[int, int]:
        records = 0
        with environment({"TFRECORD_S3_PURE_PYTHON": "1"} if pure_python else {}):
            for _ in tf_record_iterator(str(file.path), compression, verify_crc=verify_crc):
                records += 1
        return records, file.bytes

    return run


def _decode_in_memory(file: RecordFile, limit: int, *, pure_python: bool = False) -> Callable[[], tuple[int, int]]:
    """Decoding alone: the first ``limit`` records read beforehand, then decoded in batches
    (``pure_python``: with the compiled decoder switched off)."""
    if pure_python and not _native_decoder():
        raise Missing("the compiled decoder is not built, so the default run is already pure Python")
    (tf_record_iterator,) = piece("tfrecord_s3", "tf_record_iterator")
    (parse_batch,) = piece("tfrecord_s3.decode", "parse_example_batch")
    features = feature_spec(FEATURE_SPEC)
    head = list(itertools.islice(tf_record_iterator(str(file.path)), limit))
    batches = [head[i : i + BATCH] for i in range(0, len(head), BATCH)]
    head_bytes = sum(len(r) + 16 for r in head)

    def run() -> tuple[int, int]:
        records = 0
        with environment({"TFRECORD_S3_PURE_PYTHON": "1"} if pure_python else {}):
            for batch in batches:
                parsed: dict[str, Any] = parse_batch(batch, features)
                records += len(parsed["label"])
        return records, head_bytes

    return run


def _dataset(file: RecordFile, batch: int | None) -> Callable[[], tuple[int, int]]:
    """Our TFRecordDataset over one local file, one record at a time or in batches."""
    (dataset_class,) = piece("tfrecord_s3.dataset", "TFRecordDataset")

    def run() -> tuple[int, int]:
        dataset = dataset_class(str(file.path))
        records = 0
        if batch is None:
            for _ in dataset:
                records += 1
        else:
            for element in dataset.batch(batch):
                records += len(element)
        return records, file.bytes

    return run


def _torch_loader(file: RecordFile) -> Callable[[], tuple[int, int]]:
    """Our torch IterableDataset through a DataLoader (batches built inside, numeric features)."""
    (iterable_dataset,) = piece("tfrecord_s3.torch", "TFRecordIterableDataset")
    (data_loader,) = piece("torch.utils.data", "DataLoader")
    spec = {name: FEATURE_SPEC[name] for name in NUMERIC_FEATURES}
    features = feature_spec(spec)

    def run(limit: int | None = None) -> tuple[int, int]:
        dataset = iterable_dataset(str(file.path), features=features, batch_size=BATCH)
        records = 0
        for batch in itertools.islice(data_loader(dataset, batch_size=None, num_workers=0), limit):
            records += len(batch[NUMERIC_FEATURES[0]])
        return records, file.bytes

    run(limit=1)  # warm-up: torch initialises lazily on first use, which is not the reader's memory
    return run


def _native_kernel() -> bool:
    return _native("tfrecord_s3.records.framing")


def _native_decoder() -> bool:
    return _native("tfrecord_s3.decode._gather")


def _native(module: str) -> bool:
    """Whether ``module``'s compiled kernel is built and enabled (its ``native_available()``)."""
    try:
        (available,) = piece(module, "native_available")
    except Missing:
        return False
    return bool(available())


def _decode_batches(file: RecordFile) -> Callable[[], tuple[int, int]]:
    (tf_record_iterator,) = piece("tfrecord_s3", "tf_record_iterator")
    (parse_batch,) = piece("tfrecord_s3.decode", "parse_example_batch")
    features = feature_spec(FEATURE_SPEC)

    def run() -> tuple[int, int]:
        records = 0
        iterator = tf_record_iterator(str(file.path))
        while batch := list(itertools.islice(iterator, BATCH)):
            parsed: dict[str, Any] = parse_batch(batch, features)
            records += len(parsed["label"])
        return records, file.bytes

    return run


Maker = Callable[[], Callable[[], tuple[int, int]]]


def _plans(results: Results, scenario: str, wanted: list[tuple[str, Maker]]) -> list[Plan]:
    """The readers whose pieces exist; a missing piece becomes a note."""
    plans: list[Plan] = []
    for name, make in wanted:
        try:
            plans.append((name, scenario, make()))
        except Missing as exc:
            results.note(f"skipped {name}: {exc}")
    return plans


def _kind(reader: str) -> str:
    return "ceiling" if reader.startswith("raw read()") else "ours"


def run(settings: Settings) -> Results:
    results = Results("core", settings)
    results.versions.update(own_versions())
    results.versions["tfrecord_s3 frame kernel"] = "compiled C" if _native_kernel() else "pure Python"
    results.versions["tfrecord_s3 decoder"] = "compiled C" if _native_decoder() else "pure Python"
    examples = example_file(20 if settings.quick else 200)
    raw = raw_file(100 if settings.quick else 1000)
    big = example_file(100 if settings.quick else 1000, seed=7, name="big")
    print(
        f"  [core] files: {examples.records} Examples ({examples.bytes / 1e6:.0f} MB), "
        f"{raw.records} x 1 MiB ({raw.bytes / 1e6:.0f} MB), {big.records} Examples ({big.bytes / 1e6:.0f} MB)",
        flush=True,
    )
    for reader in (_raw_read(examples), _raw_read(raw), _raw_read(big), _raw_read(gzip_file(examples))):
        reader()  # warm the page cache: every reader below sees the same cached files
    decode_only = 16_384 if settings.quick else 65_536  # records decoded from memory
    one_kb: list[tuple[str, Maker]] = [
        ("raw read() 1 MiB chunks", lambda: _raw_read(examples)),
        ("ours tf_record_iterator (CRC)", lambda: _iterate(examples)),
        ("ours tf_record_iterator (no CRC)", lambda: _iterate(examples, verify_crc=False)),
        ("ours tf_record_iterator (CRC, pure Python)", lambda: _iterate(examples, pure_python=True)),
        (f"ours parse_example_batch {BATCH}", lambda: _decode_batches(examples)),
        ("ours TFRecordDataset, one element at a time", lambda: _dataset(examples, None)),
        (f"ours TFRecordDataset.batch({BATCH})", lambda: _dataset(examples, BATCH)),
    ]
    in_memory: list[tuple[str, Maker]] = [
        (f"ours parse_example_batch {BATCH}", lambda: _decode_in_memory(examples, decode_only)),
        (
            f"ours parse_example_batch {BATCH} (pure Python)",
            lambda: _decode_in_memory(examples, decode_only, pure_python=True),
        ),
    ]
    one_mib: list[tuple[str, Maker]] = [
        ("raw read() 1 MiB chunks", lambda: _raw_read(raw)),
        ("ours tf_record_iterator (CRC)", lambda: _iterate(raw)),
        ("ours tf_record_iterator (CRC, pure Python)", lambda: _iterate(raw, pure_python=True)),
    ]
    gzipped = gzip_file(examples)
    one_kb_gzip: list[tuple[str, Maker]] = [
        ("ours tf_record_iterator (CRC)", lambda: _iterate(gzipped, compression="GZIP")),
    ]
    torch_plans: list[tuple[str, Maker]] = [
        ("ours TFRecordIterableDataset + DataLoader", lambda: _torch_loader(examples)),
    ]
    plans = (
        _plans(results, "1 KB Examples", one_kb)
        + _plans(results, "1 KB Examples, torch, 4 numeric features", torch_plans)
        + _plans(results, "1 MiB records", one_mib)
        + _plans(results, "1 KB Examples, GZIP", one_kb_gzip)
        + _plans(results, "1 KB Examples in memory", in_memory)
    )

    def ours(repeats: int) -> list[tuple[str, Measurement]]:
        return [(_kind(m.reader), m) for m in measure_interleaved(plans, repeats)]

    file_arg = {"path": str(examples.path), "bytes": examples.bytes, "records": examples.records}
    tf_args = {
        "examples": file_arg,
        "raw": {"path": str(raw.path), "bytes": raw.bytes},
        "gzip": {"path": str(gzipped.path), "bytes": gzipped.bytes},
        "spec": FEATURE_SPEC,
        "batch": BATCH,
        "decode_only_records": decode_only,
        "single_elements": 2_000 if settings.quick else 10_000,
    }
    pypi_args = {
        "local": file_arg,
        "gzip": {"path": str(gzipped.path), "bytes": gzipped.bytes},
        "s3": None,
        "spec": FEATURE_SPEC,
        "decode_records": 5_000 if settings.quick else 20_000,
        "torch_features": list(NUMERIC_FEATURES),
    }
    alternate(
        results,
        [
            ours,
            lambda repeats: collect_peer(results, TF_VENV, "tf_local", {**tf_args, "repeats": repeats}),
            lambda repeats: collect_peer(results, PEERS_VENV, "pypi_tfrecord", {**pypi_args, "repeats": repeats}),
        ],
    )
    # Memory: one pass over a ~1 GB file of 1 KB records, RSS sampled every 5 ms.
    big_scenario = f"{big.bytes / 1e9:.1f} GB file, memory"
    for m in measure_interleaved(
        _plans(results, big_scenario, [("ours tf_record_iterator (CRC)", lambda: _iterate(big))]), 1
    ):
        results.add("ours", m)

    ours_iter = results.find("ours tf_record_iterator (CRC)", "1 KB Examples")
    ours_decode = results.find(f"ours parse_example_batch {BATCH}")
    ours_raw = results.find("ours tf_record_iterator (CRC)", "1 MiB records")
    ours_big = results.find("ours tf_record_iterator (CRC)", big_scenario)
    tf_iter = results.find("TF tf_record_iterator", "1 KB Examples")
    tf_parse = results.find(f"TF parse_example batch {BATCH}", "1 KB Examples")
    results.target(
        Target(
            "frame iteration with CRC, 1 KB",
            ours_iter.records_per_s if ours_iter else None,
            tf_iter.records_per_s if tf_iter else None,
            "rec/s",
            0.9,
            baseline_name="TF tf_record_iterator",
        )
    )
    results.target(
        Target(
            f"batch decode ({BATCH}), 1 KB",
            ours_decode.records_per_s if ours_decode else None,
            tf_parse.records_per_s if tf_parse else None,
            "rec/s",
            0.25,
            baseline_name=f"TF parse_example batch {BATCH}",
        )
    )
    ours_decode_mem = results.find(f"ours parse_example_batch {BATCH}", "1 KB Examples in memory")
    tf_parse_mem = results.find(f"TF parse_example batch {BATCH} (tf.function)", "1 KB Examples in memory")
    results.target(
        Target(
            f"batch decode ({BATCH}) alone, records in memory",
            ours_decode_mem.records_per_s if ours_decode_mem else None,
            tf_parse_mem.records_per_s if tf_parse_mem else None,
            "rec/s",
            0.25,
            baseline_name="TF parse_example in a tf.function",
        )
    )
    results.target(
        Target(
            "1 MiB records with CRC",
            round(ours_raw.mb_per_s / 1000, 2) if ours_raw else None,
            None,
            "GB/s",
            5.0,
            kind="min",
        )
    )
    results.target(
        Target(
            f"RSS above start iterating {big.bytes / 1e9:.1f} GB",
            ours_big.rss_delta_mb if ours_big else None,
            None,
            "MB",
            100.0,
            kind="max",
        )
    )
    results.write()
    return results


def main(argv: list[str] | None = None) -> None:
    run(parse_settings(__doc__ or "", argv))


if __name__ == "__main__":
    main()
