"""stat / exists / glob / listdir / open on s3:// against moto, with TensorFlow's semantics
(and where TensorFlow is wrong, ours: errors that are not "not found" raise)."""

from __future__ import annotations

import io
import pickle
import socket

import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tfrecord_s3.config import S3Config
from tfrecord_s3.storage import s3_client, s3_files


@pytest.fixture
def tree(s3_env: S3Env) -> S3Env:
    for key in [
        "data/train-00000-of-00003.tfrecord",
        "data/train-00001-of-00003.tfrecord",
        "data/train-00002-of-00003.tfrecord",
        "data/eval-0.tfrecord",
        "data/sub/deep.tfrecord",
        "data/sub/deeper/x.bin",
        "data/empty-dir/",
        "top.txt",
    ]:
        s3_env.put(key, b"" if key.endswith("/") else key.encode())
    return s3_env


def test_stat_file_directory_and_root(tree: S3Env) -> None:
    info = tfr.stat(tree.url("data/eval-0.tfrecord"))
    assert info.length == len(b"data/eval-0.tfrecord")
    assert not info.is_directory
    assert info.mtime_nsec > 1_500_000_000 * 10**9
    for path in ("data", "data/", "data/sub", "data/empty-dir", ""):
        assert tfr.stat(tree.url(path)) == tfr.FileStatistics(0, 0, True), path
    assert tfr.stat(f"s3://{tree.bucket}").is_directory


@pytest.mark.parametrize("key", ["nope.tfrecord", "dat", "data/su", "nope/"])
def test_stat_missing_is_object_not_found_naming_the_path(tree: S3Env, key: str) -> None:
    with pytest.raises(tfr.ObjectNotFoundError) as caught:
        tfr.stat(tree.url(key))
    assert isinstance(caught.value, FileNotFoundError)
    assert tree.url(key) in str(caught.value)
    assert caught.value.path == tree.url(key)


def test_missing_bucket_is_object_not_found(s3_env: S3Env) -> None:
    url = f"s3://{s3_env.bucket}-absent/x.tfrecord"
    for call in (tfr.stat, _read_one, tfr.listdir, tfr.tf_record_iterator):
        with pytest.raises(tfr.ObjectNotFoundError, match=f"{s3_env.bucket}-absent"):
            call(url)
    assert not tfr.exists(url)
    # A misspelt bucket is an error, not an empty dataset.
    with pytest.raises(tfr.ObjectNotFoundError, match="no such bucket"):
        tfr.glob(f"s3://{s3_env.bucket}-absent/*")


def test_exists(tree: S3Env) -> None:
    assert tfr.exists(tree.url("top.txt"))
    assert tfr.exists(tree.url("data"))
    assert tfr.exists(tree.url("data/sub/"))
    assert tfr.exists(tree.url())
    assert not tfr.exists(tree.url("data/nope"))
    assert not tfr.exists(tree.url("dat"))


def test_glob(tree: S3Env) -> None:
    def names(pattern: str) -> list[str]:
        return [p.removeprefix(tree.url()) for p in tfr.glob(tree.url(pattern))]

    assert names("data/train-*") == [f"data/train-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert names("data/train-0000[02]-*") == [
        "data/train-00000-of-00003.tfrecord",
        "data/train-00002-of-00003.tfrecord",
    ]
    assert names("data/train-0000[!02]-*") == ["data/train-00001-of-00003.tfrecord"]
    assert names("data/eval-?.tfrecord") == ["data/eval-0.tfrecord"]
    # '*' does not cross '/', and directories match like files (TensorFlow's GetMatchingPaths).
    assert names("data/*") == [
        "data/empty-dir",
        "data/eval-0.tfrecord",
        "data/sub",
        *[f"data/train-0000{i}-of-00003.tfrecord" for i in range(3)],
    ]
    assert names("*/sub/*") == ["data/sub/deep.tfrecord", "data/sub/deeper"]
    assert names("data/*/*.tfrecord") == ["data/sub/deep.tfrecord"]
    assert names("*") == ["data", "top.txt"]
    assert names("top.txt") == ["top.txt"]
    assert names("nothing*") == []
    assert names("missing.txt") == []


