"""The data path's GetObject without botocore's call pipeline (tfrecord_s3/storage/direct_get.py):
signed by botocore's SigV4 signer and sent through the client's HTTP session, it must get the
same reply and raise the same errors as ``client.get_object``, on every server (Swift and
Ceph RGW check the signature for real), and keys that need escaping must sign right."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tfrecord_s3.config import S3Config
from tfrecord_s3.storage import direct_get, s3_client
from tfrecord_s3.storage.request_target import target_of
from tfrecord_s3.storage.s3_path import S3Path

DATA = random.Random(21).randbytes(40_000)


@pytest.fixture
def calls(s3_env: S3Env) -> Iterator[dict[str, int]]:
    """Per event, how often our clients emitted it: ``before-call`` only comes from
    botocore's own call pipeline, ``before-send`` from both paths."""
    seen = {"before-call": 0, "before-send": 0}

    def count(event_name: str, **kwargs: Any) -> None:
        seen[event_name.split(".", 1)[0]] += 1

    def hook(client: Any, config: Any, role: Any) -> None:
        client.meta.events.register("before-call.s3.GetObject", count)
        client.meta.events.register("before-send.s3.GetObject", count)

    s3_client.clear_client_cache()
    remove = s3_client.add_client_hook(hook)
    yield seen
    remove()
    s3_client.clear_client_cache()


@pytest.mark.parametrize("key", ["plain/object.bin", "odd keys/a+b=c&d~e!(1)'*;,@$ é.bin"])
def test_reads_go_around_botocore_and_are_exact(s3_env: S3Env, calls: dict[str, int], key: str) -> None:
    url = s3_env.put(key, DATA)
    config = S3Config.from_env(first_block_size=4096, block_size=16_384)
    with tfr.open(url, "rb", config=config) as f:
        assert f.read() == DATA
    assert calls["before-send"] >= 3  # 40 KB in blocks of at most 16 KiB
    assert calls["before-call"] == 0


def test_the_reply_has_the_shape_get_object_gives(s3_env: S3Env) -> None:
    url = s3_env.put("shape.bin", DATA)
    config = S3Config.from_env()
    client = s3_client.get_client(config, "data")
    headers = {"Range": "bytes=100-1099"}
    ours = direct_get.get_object(client, S3Path.parse(url), config, headers)
    theirs = client.get_object(Bucket=s3_env.bucket, Key="shape.bin", Range="bytes=100-1099")
    for field in ("ContentRange", "ETag", "ContentLength"):
        assert ours[field] == theirs[field]
    assert ours["ResponseMetadata"]["HTTPStatusCode"] == theirs["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ours["Body"].read() == theirs["Body"].read() == DATA[100:1100]


def failure(call: Any) -> tuple[type, str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return type(caught.value), error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize(
    ("key", "headers"),
    [
        ("missing.bin", {"Range": "bytes=0-9"}),  # NoSuchKey
        ("there.bin", {"Range": "bytes=0-9", "If-Match": '"0123456789abcdef0123456789abcdef"'}),  # changed
        ("there.bin", {"Range": f"bytes={len(DATA) + 10}-{len(DATA) + 20}"}),  # past the end
    ],
)
def test_error_replies_raise_what_get_object_raises(s3_env: S3Env, key: str, headers: dict[str, str]) -> None:
    s3_env.put("there.bin", DATA)
    config = S3Config.from_env()
    client = s3_client.get_client(config, "data")
    location = S3Path.parse(s3_env.url(key))
    params: dict[str, Any] = {"Bucket": s3_env.bucket, "Key": key, "Range": headers["Range"]}
    if "If-Match" in headers:
        params["IfMatch"] = headers["If-Match"]
    ours = failure(lambda: direct_get.get_object(client, location, config, headers))
    theirs = failure(lambda: client.get_object(**params))
    assert ours == theirs


def test_without_credentials_botocore_says_why(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    url = s3_env.put("anonymous.bin", DATA)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3_client.clear_client_cache()
    try:
        config = S3Config.from_env()
        client = s3_client.get_client(config, "data")
        with pytest.raises(Exception, match="credentials"):
            direct_get.get_object(client, S3Path.parse(url), config, {"Range": "bytes=0-9"})
    finally:
        s3_client.clear_client_cache()


@pytest.mark.parametrize(
    ("endpoint", "region"),
    [
        (None, "us-west-2"),
        (None, "us-east-1"),
        ("http://127.0.0.1:9000", "us-east-1"),
        ("https://s3.example", "eu-west-1"),
        ("AWS_ENDPOINT_URL=http://127.0.0.1:9000", "us-east-1"),  # botocore's own variable
    ],
)
@pytest.mark.parametrize("bucket", ["my-bucket", "my.bucket", "My_Bucket"])
def test_the_target_is_the_url_botocore_sends_to(
    endpoint: str | None, region: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore's own choice, read at its before-send hook and never sent anywhere.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    if endpoint is not None and endpoint.startswith("AWS_ENDPOINT_URL="):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.split("=", 1)[1])
        endpoint = None

    class Sent(Exception):
        pass

    def stop(request: Any, **kwargs: Any) -> None:
        raise Sent(request.url)

    config = S3Config(region=region, endpoint_url=endpoint)
    key = "dir/odd key+1~é.bin"
    s3_client.clear_client_cache()
    try:
        client = s3_client.get_client(config, "data")
        client.meta.events.register("before-send.s3.GetObject", stop)
        with pytest.raises(Sent) as sent:
            client.get_object(Bucket=bucket, Key=key, Range="bytes=0-9")
        target = target_of(S3Path(bucket, key), config)
        # us-east-1: botocore's rules pick the legacy global host, its metadata the regional
        # one; S3 serves that region's buckets on both.
        expected = str(sent.value).replace("s3.amazonaws.com", "s3.us-east-1.amazonaws.com")
        assert target.url == expected
    finally:
        s3_client.clear_client_cache()
