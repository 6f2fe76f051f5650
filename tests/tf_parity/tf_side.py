"""The TensorFlow half of the differential test; runs in a python that has TensorFlow.

    python tf_side.py cases.json results.json

For each case (see test_differential.py): builds the records with TensorFlow's proto classes
(tf.train.Example / SequenceExample), parses them with tf.io, and writes the serialized
records plus TensorFlow's result or error. Only the standard library, numpy and TensorFlow
are imported: this file must not need tfrecord_s3.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

tf.get_logger().setLevel("ERROR")
DTYPES = {"int64": tf.int64, "float32": tf.float32, "bytes": tf.string}


def feature(description: list[Any] | None) -> tf.train.Feature:
    if description is None:
        return tf.train.Feature()  # no kind set
    kind, values = description
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if kind == "float32":
        floats = np.array(values, dtype=np.uint32).view(np.float32).tolist()
        return tf.train.Feature(float_list=tf.train.FloatList(value=floats))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[bytes.fromhex(v) for v in values]))


def features(description: dict[str, Any]) -> tf.train.Features:
    return tf.train.Features(feature={key: feature(value) for key, value in description.items()})


def spec(description: dict[str, Any]) -> Any:
    kind = description["type"]
    dtype = DTYPES[description["dtype"]]
    default = description.get("default")
    if default is not None and description["dtype"] == "bytes":
        default = [bytes.fromhex(v) for v in default] if isinstance(default, list) else bytes.fromhex(default)
    if kind == "FixedLen":
        return tf.io.FixedLenFeature(description["shape"], dtype, default)
    if kind == "VarLen":
        return tf.io.VarLenFeature(dtype)
    if kind == "FixedLenSequence":
        return tf.io.FixedLenSequenceFeature(description["shape"], dtype, description["allow_missing"], default)
    if kind == "Sparse":
        return tf.io.SparseFeature(
            description["index_key"], description["value_key"], dtype, description["size"], description["sorted"]
        )
    partitions = []
    for name, argument in description["partitions"]:
        partitions.append(getattr(tf.io.RaggedFeature, name)(argument))
    splits = {"int32": tf.int32, "int64": tf.int64}[description["row_splits_dtype"]]
    return tf.io.RaggedFeature(dtype, description["value_key"], partitions, splits)


def dense(value: Any) -> dict[str, Any]:
    raw = value.numpy() if hasattr(value, "numpy") else value
    if isinstance(raw, bytes):  # a scalar string tensor
        array = np.empty((), dtype=object)
        array[()] = raw
    else:
        array = np.asarray(raw)
    if array.dtype == np.float32:
        data = array.reshape(-1).view(np.uint32).tolist()
        name = "float32"
    elif array.dtype == object:
        data = [bytes(v).hex() for v in array.reshape(-1)]
        name = "bytes"
    else:
        data = array.reshape(-1).tolist()
        name = str(array.dtype)
    return {"t": "dense", "dtype": name, "shape": list(array.shape), "data": data}


def encode(value: Any) -> dict[str, Any]:
    if isinstance(value, tf.SparseTensor):
        return {
            "t": "sparse",
            "indices": value.indices.numpy().tolist(),
            "values": dense(value.values),
            "dense_shape": value.dense_shape.numpy().tolist(),
        }
    if isinstance(value, tf.RaggedTensor):
        splits = [{"dtype": str(s.dtype.name), "data": s.numpy().tolist()} for s in value.nested_row_splits]
        return {"t": "ragged", "splits": splits, "flat": dense(value.flat_values)}
    return dense(value)


def run(case: dict[str, Any]) -> dict[str, Any]:
    if case["kind"] == "example":
        records = [tf.train.Example(features=features(r)).SerializeToString() for r in case["records"]]
    else:
        record = case["records"][0]
        lists = {
            key: tf.train.FeatureList(feature=[feature(step) for step in steps])
            for key, steps in record["lists"].items()
        }
        message = tf.train.SequenceExample(
            context=features(record["context"]), feature_lists=tf.train.FeatureLists(feature_list=lists)
        )
        records = [message.SerializeToString()]
    out: dict[str, Any] = {"records": [r.hex() for r in records]}
    try:
        if case["kind"] == "example":
            specs = {key: spec(s) for key, s in case["specs"].items()}
            if case["single"]:
                parsed = tf.io.parse_single_example(records[0], specs)
            else:
                parsed = tf.io.parse_example(records, specs)
            out["result"] = {key: encode(value) for key, value in parsed.items()}
        else:
            context = {key: spec(s) for key, s in case["context_specs"].items()}
            sequence = {key: spec(s) for key, s in case["sequence_specs"].items()}
            parsed_context, parsed_lists = tf.io.parse_single_sequence_example(records[0], context, sequence)
            out["result"] = {
                "context": {key: encode(value) for key, value in parsed_context.items()},
                "sequence": {key: encode(value) for key, value in parsed_lists.items()},
            }
    except (tf.errors.OpError, ValueError, TypeError) as exc:
        out["error"] = {"type": type(exc).__name__, "message": str(exc)[:500]}
    return out


def main() -> None:
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = [run(case) for case in cases]
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
