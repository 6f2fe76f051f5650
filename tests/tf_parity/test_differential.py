"""Differential test against TensorFlow: random Examples and SequenceExamples, random specs.

TensorFlow runs in its own interpreter (the ``tf_python`` fixture): ``tf_side.py`` builds each
case's records with TensorFlow's proto classes and parses them with ``tf.io``; here the same
serialized records go through our decoder (compiled and pure paths), and every value must be
bit-identical (nan payloads, -0.0, dtypes and shapes, ragged splits and their dtype, sparse
indices), and we must fail exactly where TensorFlow fails: with ConfigError where it rejects
the specs, DecodeError where it rejects the data.

Deliberate difference (README, "TensorFlow parity"): TensorFlow's ``RaggedFeature`` does not
validate partitions by default (``validate=False``) and builds whatever they imply; we reject
partitions that do not describe the values with a ``DecodeError``. Cases whose only
difference is that are counted apart, never hidden: the generator makes valid partitions
most of the time.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfrecord_s3 import (
    ConfigError,
    DecodeError,
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    RaggedValues,
    RowLengths,
    RowLimits,
    RowSplits,
    RowStarts,
    SparseFeature,
    SparseValues,
    UniformRowLength,
    ValueRowIds,
    VarLenFeature,
    parse_example,
    parse_example_batch,
    parse_sequence_example,
)

HERE = Path(__file__).parent
DTYPES = ["int64", "float32", "bytes"]
VALUE_KEYS = ["a", "b", "c"]
PARTITION_KEYS = ["p", "q", "s"]
INDEX_KEYS = ["i", "j"]
SPECIAL_FLOATS = [0x7FC00000, 0xFFC00000, 0x7FC00001, 0x80000000, 0x00000001, 0x7F800000, 0xFF800000, 0x3F800000]
SPECIAL_INTS = [0, 1, -1, 2**63 - 1, -(2**63), 127, 128, -300]
PARTITIONS = {"RowSplits": RowSplits, "RowLengths": RowLengths, "RowStarts": RowStarts, "RowLimits": RowLimits}
PARTITIONS["ValueRowIds"] = ValueRowIds


# ---- random cases (JSON, so both interpreters read the same thing) ----


def random_values(rng: random.Random, kind: str, count: int) -> list[Any]:
    if kind == "int64":
        return [rng.choice(SPECIAL_INTS) if rng.random() < 0.4 else rng.randrange(-1000, 1000) for _ in range(count)]
    if kind == "float32":
        return [rng.choice(SPECIAL_FLOATS) if rng.random() < 0.4 else rng.getrandbits(32) for _ in range(count)]
    return [rng.randbytes(rng.randrange(4)).hex() for _ in range(count)]


def default_for(rng: random.Random, dtype: str, size: int) -> Any:
    if dtype == "int64":
        return [rng.choice(SPECIAL_INTS[:3]) for _ in range(size)]
    if dtype == "float32":
        return [rng.choice([1.5, -0.0, float("inf"), -2.25]) for _ in range(size)]
    return [rng.randbytes(2).hex() for _ in range(size)]


def random_spec(rng: random.Random, context: str) -> tuple[str, dict[str, Any]]:
    """(name, spec) for an Example ("example"), a context or a feature list ("sequence")."""
    dtype = rng.choice(DTYPES)
    kinds = {"example": ["FixedLen", "VarLen", "FixedLenSequence", "Ragged", "Sparse"]}
    kinds["context"] = ["FixedLen", "VarLen", "Ragged"]
    kinds["sequence"] = ["FixedLenSequence", "VarLen", "Ragged"]
    kind = rng.choice(kinds[context])
    key = rng.choice(VALUE_KEYS)
    if kind == "FixedLen":
        shape = rng.choice([[], [1], [2], [2, 2], [0]])
        size = int(np.prod(shape)) if shape else 1
        default = default_for(rng, dtype, size) if rng.random() < 0.5 else None
        if default is not None and shape == []:
            default = default[0]
        return key, {"type": "FixedLen", "shape": shape, "dtype": dtype, "default": default}
    if kind == "VarLen":
        return key, {"type": "VarLen", "dtype": dtype}
    if kind == "FixedLenSequence":
        allow = context != "sequence" or rng.random() < 0.7
        default = default_for(rng, dtype, 1)[0] if context == "example" and rng.random() < 0.4 else None
        shape = rng.choice([[], [2]])
        return key, {
            "type": "FixedLenSequence",
            "shape": shape,
            "dtype": dtype,
            "allow_missing": allow,
            "default": default,
        }
    if kind == "Sparse":
        rank = rng.choice([1, 1, 2])
        index = INDEX_KEYS[0] if rank == 1 and rng.random() < 0.5 else INDEX_KEYS[:rank]
        size = rng.randrange(3, 9) if isinstance(index, str) else [rng.randrange(3, 9) for _ in index]
        name = "sp" + str(rng.randrange(3))
        return name, {
            "type": "Sparse",
            "index_key": index,
            "value_key": key,
            "dtype": dtype,
            "size": size,
            "sorted": rng.random() < 0.3,
        }
    partitions: list[list[Any]] = []
    for _ in range(rng.choice([0, 1, 1, 2])):
        if rng.random() < 0.2:
            partitions.append(["UniformRowLength", rng.choice([1, 2, 3])])
        else:
            partitions.append([rng.choice(list(PARTITIONS)), rng.choice(PARTITION_KEYS)])
    name = rng.choice(["r0", "r1", key])
    value_key = None if name == key and rng.random() < 0.5 else key
    splits = rng.choice(["int32", "int32", "int64"])
    return name, {
        "type": "Ragged",
        "dtype": dtype,
        "value_key": value_key,
        "partitions": partitions,
        "row_splits_dtype": splits,
    }


def structure(rng: random.Random, partitions: list[list[Any]]) -> tuple[int, dict[str, list[int]]]:
    """A valid nesting for ``partitions`` (outer to inner): (number of values, partition values)."""
    rows = rng.randrange(0, 4)
    encoded: dict[str, list[int]] = {}
    for name, argument in partitions:
        if name == "UniformRowLength":
            rows *= argument
            continue
        lengths = [rng.randrange(0, 3) for _ in range(rows)]
        if name == "ValueRowIds":
            lengths = [max(n, 1) for n in lengths]  # trailing empty rows cannot be written as ids
        ends = np.cumsum(lengths).tolist() if lengths else []
        starts = [0, *ends[:-1]] if lengths else []
        encoded[argument] = {
            "RowLengths": lengths,
            "RowSplits": [0, *ends],
            "RowStarts": starts,
            "RowLimits": ends,
            "ValueRowIds": [i for i, n in enumerate(lengths) for _ in range(n)],
        }[name]
        rows = sum(lengths)
    return rows, encoded


def random_features(rng: random.Random, specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One record's features, made to fit ``specs`` most of the time."""
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        kind = spec["type"]
        dtype = spec["dtype"]
        if kind == "Sparse":
            count = rng.randrange(0, 4)
            out[spec["value_key"]] = [dtype, random_values(rng, dtype, count)]
            keys = [spec["index_key"]] if isinstance(spec["index_key"], str) else spec["index_key"]
            sizes = [spec["size"]] if isinstance(spec["size"], int) else spec["size"]
            for key, size in zip(keys, sizes, strict=True):
                out[key] = ["int64", [rng.randrange(size) for _ in range(count)]]
            continue
        key = spec.get("value_key") or name
        if kind == "Ragged":
            count, encoded = structure(rng, spec["partitions"])
            for part_key, numbers in encoded.items():
                out[part_key] = ["int64", numbers]
        elif kind == "FixedLen":
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
        elif kind == "FixedLenSequence":
            row = int(np.prod(spec["shape"])) if spec["shape"] else 1
            count = row * rng.randrange(0, 3)
        else:
            count = rng.randrange(0, 4)
        out[key] = [dtype, random_values(rng, dtype, count)]
    for key in list(out):  # noise: missing, kindless, another kind, another length
        roll = rng.random()
        if roll < 0.06:
            del out[key]
        elif roll < 0.09:
            out[key] = None
        elif roll < 0.12:
            kind = rng.choice(DTYPES)
            out[key] = [kind, random_values(rng, kind, rng.randrange(4))]
        elif roll < 0.15 and out[key][0] == "int64" and key in PARTITION_KEYS + INDEX_KEYS:
            out[key] = ["int64", random_values(rng, "int64", rng.randrange(4))]
    return out


