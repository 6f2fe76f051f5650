"""TensorFlow on local files: tf_record_iterator, TFRecordDataset(...).batch(256), and
tf.io.parse_example on batches of 256. Run in the TensorFlow venv.

Arguments: {"examples": {"path", "bytes"}, "raw": {"path", "bytes"} | null,
            "gzip": {"path", "bytes"} | null, "spec", "batch", "repeats"}
"""

from __future__ import annotations

import itertools
from typing import Any

from benchmarks.peers._common import Measurement, emit, finish, measure, read_args
from benchmarks.peers._tf import count_batches, count_parsed, feature_spec, import_tf, versions


def main() -> None:
    args = read_args()
    tf = import_tf(with_io=False)
    repeats = int(args["repeats"])
    batch = int(args["batch"])
    examples: dict[str, Any] = args["examples"]
    spec = feature_spec(tf, args["spec"])
    results: list[Measurement] = []

    def iterate(path: str, size: int, compression: str | None = None) -> tuple[int, int]:
        records = 0
        options = tf.io.TFRecordOptions(compression_type=compression) if compression else None
        for _ in tf.compat.v1.io.tf_record_iterator(path, options=options):
            records += 1
        return records, size

    def dataset_batch() -> tuple[int, int]:
        dataset = tf.data.TFRecordDataset(examples["path"]).batch(batch)
        return count_batches(dataset), examples["bytes"]

    def parse_batch() -> tuple[int, int]:
        dataset = tf.data.TFRecordDataset(examples["path"]).batch(batch).map(lambda x: tf.io.parse_example(x, spec))
        return count_parsed(dataset), examples["bytes"]

    iterate(examples["path"], examples["bytes"])  # warm-up: TF initialises lazily
    results.append(
        measure("TF tf_record_iterator", "1 KB Examples", lambda: iterate(examples["path"], examples["bytes"]), repeats)
    )
    results.append(measure(f"TF TFRecordDataset.batch({batch})", "1 KB Examples", dataset_batch, repeats))
    single = int(args.get("single_elements") or 0)
    if single:
        per_record = examples["bytes"] / examples["records"]

        def one_at_a_time() -> tuple[int, int]:
            records = sum(1 for _ in tf.data.TFRecordDataset(examples["path"]).take(single))
            return records, round(records * per_record)

        results.append(measure("TF TFRecordDataset, one element at a time", "1 KB Examples", one_at_a_time, repeats))
    results.append(measure(f"TF parse_example batch {batch}", "1 KB Examples", parse_batch, repeats))
    raw = args.get("raw")
    if raw:
        results.append(
            measure("TF tf_record_iterator", "1 MiB records", lambda: iterate(raw["path"], raw["bytes"]), repeats)
        )
    limit = int(args.get("decode_only_records") or 0)
    if limit:
        head = list(itertools.islice(tf.compat.v1.io.tf_record_iterator(examples["path"]), limit))
        tensors = [tf.constant(head[i : i + batch]) for i in range(0, len(head), batch)]
        head_bytes = sum(len(r) + 16 for r in head)
        parse = tf.function(lambda x: tf.io.parse_example(x, spec))
        parse(tensors[0])  # trace once, outside the timing

        def decode_only() -> tuple[int, int]:
            records = 0
            for tensor in tensors:
                parsed = parse(tensor)
                records += int(parsed["label"].shape[0])
            return records, head_bytes

        results.append(
            measure(f"TF parse_example batch {batch} (tf.function)", "1 KB Examples in memory", decode_only, repeats)
        )
    gz = args.get("gzip")
    if gz:
        results.append(
            measure(
                "TF tf_record_iterator",
                "1 KB Examples, GZIP",
                lambda: iterate(gz["path"], gz["bytes"], "GZIP"),
                repeats,
            )
        )

        def gzip_batches() -> tuple[int, int]:
            dataset = tf.data.TFRecordDataset(gz["path"], compression_type="GZIP").batch(batch)
            return count_batches(dataset), gz["bytes"]

        results.append(measure(f"TF TFRecordDataset.batch({batch})", "1 KB Examples, GZIP", gzip_batches, repeats))
    emit(results, versions(tf), [])
    finish()


if __name__ == "__main__":
    main()
