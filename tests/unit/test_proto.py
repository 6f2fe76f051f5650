"""The generated protobuf classes: wire numbers as TensorFlow's, fresh, importable next to TF."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def _python_with_tensorflow() -> str | None:
    """This interpreter if it has TensorFlow, else the peer virtualenv that
    benchmarks/setup_peers.sh makes (TFR_TF_PYTHON overrides its path)."""
    if importlib.util.find_spec("tensorflow") is not None:
        return sys.executable
    candidate = os.environ.get("TFR_TF_PYTHON", "/work/.venvs/tf/bin/python")
    return candidate if os.path.exists(candidate) else None


def test_imports_next_to_tensorflow_in_one_process() -> None:
    python = _python_with_tensorflow()
    if python is None:
        pytest.skip("no Python with tensorflow here (set TFR_TF_PYTHON); coexistence is checked where there is one")
    code = (
        "import tensorflow as tf\n"
        "import tfrecord_s3\n"
        "from tfrecord_s3.proto import Example\n"
        "tf_example = tf.train.Example()\n"
        "tf_example.features.feature['x'].float_list.value.extend([1.5, -0.0])\n"
        "ours = Example.FromString(tf_example.SerializeToString())\n"
        "assert list(ours.features.feature['x'].float_list.value) == [1.5, -0.0]\n"
        "assert tfrecord_s3.parse_example(tf_example.SerializeToString())['x'].tolist() == [1.5, -0.0]\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
