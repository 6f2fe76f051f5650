#!/usr/bin/env bash
# Creates the peer virtualenvs the benchmarks compare against. They live outside the repo and are
# never project dependencies. TensorFlow and PyPI `tfrecord` cannot share a process (both register
# `tensorflow.BytesList`), so they get separate environments:
#   $VENVS/tf     tensorflow-cpu 2.16 + tensorflow-io 0.37.1 (the pair that still reads s3://)
#   $VENVS/peers  PyPI tfrecord, s3fs, boto3, and s3torchconnector on a CPU torch when it installs
#   s3rver        the local S3 server (npm s3rver@3.7.1) under $TFR_BENCH_DIR/s3rver (default <repo>/.bench)
# Usage: bash benchmarks/setup_peers.sh [tf|peers|s3rver ...]   (default: all three). A failed install
# is reported and the script goes on; benchmarks skip a peer whose venv lacks the package.
set -u
VENVS=${TFR_BENCH_VENVS:-/work/.venvs}
PYTHON=${PYTHON:-python3}
mkdir -p "$VENVS"
failures=()

make_venv() {  # $1 = name
    local dir="$VENVS/$1"
    if [ ! -x "$dir/bin/python" ]; then
        "$PYTHON" -m venv "$dir" || return 1
    fi
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
}

pip_in() {  # $1 = venv name, rest = pip arguments
    local name=$1; shift
    echo "== [$name] pip install $*"
    if ! "$VENVS/$name/bin/python" -m pip install -q "$@"; then
        echo "!! [$name] pip install $* failed" >&2
        failures+=("$name: $*")
        return 1
    fi
}

setup_tf() {
    make_venv tf || { failures+=("tf: venv"); return; }
    # tensorflow-io 0.37.1 is built against TF 2.16; newer TF loads it but its s3:// filesystem breaks.
    pip_in tf "tensorflow-cpu==2.16.*" "tensorflow-io==0.37.1" numpy || return
    "$VENVS/tf/bin/python" - <<'PY' || failures+=("tf: import check")
import os
import tensorflow_io  # noqa: F401  (must come before tensorflow for the s3:// filesystem)
import tensorflow as tf
print("tf", tf.__version__, "tf-io", tensorflow_io.__version__)
os._exit(0)
PY
}

setup_peers() {
    make_venv peers || { failures+=("peers: venv"); return; }
    pip_in peers tfrecord s3fs boto3 numpy crc32c
    # s3torchconnector depends on torch; installing the CPU wheel first keeps pip from pulling CUDA.
    if pip_in peers "torch==2.13.0"; then
        pip_in peers s3torchconnector || true
    fi
    "$VENVS/peers/bin/python" - <<'PY' || true
import importlib
for name in ("tfrecord", "s3fs", "boto3", "torch", "s3torchconnector"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as exc:  # report and go on: the benchmarks skip what is missing
        print(name, "NOT importable:", type(exc).__name__, exc)
PY
}

setup_s3rver() {
    local repo dir
    repo=$(cd "$(dirname "$0")/.." && pwd)
    dir=${TFR_BENCH_DIR:-$repo/.bench}/s3rver
    echo "== [s3rver] npm install s3rver@3.7.1 into $dir"
    npm install --prefix "$dir" --no-audit --no-fund --silent s3rver@3.7.1 || failures+=("s3rver: npm install")
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(tf peers s3rver)
for target in "${targets[@]}"; do
    case $target in
        tf) setup_tf ;;
        peers) setup_peers ;;
        s3rver) setup_s3rver ;;
        *) echo "unknown target: $target (tf|peers|s3rver)" >&2; exit 2 ;;
    esac
done

if [ ${#failures[@]} -gt 0 ]; then
    echo "setup_peers: failed steps:" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "setup_peers: done"