def random_case(rng: random.Random, index: int) -> dict[str, Any]:
    if index % 3 == 2:
        context = dict(random_spec(rng, "context") for _ in range(rng.randrange(0, 3)))
        sequence = dict(random_spec(rng, "sequence") for _ in range(rng.randrange(1, 3)))
        steps = rng.randrange(0, 4)
        lists: dict[str, Any] = {}
        for _ in range(steps):
            for key, value in random_features(rng, sequence).items():
                lists.setdefault(key, []).append(value)
        for key in list(lists):
            if rng.random() < 0.08:
                del lists[key]
        record = {"context": random_features(rng, context), "lists": lists}
        return {"kind": "sequence", "records": [record], "context_specs": context, "sequence_specs": sequence}
    specs = dict(random_spec(rng, "example") for _ in range(rng.randrange(1, 4)))
    single = index % 3 == 1
    records = [random_features(rng, specs) for _ in range(1 if single else rng.randrange(1, 5))]
    return {"kind": "example", "records": records, "specs": specs, "single": single}


# ---- our side ----


def our_spec(description: dict[str, Any]) -> Any:
    kind = description["type"]
    dtype = description["dtype"]
    default = description.get("default")
    if default is not None and dtype == "bytes":
        default = [bytes.fromhex(v) for v in default] if isinstance(default, list) else bytes.fromhex(default)
    if kind == "FixedLen":
        return FixedLenFeature(description["shape"], dtype, default)
    if kind == "VarLen":
        return VarLenFeature(dtype)
    if kind == "FixedLenSequence":
        return FixedLenSequenceFeature(description["shape"], dtype, description["allow_missing"], default)
    if kind == "Sparse":
        return SparseFeature(
            description["index_key"], description["value_key"], dtype, description["size"], description["sorted"]
        )
    partitions = [
        UniformRowLength(argument) if name == "UniformRowLength" else PARTITIONS[name](argument)
        for name, argument in description["partitions"]
    ]
    return RaggedFeature(dtype, description["value_key"], partitions, description["row_splits_dtype"])


