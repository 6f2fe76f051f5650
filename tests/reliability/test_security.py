"""No secret key, session token or signature in reprs, pickles or error messages; the
insecure-TLS warning comes once. (Logs at DEBUG during faulty reads: scenario A3 in
test_object.py. botocore's own DEBUG logs print signed headers; they are botocore's,
outside our loggers, so the checks cover the ``tfrecord_s3`` loggers only.)"""

from __future__ import annotations

import pickle
import socket
import traceback
import warnings
from collections.abc import Iterator

import pytest

import tfrecord_s3 as tfr
from tests.reliability.corpus import make_file
from tests.reliability.scenarios_object import leaks
from tests.reliability.world import FAKE_TOKEN, World, environment
from tfrecord_s3.config import S3Config
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.storage import s3_client
from tfrecord_s3.storage.s3_files import open_s3, open_s3_stream


@pytest.fixture
def with_token(world: World) -> Iterator[World]:
    with environment({"AWS_SESSION_TOKEN": FAKE_TOKEN}, cleared=()):
        yield world


def test_config_dataset_and_stream_reprs_and_pickles_hold_no_secret(with_token: World) -> None:
    world = with_token
    url = world.put("sec.tfrecord", make_file(0, 5).blob)
    config = world.config()
    texts = {"config repr": repr(config), "config pickle": str(pickle.dumps(config))}
    dataset = TFRecordDataset([url], config=config)
    assert len(list(dataset)) == 5
    texts["dataset repr"] = repr(dataset)
    texts["dataset pickle"] = str(pickle.dumps(TFRecordDataset([url], config=config)))
    with open_s3(url, config=config) as handle:
        texts["reader repr"] = repr(handle) + repr(handle.raw)  # type: ignore[attr-defined]
    stream = open_s3_stream(url, config=config)
    try:
        with pytest.raises(TypeError) as refused:
            pickle.dumps(stream)
        texts["stream pickle refusal"] = str(refused.value)
        texts["range reader pickle"] = str(pickle.dumps(stream._reader))
    finally:
        stream.close()
    torch_module = pytest.importorskip("tfrecord_s3.torch")
    texts["torch dataset pickle"] = str(pickle.dumps(torch_module.TFRecordIterableDataset([url], config=config)))
    assert leaks(texts) == []
    assert "fake" not in texts["config repr"].lower()  # the config holds no credential at all


def test_error_texts_hold_no_secret_for_a_dead_endpoint(with_token: World) -> None:
    with socket.socket() as placeholder:  # a port nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    config = S3Config.from_env(endpoint_url=f"http://127.0.0.1:{port}", connect_timeout=0.5, botocore_max_attempts=1)
    with pytest.raises(tfr.StorageError) as caught, open_s3(f"s3://{with_token.bucket}/k", config=config) as f:
        f.read(1)  # an open sends no request: its first read raises
    error = caught.value
    texts = {
        "message": str(error),
        "repr": repr(error),
        "pickle": str(pickle.dumps(error)),
        "traceback": "".join(traceback.format_exception(error)),
    }
    assert leaks(texts) == []
    assert "?" not in str(error)  # no query string (presigned or not) in our message
    assert f"s3://{with_token.bucket}/k" in str(error)


def test_insecure_tls_warns_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_client, "_warned_insecure", False)
    with environment({"S3_VERIFY_SSL": "0"}, cleared=()), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for block_size in (4096, 8192):  # two configs, two roles: four clients
            config = S3Config.from_env(block_size=block_size)
            assert config.verify_ssl is False
            s3_client.get_client(config, "control")
            s3_client.get_client(config, "data")
    ours = [w for w in caught if "S3_VERIFY_SSL" in str(w.message)]
    assert len(ours) == 1
