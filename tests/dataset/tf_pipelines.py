"""The tf.data side of test_against_tensorflow.py, run by a Python that has TensorFlow.

    python tf_pipelines.py job.json   ->   {pipeline name: its elements} as JSON on stdout

``job.json``: {"files": [TFRecord paths], "examples": path of a file of Examples}. Elements
are made plain for JSON: bytes as hex, arrays as lists, dicts and tuples kept as dicts and
lists. Only TensorFlow, numpy and the standard library are imported here (TensorFlow only
when run, so that the test can share ``plain``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """An element as JSON: bytes as hex, arrays as lists, tuples as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()] if value.dtype == object else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def pipelines(files: list[str], examples: str) -> dict[str, Any]:
    import tensorflow as tf

    records = tf.data.TFRecordDataset
    spec = {"id": tf.io.FixedLenFeature([], tf.int64), "f": tf.io.FixedLenFeature([2], tf.float32)}
    ragged = {"id": tf.io.FixedLenFeature([], tf.int64), "v": tf.io.VarLenFeature(tf.int64)}
    dense = {"id": tf.io.FixedLenFeature([], tf.int64), "v": tf.io.FixedLenSequenceFeature([], tf.int64, True)}

    def id_and_values(record: Any) -> tuple[Any, Any]:
        parsed = tf.io.parse_single_example(record, ragged)
        return parsed["id"], tf.sparse.to_dense(parsed["v"])

    return {
        "interleave_skip_batch_unbatch": records(files, num_parallel_reads=3)
        .skip(5)
        .take(-1)
        .batch(7, drop_remainder=True)
        .unbatch(),
        "take_all": records(files).take(-1),
        "skip_all": records(files).skip(-1),
        "filter_repeat_forever": records(files).filter(lambda r: tf.strings.length(r) % 2 == 0).repeat(-1).take(150),
        "parallel_map": records(files, num_parallel_reads=2).map(
            tf.strings.length, num_parallel_calls=tf.data.AUTOTUNE
        ),
        "prefetch": records(files).prefetch(tf.data.AUTOTUNE),
        "parse_batch": records(examples).batch(4).map(lambda b: tf.io.parse_example(b, spec)),
        "parse_batch_unbatch": records(examples).batch(4).map(lambda b: tf.io.parse_example(b, spec)).unbatch(),
        "padded_batch": records(examples)
        .map(id_and_values)
        .padded_batch(
            3, padded_shapes=([], [6]), padding_values=(tf.constant(-1, tf.int64), tf.constant(-7, tf.int64))
        ),
        "padded_batch_longest": records(examples).map(id_and_values).padded_batch(4, drop_remainder=True),
        "padded_batch_dict": records(examples)
        .map(lambda r: tf.io.parse_single_example(r, dense))
        .padded_batch(4, padding_values={"id": tf.constant(0, tf.int64), "v": tf.constant(-1, tf.int64)}),
        "shard": records(files, num_parallel_reads=2).shard(3, 1),
        "choose_stop": tf.data.Dataset.choose_from_datasets(
            [records(files[0]), records(files[1])], tf.data.Dataset.range(2).repeat()
        ),
        "choose_no_stop": tf.data.Dataset.choose_from_datasets(
            [records(files[0]), records(files[2])], tf.data.Dataset.range(2).repeat(70), stop_on_empty_dataset=False
        ),
        "sample": tf.data.Dataset.sample_from_datasets([records(files[0]), records(files[1])], seed=5),
        "shuffle_fixed_repeat": records(files).shuffle(32, seed=3, reshuffle_each_iteration=False).repeat(2),
        "shuffle_reshuffle_repeat": records(files).shuffle(32, seed=3).repeat(2),
    }


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with open(sys.argv[1]) as f:
        job = json.load(f)
    out = {
        name: [plain(e) for e in ds.as_numpy_iterator()]
        for name, ds in pipelines(job["files"], job["examples"]).items()
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
