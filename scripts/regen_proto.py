#!/usr/bin/env python3
"""Regenerate tfrecord_s3/proto/*_pb2.py(i) from proto/*.proto with grpcio-tools' protoc.

Usage: ``python scripts/regen_proto.py`` (needs the ``test`` extra: grpcio-tools is pinned
there, so every machine produces byte-identical output). ``--out DIR`` writes elsewhere
(tests/unit/test_proto.py uses it to check the committed files are not stale).

The sources are staged under ``tfrecord_s3/proto/`` in a temporary include root, so protoc
names them ``tfrecord_s3/proto/<name>.proto``: that makes the generated cross-file import
``from tfrecord_s3.proto import feature_pb2`` (an installed package path) and keeps the
descriptor file names distinct from TensorFlow's in protobuf's default pool.

One post-processing step: protoc 7.x gencode starts with
``runtime_version.ValidateProtobufRuntimeVersion(..., 7, 35, 1, ...)``, which refuses any
protobuf runtime older than the protoc that generated it. That would force protobuf>=7.35
on every user and make us uninstallable next to TensorFlow releases that pin protobuf 5.x
or 6.x. The generated code itself only calls builder APIs present since protobuf 4.21
(``AddSerializedFile``, ``BuildMessageAndEnumDescriptors``, ``BuildTopDescriptorsAndMessages``),
so the check is removed. The generated modules are tested on the protobuf floor of
pyproject.toml (4.25, what TensorFlow 2.16/2.17 allow) and the newest: see .ci/run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_SOURCES = ROOT / "proto"
PACKAGE_DIR = ROOT / "tfrecord_s3" / "proto"
PROTO_NAMES = ("feature.proto", "example.proto")
# Import path of the generated modules, and so the directory the sources are staged in.
STAGED_PREFIX = Path("tfrecord_s3") / "proto"


def generated_names() -> list[str]:
    """File names protoc writes for our sources (module and stub per .proto)."""
    stems = [name.removesuffix(".proto") for name in PROTO_NAMES]
    return [f"{stem}_pb2{suffix}" for stem in stems for suffix in (".py", ".pyi")]


_VERSION_CHECK = re.compile(
    r"^from google\.protobuf import runtime_version as _runtime_version\n"
    r"|^_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:    .*\n)*?\)\n",
    re.MULTILINE,
)
_NOTE = "# Post-processed by scripts/regen_proto.py: protoc's runtime version check removed.\n"


def strip_version_check(source: str) -> str:
    """Drop the gencode's runtime version gate (see the module docstring for why)."""
    stripped, count = _VERSION_CHECK.subn("", source)
    if count not in (0, 2):
        raise RuntimeError(f"unexpected protoc output: matched {count} version-check pieces, expected 2")
    if count == 0:
        return source
    first_line_end = source.index("\n") + 1  # keep the coding line first
    return stripped[:first_line_end] + _NOTE + stripped[first_line_end:]


def generate(out_dir: Path) -> list[Path]:
    """Compile the .proto sources; write the generated files into ``out_dir`` (flat)."""
    from grpc_tools import protoc  # only needed here, so the runtime never depends on it

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        include_root = Path(tmp) / "src"
        staged = include_root / STAGED_PREFIX
        staged.mkdir(parents=True)
        for name in PROTO_NAMES:
            shutil.copyfile(PROTO_SOURCES / name, staged / name)
        build = Path(tmp) / "build"
        build.mkdir()
        args = [
            "protoc",
            f"-I{include_root}",
            f"--python_out={build}",
            f"--pyi_out={build}",
            *(str(STAGED_PREFIX / name) for name in PROTO_NAMES),
        ]
        status = protoc.main(args)
        if status != 0:
            raise RuntimeError(f"protoc failed with status {status}: {' '.join(args)}")
        written = []
        for name in generated_names():
            target = out_dir / name
            text = (build / STAGED_PREFIX / name).read_text(encoding="utf-8")
            if name.endswith(".py"):
                text = strip_version_check(text)
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
