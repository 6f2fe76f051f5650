"""The generated protobuf classes: wire numbers as TensorFlow's, fresh, importable next to a real
TensorFlow 2.16 (and tensorflow-io) in one process, working on every supported protobuf."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import tfrecord_s3
from tests import tensorflow_env
from tfrecord_s3.proto import (
    BytesList,
    Example,
    Feature,
    FeatureList,
    FeatureLists,
    Features,
    FloatList,
    Int64List,
    SequenceExample,
)

ROOT = Path(__file__).resolve().parents[2]


def _load_regen_script() -> object:
    spec = importlib.util.spec_from_file_location("regen_proto", ROOT / "scripts" / "regen_proto.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fields(message: type) -> dict[str, tuple[int, int]]:
    return {
        field.name: (field.number, field.type)  # type: ignore[attr-defined]
        for field in message.DESCRIPTOR.fields  # type: ignore[attr-defined]
    }


def test_field_numbers_and_types_are_tensorflows() -> None:
    # tensorflow/core/example/feature.proto and example.proto (FieldDescriptor type codes:
    # 2 float, 3 int64, 9 string, 11 message, 12 bytes).
    assert _fields(BytesList) == {"value": (1, 12)}
    assert _fields(FloatList) == {"value": (1, 2)}
    assert _fields(Int64List) == {"value": (1, 3)}
    assert _fields(Feature) == {
        "bytes_list": (1, 11),
        "float_list": (2, 11),
        "int64_list": (3, 11),
    }
    assert [f.name for f in Feature.DESCRIPTOR.oneofs_by_name["kind"].fields] == [
        "bytes_list",
        "float_list",
        "int64_list",
    ]
    assert _fields(Features)["feature"][0] == 1
    assert Features.DESCRIPTOR.fields_by_name["feature"].message_type.GetOptions().map_entry
    assert _fields(FeatureList) == {"feature": (1, 11)}
    assert _fields(FeatureLists)["feature_list"][0] == 1
    assert _fields(Example) == {"features": (1, 11)}
    # Packed on the wire, as TensorFlow writes them (tag 0x0a = field 1, length-delimited).
    assert FloatList(value=[1.0]).SerializeToString() == b"\x0a\x04\x00\x00\x80\x3f"
    assert Int64List(value=[1, 2]).SerializeToString() == b"\x0a\x02\x01\x02"
    assert _fields(SequenceExample) == {"context": (1, 11), "feature_lists": (2, 11)}


def test_package_is_not_tensorflows() -> None:
    for message in (Example, SequenceExample, Feature, BytesList):
        assert message.DESCRIPTOR.full_name.startswith("tfrecord_s3."), message
    assert Example.DESCRIPTOR.file.name == "tfrecord_s3/proto/example.proto"


def test_known_bytes_from_tensorflow_layout() -> None:
    # An Example {"a": int64_list [1, 300]} as TensorFlow serializes it.
    example = Example()
    example.features.feature["a"].int64_list.value.extend([1, 300])
    assert example.SerializeToString() == b"\n\x0e\n\x0c\n\x01a\x12\x07\x1a\x05\n\x03\x01\xac\x02"


def test_committed_generated_code_is_fresh(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (the test extra) is needed to regenerate the protos")
    regen = _load_regen_script()
    written = regen.generate(tmp_path)  # type: ignore[attr-defined]
    assert written
    for path in written:
        committed = ROOT / "tfrecord_s3" / "proto" / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} is stale: run python scripts/regen_proto.py"
        )


def test_generated_code_has_no_runtime_version_gate() -> None:
    # The gate would demand protobuf >= the generating protoc (see scripts/regen_proto.py).
    for name in ("feature_pb2.py", "example_pb2.py"):
        text = (ROOT / "tfrecord_s3" / "proto" / name).read_text(encoding="utf-8")
        assert "ValidateProtobufRuntimeVersion" not in text
        assert "runtime_version" not in text


def test_generated_modules_import_from_a_fresh_interpreter() -> None:
    code = "from tfrecord_s3.proto import example_pb2, feature_pb2; print(example_pb2.Example.DESCRIPTOR.full_name)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "tfrecord_s3.Example"


def test_bytearray_and_memoryview_records_parse_on_every_protobuf() -> None:
    # upb before protobuf 5.28 rejects a bytearray ("expected bytes, bytearray found"); the
    # records a reader hands over may be any buffer. .ci/run runs this under protobuf 4.25.
    example = Example()
    example.features.feature["a"].int64_list.value.extend([7, -1])
    record = example.SerializeToString()
    for buffer in (record, bytearray(record), memoryview(record)):
        assert tfrecord_s3.parse_example(buffer)["a"].tolist() == [7, -1]
        assert tfrecord_s3.parse_example(buffer, {"a": tfrecord_s3.VarLenFeature("int64")})["a"].tolist() == [7, -1]
        batch = tfrecord_s3.parse_example_batch([buffer, buffer], {"a": tfrecord_s3.FixedLenFeature([2], "int64")})
        assert batch["a"].tolist() == [[7, -1], [7, -1]]


# Run inside the TensorFlow interpreter: argv = [order, directory]. Writes records with
# TensorFlow, reads them back with our reader, and compares both decoders feature by feature.
_NEXT_TO_TENSORFLOW = """
import sys
order, directory = sys.argv[1], sys.argv[2]
if order == "tensorflow first":
    import tensorflow as tf
    import tfrecord_s3 as tfr