def dense(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        array = np.empty(len(value), dtype=object)
        array[:] = value
    elif isinstance(value, bytes):
        array = np.empty((), dtype=object)
        array[()] = value
    else:
        array = np.asarray(value)
    if array.dtype == np.float32:
        return {
            "t": "dense",
            "dtype": "float32",
            "shape": list(array.shape),
            "data": array.reshape(-1).view(np.uint32).tolist(),
        }
    if array.dtype == object:
        return {
            "t": "dense",
            "dtype": "bytes",
            "shape": list(array.shape),
            "data": [v.hex() for v in array.reshape(-1)],
        }
    return {"t": "dense", "dtype": str(array.dtype), "shape": list(array.shape), "data": array.reshape(-1).tolist()}


def encode(value: Any, spec: Any, single: bool) -> dict[str, Any]:
    """Our result in tf_side.py's encoding (TensorFlow's types: SparseTensor, RaggedTensor)."""
    if isinstance(spec, VarLenFeature):
        if single:  # a 1-D SparseTensor
            count = len(value)
            return {
                "t": "sparse",
                "indices": [[i] for i in range(count)],
                "values": dense(value),
                "dense_shape": [count],
            }
        return {
            "t": "sparse",
            "indices": value.indices().tolist(),
            "values": dense(value.values),
            "dense_shape": list(value.dense_shape),
        }
    if isinstance(value, SparseValues):
        return {
            "t": "sparse",
            "indices": value.indices().tolist(),
            "values": dense(value.values),
            "dense_shape": list(value.dense_shape),
        }
    if isinstance(value, RaggedValues):
        splits = []
        level: Any = value
        while isinstance(level, RaggedValues):
            splits.append({"dtype": str(level.row_lengths.dtype), "data": level.row_splits.tolist()})
            level = level.values
        return {"t": "ragged", "splits": splits, "flat": dense(level)}
    return dense(value)


def ours(case: dict[str, Any], records: list[bytes]) -> dict[str, Any]:
    try:
        if case["kind"] == "example":
            specs = {key: our_spec(s) for key, s in case["specs"].items()}
            parsed = parse_example(records[0], specs) if case["single"] else parse_example_batch(records, specs)
            return {"result": {key: encode(parsed[key], specs[key], case["single"]) for key in parsed}}
        context = {key: our_spec(s) for key, s in case["context_specs"].items()}
        sequence = {key: our_spec(s) for key, s in case["sequence_specs"].items()}
        got_context, got_lists = parse_sequence_example(records[0], context, sequence)
        return {
            "result": {
                "context": {key: encode(got_context[key], context[key], True) for key in got_context},
                "sequence": {key: encode(got_lists[key], sequence[key], False) for key in got_lists},
            }
        }
    except (DecodeError, ConfigError) as exc:
        return {"error": {"type": type(exc).__name__, "message": str(exc)}}


# Our DecodeErrors for partitions (and SparseFeature indices) that do not describe the values,
# which TensorFlow builds something from without a check.
UNVALIDATED = (
    "Row splits",
    "Row starts",
    "Row limits",
    "Value row ids",
    "Row partition",
    "UniformRowLength",
    "steps but the values have",
    "SparseFeature index",
)


# The ValueErrors of TensorFlow's eager shape checks (data errors, not spec errors).
TF_SHAPE_CHECKS = ("are not compatible", "are incompatible", "must be >= 0")


def compare(case: dict[str, Any], theirs: dict[str, Any], mine: dict[str, Any]) -> str:
    if "error" in theirs:
        if "error" not in mine:
            return "only TensorFlow failed"
        # A spec TensorFlow rejects is our ConfigError; data it rejects (in its parse op, or in
        # the eager shape checks of building a SparseTensor / RaggedTensor) our DecodeError.
        error = theirs["error"]
        data = error["type"] == "InvalidArgumentError" or any(words in error["message"] for words in TF_SHAPE_CHECKS)
        return "both failed" if data == (mine["error"]["type"] == "DecodeError") else "error kinds differ"
    if "error" in mine:
        message = mine["error"]["message"]
        if mine["error"]["type"] == "DecodeError" and any(problem in message for problem in UNVALIDATED):
            return "we reject a partition TensorFlow does not validate"
        return "only we failed"
    return "same values" if mine["result"] == theirs["result"] else "different values"


CASES = int(os.environ.get("TFR_DIFFERENTIAL_CASES", "900"))


@pytest.fixture(scope="module")
def tensorflow_results(tf_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], list[Any]]:
    rng = random.Random(20261201)
    cases = [random_case(rng, index) for index in range(CASES)]
    work = tmp_path_factory.mktemp("tf_differential")
    (work / "cases.json").write_text(json.dumps(cases))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(tf_python), str(HERE / "tf_side.py"), str(work / "cases.json"), str(work / "results.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    if done.returncode != 0 and "No module named 'tensorflow'" in done.stderr:
        pytest.skip(f"TensorFlow is not importable by {tf_python}")
    assert done.returncode == 0, done.stderr[-3000:]
    return cases, json.loads((work / "results.json").read_text())


@pytest.mark.parametrize("path", ["compiled", "pure"])
def test_random_cases_agree_with_tensorflow(
    tensorflow_results: tuple[list[Any], list[Any]], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFRECORD_S3_PURE_PYTHON", "1" if path == "pure" else "0")
    cases, results = tensorflow_results
    tally: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    kinds_of_errors: Counter[tuple[str, str]] = Counter()
    problems = []
    for case, theirs in zip(cases, results, strict=True):
        records = [bytes.fromhex(r) for r in theirs["records"]]
        verdict = compare(case, theirs, ours(case, records))
        tally[verdict] += 1
        if verdict == "both failed":
            kinds_of_errors[(theirs["error"]["type"], ours(case, records)["error"]["type"])] += 1
        if verdict in ("same values", "both failed"):
            specs = case.get("specs") or {**case["context_specs"], **case["sequence_specs"]}
            kinds.update(spec["type"] for spec in specs.values())
        elif verdict != "we reject a partition TensorFlow does not validate":
            problems.append((verdict, case, theirs, ours(case, records)))
    print(
        f"\n{path}: {dict(tally)}; spec types in agreeing cases: {dict(kinds)}; "
        f"errors (TensorFlow's, ours): {dict(kinds_of_errors)}",
        file=sys.stderr,
    )
    report = "\n".join(json.dumps(problem, default=str)[:1500] for problem in problems[:4])
    assert not problems, f"{len(problems)} cases differ; the first ones:\n{report}"
    # The generator must reach every spec type, both outcomes and mostly valid partitions.
    assert tally["same values"] > CASES // 3
    assert tally["both failed"] > CASES // 20
    assert tally["we reject a partition TensorFlow does not validate"] < CASES // 10
    assert set(kinds) == {"FixedLen", "VarLen", "FixedLenSequence", "Ragged", "Sparse"}
