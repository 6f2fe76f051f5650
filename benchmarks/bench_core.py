"""Core layer: local files, framing with CRCs, batch decoding, memory; TensorFlow and PyPI
``tfrecord`` on the same files in the same run.

    python -m benchmarks.bench_core [--quick] [--repeats N]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ._common import PEERS_VENV, TF_VENV, Results, Settings, Target, add_peer, own_versions, parse_settings
from ._data import FEATURE_SPEC, RecordFile, example_file, raw_file
from ._ours import Missing, feature_spec, piece
from .peers._common import Measurement, measure

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


def _iterate(file: RecordFile, *, verify_crc: bool = True) -> Callable[[], tuple[int, int]]:
    (tf_record_iterator,) = piece("tfrecord_s3", "tf_record_iterator")

    def run() -> tuple[int, int]:
        records = 0
        for _ in tf_record_iterator(str(file.path), verify_crc=verify_crc):
            records += 1
        return records, file.bytes

    return run


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


def _ours(
    results: Results, name: str, scenario: str, make: Callable[[], Callable[[], tuple[int, int]]], repeats: int
) -> Measurement | None:
    try:
        run = make()
    except Missing as exc:
        results.note(f"skipped {name}: {exc}")
        return None
    measurement = measure(name, scenario, run, repeats)
    results.add("ours", measurement)
    return measurement


def run(settings: Settings) -> Results:
    results = Results("core", settings)
    results.versions.update(own_versions())
    repeats = settings.repeats
    examples = example_file(20 if settings.quick else 200)
    raw = raw_file(100 if settings.quick else 1000)
    big = example_file(100 if settings.quick else 1000, seed=7, name="big")
    print(
        f"  [core] files: {examples.records} Examples ({examples.bytes / 1e6:.0f} MB), "
        f"{raw.records} x 1 MiB ({raw.bytes / 1e6:.0f} MB), {big.records} Examples ({big.bytes / 1e6:.0f} MB)",
        flush=True,
    )

    results.add("ceiling", measure("raw read() 1 MiB chunks", "1 KB Examples", _raw_read(examples), repeats))
    ours_iter = _ours(results, "ours tf_record_iterator (CRC)", "1 KB Examples", lambda: _iterate(examples), repeats)
    _ours(
        results,
        "ours tf_record_iterator (no CRC)",
        "1 KB Examples",
        lambda: _iterate(examples, verify_crc=False),
        repeats,
    )
    ours_decode = _ours(
        results, f"ours parse_example_batch {BATCH}", "1 KB Examples", lambda: _decode_batches(examples), repeats
    )
    results.add("ceiling", measure("raw read() 1 MiB chunks", "1 MiB records", _raw_read(raw), repeats))
    ours_raw = _ours(results, "ours tf_record_iterator (CRC)", "1 MiB records", lambda: _iterate(raw), repeats)
    # Memory: one pass over a ~1 GB file, RSS sampled every 5 ms.
    ours_big = _ours(
        results, "ours tf_record_iterator (CRC)", f"{big.bytes / 1e9:.1f} GB file, memory", lambda: _iterate(big), 1
    )

    file_arg = {"path": str(examples.path), "bytes": examples.bytes, "records": examples.records}
    add_peer(
        results,
        TF_VENV,
        "tf_local",
        {
            "examples": file_arg,
            "raw": {"path": str(raw.path), "bytes": raw.bytes},
            "spec": FEATURE_SPEC,
            "batch": BATCH,
            "repeats": repeats,
        },
    )
    add_peer(
        results,
        PEERS_VENV,
        "pypi_tfrecord",
        {
            "local": file_arg,
            "s3": None,
            "spec": FEATURE_SPEC,
            "repeats": repeats,
            "decode_records": 5_000 if settings.quick else 20_000,
        },
    )

    tf_iter = results.find("TF tf_record_iterator", "1 KB Examples")
    tf_parse = results.find(f"TF parse_example batch {BATCH}", "1 KB Examples")
    ours_iter_row = results.find("ours tf_record_iterator (CRC)", "1 KB Examples") if ours_iter else None
    ours_decode_row = results.find(f"ours parse_example_batch {BATCH}") if ours_decode else None
    ours_raw_row = results.find("ours tf_record_iterator (CRC)", "1 MiB records") if ours_raw else None
    results.target(
        Target(
            "frame iteration with CRC, 1 KB",
            ours_iter_row.records_per_s if ours_iter_row else None,
            tf_iter.records_per_s if tf_iter else None,
            "rec/s",
            0.9,
            baseline_name="TF tf_record_iterator",
        )
    )
    results.target(
        Target(
            f"batch decode ({BATCH}), 1 KB",
            ours_decode_row.records_per_s if ours_decode_row else None,
            tf_parse.records_per_s if tf_parse else None,
            "rec/s",
            0.25,
            baseline_name=f"TF parse_example batch {BATCH}",
        )
    )
    results.target(
        Target(
            "1 MiB records with CRC",
            round(ours_raw_row.mb_per_s / 1000, 2) if ours_raw_row else None,
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
