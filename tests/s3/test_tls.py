"""S3 over TLS (a front with a CA made at test time), set up only by the variables a
TensorFlow user sets: S3_CA_FILE, AWS_CA_BUNDLE, S3_VERIFY_SSL, S3_USE_HTTPS."""

from __future__ import annotations

import time
import warnings

import pytest

import tfrecord_s3 as tfr
from tests.cli.conftest import run_cli
from tests.conftest import S3Env
from tests.servers.tls import Certificates, TlsFront
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client

RECORDS = [f"record {i}".encode() * (1 + i % 9) for i in range(200)]


@pytest.fixture
def url(s3_env: S3Env) -> str:
    return s3_env.put("tls/data.tfrecord", b"".join(encode_frame(r) for r in RECORDS))


def test_s3_ca_file_verifies_the_server(
    url: str, tls_front: TlsFront, tls_certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_CA_FILE", str(tls_certificates.ca_file))
    assert list(tfr.tf_record_iterator(url)) == RECORDS
    written = url.replace("data", "written")
    with tfr.TFRecordWriter(written) as writer:
        writer.write(b"over tls")
    assert list(tfr.tf_record_iterator(written)) == [b"over tls"]
    assert tls_front.handshake_failures == 0


def test_aws_ca_bundle_is_honoured_like_boto3_does(
    url: str, tls_front: TlsFront, tls_certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls_certificates.ca_file))
    assert list(tfr.tf_record_iterator(url)) == RECORDS


def test_s3_ca_file_wins_over_aws_ca_bundle(
    url: str, tls_front: TlsFront, tls_certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_CA_FILE", str(tls_certificates.ca_file))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls_certificates.cert_file))  # not a CA: would fail
    assert list(tfr.tf_record_iterator(url)) == RECORDS


def test_no_ca_fails_fast_naming_s3_ca_file(url: str, tls_front: TlsFront) -> None:
    began = time.monotonic()
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(url)
    assert time.monotonic() - began < 20  # no retry storm on a certificate problem
    message = str(caught.value)
    assert url in message
    assert "S3_CA_FILE" in message
    assert "certificate" in message


def test_verify_off_works_with_one_warning_ours(url: str, tls_front: TlsFront, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_VERIFY_SSL", "0")
    monkeypatch.setattr(s3_client, "_warned_insecure", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(tfr.tf_record_iterator(url)) == RECORDS
        assert len(list(tfr.TFRecordDataset([url, url], num_parallel_reads=2))) == 2 * len(RECORDS)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "S3_VERIFY_SSL" in messages[0]


def test_verify_off_in_the_cli_prints_one_warning(s3_env: S3Env, url: str, tls_front: TlsFront) -> None:
    env = {
        "S3_ENDPOINT": tls_front.host_port,
        "S3_USE_HTTPS": "1",
        "S3_VERIFY_SSL": "0",
        "AWS_ACCESS_KEY_ID": s3_env.key_id,
        "AWS_SECRET_ACCESS_KEY": s3_env.secret,
        "AWS_REGION": "us-east-1",
    }
    result = run_cli("count", url, env=env)
    assert result.code == 0, result.err
    assert "InsecureRequestWarning" not in result.err
    lines = [line for line in result.err.splitlines() if "S3_VERIFY_SSL" in line]
    assert len(lines) == 1, result.err


def test_plain_http_to_the_tls_port_says_so(url: str, tls_front: TlsFront, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(url)
    message = str(caught.value)
    assert "S3_USE_HTTPS" in message
    assert "TLS" in message


def test_tls_to_a_plain_port_says_so(s3_env: S3Env, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_USE_HTTPS", "1")
    s3_client.clear_client_cache()
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(url)
    assert "does not speak TLS" in str(caught.value)
    assert "S3_USE_HTTPS=0" in str(caught.value)
