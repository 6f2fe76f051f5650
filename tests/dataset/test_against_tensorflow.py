"""The same pipelines through real tf.data (in a Python with TensorFlow) and through ours, on
the same files: equal elements where tf.data is deterministic, equal properties (every element
once, each input's order kept, epochs equal or not) where it draws at random."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests.dataset.tf_pipelines import plain
from tfrecord_s3 import Dataset

TF_SIDE = Path(__file__).with_name("tf_pipelines.py")
# (TensorFlow's elements, ours, {"files": paths, "inputs": each file's records})
Compared = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def ours(files: list[str], examples: str) -> dict[str, Dataset]:
    records = tfr.TFRecordDataset
    spec = {"id": tfr.FixedLenFeature([], "int64"), "f": tfr.FixedLenFeature([2], "float32")}
    ragged = {"id": tfr.FixedLenFeature([], "int64"), "v": tfr.VarLenFeature("int64")}
    dense = {"id": tfr.FixedLenFeature([], "int64"), "v": tfr.FixedLenSequenceFeature([], "int64", allow_missing=True)}

    def id_and_values(record: bytes) -> tuple[Any, Any]:
        parsed = tfr.parse_single_example(record, ragged)
        return parsed["id"], parsed["v"]

    return {
        "interleave_skip_batch_unbatch": records(files, num_parallel_reads=3)
        .skip(5)
        .take(-1)
        .batch(7, drop_remainder=True)
        .unbatch(),
        "take_all": records(files).take(-1),
        "skip_all": records(files).skip(-1),
        "filter_repeat_forever": records(files).filter(lambda r: len(r) % 2 == 0).repeat(-1).take(150),
        "parallel_map": records(files, num_parallel_reads=2).map(len, num_parallel_calls=tfr.AUTOTUNE),
        "prefetch": records(files).prefetch(tfr.AUTOTUNE),
        "parse_batch": records(examples).batch(4).map(lambda b: tfr.parse_example(b, spec)),
        "parse_batch_unbatch": records(examples).batch(4).map(lambda b: tfr.parse_example(b, spec)).unbatch(),
        "padded_batch": records(examples)
        .map(id_and_values)
        .padded_batch(3, padded_shapes=([], [6]), padding_values=(-1, -7)),
        "padded_batch_longest": records(examples).map(id_and_values).padded_batch(4, drop_remainder=True),
        "padded_batch_dict": records(examples)
        .map(lambda r: tfr.parse_single_example(r, dense))
        .padded_batch(4, padding_values={"id": 0, "v": -1}),
        "shard": records(files, num_parallel_reads=2).shard(3, 1),
        "choose_stop": tfr.choose_from_datasets([records(files[0]), records(files[1])], Dataset.range(2).repeat()),
        "choose_no_stop": tfr.choose_from_datasets(
            [records(files[0]), records(files[2])], Dataset.range(2).repeat(70), stop_on_empty_dataset=False
        ),
        "sample": tfr.sample_from_datasets([records(files[0]), records(files[1])], seed=5),
        "shuffle_fixed_repeat": records(files).shuffle(32, seed=3, reshuffle_each_iteration=False).repeat(2),
        "shuffle_reshuffle_repeat": records(files).shuffle(32, seed=3).repeat(2),
    }


@pytest.fixture(scope="module")
def compared(tf_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Compared:
    root = tmp_path_factory.mktemp("vs_tf")
    files = []
    for f, count in enumerate((40, 47, 33)):
        path = str(root / f"part-{f}.tfrecord")
        with tfr.TFRecordWriter(path) as writer:
            for i in range(count):
                writer.write(f"file {f} record {i}".encode() + bytes(i % 5))
        files.append(path)
    examples = str(root / "examples.tfrecord")
    with tfr.TFRecordWriter(examples) as writer:
        for i in range(11):
            value = {"id": i, "f": [i * 0.5, -0.0 if i % 2 else float("inf")], "v": np.arange(i % 6, dtype=np.int64)}
            writer.write(tfr.encode_example(value))
    job = root / "job.json"
    job.write_text(json.dumps({"files": files, "examples": examples}))
    done = subprocess.run(
        [str(tf_python), str(TF_SIDE), str(job)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout)
    mine = {name: [plain(e) for e in ds] for name, ds in ours(files, examples).items()}
    inputs = {f: [plain(r) for r in tfr.tf_record_iterator(f)] for f in files}
    return theirs, mine, {"files": files, "inputs": inputs}


@pytest.mark.parametrize(
    "name",
    [
        "interleave_skip_batch_unbatch",
        "take_all",
        "skip_all",
        "filter_repeat_forever",
        "parallel_map",
        "prefetch",
        "parse_batch",
        "parse_batch_unbatch",
        "padded_batch",
        "padded_batch_longest",
        "padded_batch_dict",
        "shard",
        "choose_stop",
        "choose_no_stop",
    ],
)
def test_same_elements_as_tf_data(compared: Compared, name: str) -> None:
    theirs, mine, _ = compared
    assert mine[name] == theirs[name]
    assert name == "skip_all" or theirs[name]  # a comparison of something


def test_sample_from_datasets_draws_like_tf_data(compared: Compared) -> None:
    theirs, mine, job = compared
    first, second = (job["inputs"][f] for f in job["files"][:2])
    for out in (theirs["sample"], mine["sample"]):
        assert Counter(out) == Counter(first + second)
        assert [r for r in out if r in set(first)] == first
        assert [r for r in out if r in set(second)] == second
    assert mine["sample"] != first + second  # it mixes


def test_shuffle_epochs_behave_like_tf_data(compared: Compared) -> None:
    theirs, mine, job = compared
    everything = [r for f in job["files"] for r in job["inputs"][f]]
    n = len(everything)
    for side in (theirs, mine):
        fixed, reshuffled = side["shuffle_fixed_repeat"], side["shuffle_reshuffle_repeat"]
        for out in (fixed, reshuffled):
            assert Counter(out[:n]) == Counter(out[n:]) == Counter(everything)
            assert out[:n] != everything
        assert fixed[:n] == fixed[n:]
        assert reshuffled[:n] != reshuffled[n:]