else:
    import tfrecord_s3 as tfr
    import tensorflow as tf
import numpy as np

def example(i):
    feature = {
        "f": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5, -0.0, i / 3])),
        "i": tf.train.Feature(int64_list=tf.train.Int64List(value=[i, -(2**63), 2**63 - 1])),
        "b": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"", bytes([i]) * i, "ключ".encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

written = [example(i) for i in range(5)]
for compression in ("", "GZIP"):
    path = f"{directory}/records-{compression or 'none'}.tfrecord"
    with tf.io.TFRecordWriter(path, options=compression) as writer:
        for record in written:
            writer.write(record)
    assert list(tfr.tf_record_iterator(path, compression)) == written, compression

tf_specs = {
    "f": tf.io.VarLenFeature(tf.float32),
    "i": tf.io.FixedLenFeature([3], tf.int64),
    "b": tf.io.VarLenFeature(tf.string),
    "absent": tf.io.FixedLenFeature([2], tf.float32, default_value=[4.0, 5.0]),
}
our_specs = {
    "f": tfr.VarLenFeature("float32"),
    "i": tfr.FixedLenFeature([3], "int64"),
    "b": tfr.VarLenFeature("string"),
    "absent": tfr.FixedLenFeature([2], "float32", default_value=[4.0, 5.0]),
}
for record in written:
    theirs = tf.io.parse_example(record, tf_specs)
    ours = tfr.parse_example(record, our_specs)
    assert sorted(ours) == sorted(theirs)
    for key in ("f", "b"):
        assert list(ours[key]) == theirs[key].values.numpy().tolist(), key
    assert ours["f"].dtype == np.float32 and ours["f"].tobytes() == theirs["f"].values.numpy().tobytes()
    for key in ("i", "absent"):
        assert ours[key].dtype == theirs[key].numpy().dtype, key
        assert ours[key].tobytes() == theirs[key].numpy().tobytes(), key
    # Without a spec: every feature, typed by its kind, as TensorFlow's own message has it.
    message = tf.train.Example.FromString(record)
    untyped = tfr.parse_example(record)
    for key, feature in message.features.feature.items():
        kind = feature.WhichOneof("kind")
        assert list(untyped[key]) == list(getattr(feature, kind).value), key
print("ok", tf.__version__)
"""


@pytest.mark.parametrize("order", ["tensorflow first", "tfrecord_s3 first"])
def test_imports_next_to_tensorflow_in_one_process(tf_python: Path, order: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(tf_python), "-c", _NEXT_TO_TENSORFLOW, order, str(tmp_path)],
        cwd=tmp_path,
        env=tensorflow_env.subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("ok 2.16.")


def test_tensorflow_io_imports_in_the_same_process(tf_python: Path) -> None:
    # tensorflow-io 0.37.1 is the release for TensorFlow 2.16; its users must be able to load both.
    code = "import tensorflow, tensorflow_io, tfrecord_s3; print(tensorflow_io.__version__)"
    done = subprocess.run(
        [str(tf_python), "-c", code], env=tensorflow_env.subprocess_env(), capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0 and "No module named 'tensorflow_io'" in done.stderr:
        pytest.skip(f"{tf_python} (from ${tensorflow_env.ENV_VAR}) has no tensorflow_io")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "0.37.1"