def test_glob_reads_every_page(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    keys = [f"shards/part-{i:03d}.tfrecord" for i in range(40)]
    for key in keys:
        s3_env.put(key, b"x")
    config = S3Config.from_env(list_page_size=7)
    s3_counter.reset()
    assert tfr.glob(s3_env.url("shards/part-*.tfrecord"), config=config) == [s3_env.url(k) for k in keys]
    assert s3_counter.counts["ListObjectsV2"] == 6  # ceil(40 / 7): never one page only
    s3_counter.reset()
    assert len(tfr.glob(s3_env.url("*/part-0[0-2]?.tfrecord"), config=config)) == 30
    assert s3_counter.counts["ListObjectsV2"] == 6
    assert tfr.listdir(s3_env.url("shards"), config=config) == [k.split("/")[1] for k in keys]


def test_listdir(tree: S3Env) -> None:
    assert tfr.listdir(tree.url("data")) == [
        "empty-dir",
        "eval-0.tfrecord",
        "sub",
        *[f"train-0000{i}-of-00003.tfrecord" for i in range(3)],
    ]
    assert tfr.listdir(tree.url("data/sub/")) == ["deep.tfrecord", "deeper"]
    assert tfr.listdir(tree.url()) == ["data", "top.txt"]
    assert tfr.listdir(tree.url("data/empty-dir")) == []
    with pytest.raises(tfr.ObjectNotFoundError, match="no such directory"):
        tfr.listdir(tree.url("nope"))


def test_open_is_seekable_and_buffered(s3_env: S3Env) -> None:
    data = bytes(range(256)) * 400
    url = s3_env.put("blob.bin", data)
    config = S3Config.from_env(block_size=10_000, read_ahead=2)
    with s3_files.open_s3(url, "rb", config=config) as f:
        assert isinstance(f, io.BufferedReader)
        assert f.seekable()
        assert f.read(10) == data[:10]
        f.seek(55_555)
        assert f.read(20_000) == data[55_555:75_555]
        f.seek(-5, io.SEEK_END)
        assert f.read() == data[-5:]
        assert f.read() == b""
        f.seek(3)
        assert f.tell() == 3
        assert f.read(4) == data[3:7]
        raw = f.raw
        assert raw.size == len(data)  # type: ignore[attr-defined]
        assert raw.requests >= 5  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="mode"):
        tfr.open(url, "r+b")


def test_config_pickles_and_streams_do_not(s3_env: S3Env) -> None:
    url = s3_env.put("p.bin", b"abc")
    config = S3Config.from_env()
    assert pickle.loads(pickle.dumps(config)) == config
    with s3_files.open_s3(url, "rb") as f, pytest.raises(TypeError):
        pickle.dumps(f.raw)


def _read_one(url: str) -> bytes:
    with tfr.open(url, "rb") as f:
        return f.read(1)


def test_access_denied_raises_everywhere_with_a_clean_message(tree: S3Env, s3_proxy: FaultProxy) -> None:
    s3_proxy.add_rule(Fault.access_denied(), times=None)
    url = tree.url("data/eval-0.tfrecord")
    calls = {
        "stat": lambda: tfr.stat(url),
        "exists": lambda: tfr.exists(url),  # TensorFlow says False here: we raise
        "glob": lambda: tfr.glob(tree.url("data/*")),
        "listdir": lambda: tfr.listdir(tree.url("data")),
        "read": lambda: _read_one(url),  # an open sends no request: its first read raises
        "iterate": lambda: list(tfr.tf_record_iterator(url)),
    }
    for name, call in calls.items():
        with pytest.raises(tfr.AccessDeniedError) as caught:
            call()
        message = str(caught.value)
        assert isinstance(caught.value, PermissionError), name
        assert f"s3://{tree.bucket}/" in message, name
        for secret in (tree.secret, tree.key_id, "Signature", "Credential="):
            assert secret not in message, (name, secret)
        assert pickle.loads(pickle.dumps(caught.value)).path == caught.value.path


def test_expired_token_after_headers_is_access_denied(tree: S3Env, s3_proxy: FaultProxy) -> None:
    s3_proxy.add_rule(Fault.expired_token(), method="GET", times=None)
    url = tree.url("top.txt")
    with tfr.open(url, "rb") as f, pytest.raises(tfr.AccessDeniedError, match="ExpiredToken"):
        f.read()


def test_dead_endpoint_raises_instead_of_saying_false(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("S3_ENDPOINT", f"127.0.0.1:{port}")
    monkeypatch.setenv("S3_CONNECT_TIMEOUT_MSEC", "500")
    s3_client.clear_client_cache()
    config = S3Config.from_env(botocore_max_attempts=1)  # skip botocore's backoff: faster
    assert config.connect_timeout == 0.5
    with pytest.raises(tfr.StorageError) as caught:
        tfr.exists(s3_env.url("x"), config=config)
    assert not isinstance(caught.value, FileNotFoundError)
    assert s3_env.url("x") in str(caught.value)
    with pytest.raises(tfr.StorageError):
        tfr.glob(s3_env.url("*"), config=config)
