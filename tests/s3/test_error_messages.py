"""S3 errors that say what to do, against real servers on 127.0.0.1: moto (tests/conftest.py),
a closed port, and moto spoken to in TLS although it serves plain HTTP."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import tfrecord_s3 as tfr
from tests.conftest import FAKE_KEY_ID, FAKE_SECRET, S3Env
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client

CHECK = "check that a server listens there, and S3_ENDPOINT (HOST:PORT) and S3_USE_HTTPS"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def use_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str, https: str = "0") -> None:
    monkeypatch.setenv("S3_ENDPOINT", endpoint)
    monkeypatch.setenv("S3_USE_HTTPS", https)
    monkeypatch.setenv("S3_CONNECT_TIMEOUT_MSEC", "2000")
    s3_client.clear_client_cache()


def assert_no_secret(error: BaseException) -> None:
    assert FAKE_SECRET not in str(error)
    assert FAKE_KEY_ID not in str(error)


def test_stopped_server_names_the_endpoint_and_the_reason(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    use_endpoint(monkeypatch, f"127.0.0.1:{port}")
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(s3_env.url("k.tfrecord"))
    assert type(caught.value) is tfr.StorageError
    assert str(caught.value) == (
        f"stat {s3_env.url('k.tfrecord')}: cannot connect to http://127.0.0.1:{port} (Connection refused): {CHECK}"
    )
    assert_no_secret(caught.value)


def test_endpoint_without_a_port_says_which_port_was_used(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 80)) == 0:
            pytest.skip("something listens on 127.0.0.1:80 here: no refused connection to provoke")
    use_endpoint(monkeypatch, "127.0.0.1")
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(s3_env.url("k.tfrecord"))
    assert str(caught.value) == (
        f"stat {s3_env.url('k.tfrecord')}: cannot connect to http://127.0.0.1:80 (Connection refused; "
        f"the URL has no port, so the default 80 was used): {CHECK}"
    )


def test_https_to_a_plain_http_server_says_it_does_not_speak_tls(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_endpoint(monkeypatch, f"127.0.0.1:{s3_env.port}", https="1")
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(s3_env.url("k.tfrecord"))
    assert str(caught.value) == (
        f"stat {s3_env.url('k.tfrecord')}: https://127.0.0.1:{s3_env.port} does not speak TLS (it answered the "
        "TLS handshake with something else, likely plain HTTP): set S3_USE_HTTPS=0, or give S3_ENDPOINT as an "
        "http:// URL"
    )
    assert_no_secret(caught.value)


def test_unknown_profile_is_a_config_error_naming_it(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[profile training]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    s3_client.clear_client_cache()
    with pytest.raises(tfr.ConfigError) as caught:
        tfr.stat(s3_env.url("k.tfrecord"))
    assert str(caught.value) == (
        f"AWS_PROFILE='nosuch': no such profile in {config} or {tmp_path / 'aws-empty'} (profiles found: "
        "training); create it (aws configure --profile nosuch) or set AWS_PROFILE to one that exists"
    )


def test_bucket_without_a_key_is_not_a_file(s3_env: S3Env) -> None:
    for path in (f"s3://{s3_env.bucket}", f"s3://{s3_env.bucket}/"):
        with pytest.raises(tfr.ConfigError) as caught:
            list(tfr.open_records(path))
        assert str(caught.value) == (
            f"{path} is a bucket, not a file: to read the files in it, pass a glob such as "
            f"'s3://{s3_env.bucket}/*' (or 's3://{s3_env.bucket}/*.tfrecord')"
        )


@pytest.mark.parametrize("given", ["train", "train/"])
def test_prefix_given_as_a_file_says_so_and_suggests_a_glob(s3_env: S3Env, given: str) -> None:
    s3_env.put("train/part-0.tfrecord", encode_frame(b"x"))
    path = s3_env.url(given)
    expected = (
        f"{path} is a prefix (a directory), not a file: to read the files in it, pass a glob such as "
        f"'{s3_env.url('train/*')}' (or '{s3_env.url('train/*.tfrecord')}')"
    )
    with pytest.raises(tfr.ConfigError) as caught:
        list(tfr.open_records(path))
    assert str(caught.value) == expected
    with pytest.raises(tfr.ConfigError) as in_dataset:
        list(TFRecordDataset(path))
    assert str(in_dataset.value) == expected
    assert list(TFRecordDataset(s3_env.url("train/*"))) == [b"x"]  # the advice works


def test_a_key_that_is_nothing_at_all_is_still_not_found(s3_env: S3Env) -> None:
    with pytest.raises(tfr.ObjectNotFoundError, match="not found"):
        list(tfr.open_records(s3_env.url("absent.tfrecord")))


def test_server_gone_between_head_and_get_names_the_endpoint(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # HEAD answered by moto; the ranged GETs go to a port where nothing listens (the server
    # "stopped"): the retries run out, and the error says why.
    from tfrecord_s3.config import S3Config
    from tfrecord_s3.storage.retry import RetryPolicy
    from tfrecord_s3.storage.s3_path import S3Path
    from tfrecord_s3.storage.s3_reader import S3RangeReader, head_object
    from tfrecord_s3.storage.stream import BlockStream

    url = s3_env.put("k.tfrecord", b"x" * 1000)
    location = S3Path.parse(url)
    head = head_object(location, S3Config.from_env())
    port = closed_port()
    gone = S3Config.from_env().replace(endpoint_url=f"http://127.0.0.1:{port}")
    stream = BlockStream(
        S3RangeReader(location, gone, head=head),
        policy=RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.001),
        sleep=lambda _: None,
    )
    with pytest.raises(tfr.RetriesExhaustedError) as caught:
        stream.read(10)
    stream.close()
    assert str(caught.value) == (
        f"read {url} at byte 0: gave up after 2 tries (1 retries on this stream): cannot connect to "
        f"http://127.0.0.1:{port} (Connection refused): {CHECK}"
    )


@pytest.fixture
def self_signed_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate no CA signed; (port, its cert file)."""
    import datetime
    import http.server
    import ssl
    import threading

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_untrusted_certificate_says_which_setting_trusts_it(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch, self_signed_server: tuple[int, Path]
) -> None:
    port, cert_file = self_signed_server
    use_endpoint(monkeypatch, f"127.0.0.1:{port}", https="1")
    with pytest.raises(tfr.StorageError) as caught:
        tfr.stat(s3_env.url("k.tfrecord"))
    assert re.fullmatch(
        re.escape(f"stat {s3_env.url('k.tfrecord')}: the TLS certificate of https://127.0.0.1:{port} did not verify (")
        + r"self[- ]signed certificate"
        + re.escape("): set S3_CA_FILE (or AWS_CA_BUNDLE) to the CA bundle that signed it ")
        + re.escape("(S3_VERIFY_SSL=0 skips the check)"),
        str(caught.value),
    ), str(caught.value)
    # The advice works: with the CA file the handshake passes (this server then answers 501).
    monkeypatch.setenv("S3_CA_FILE", str(cert_file))
    s3_client.clear_client_cache()
    with pytest.raises(tfr.StorageError) as trusted:
        tfr.stat(s3_env.url("k.tfrecord"))
    assert "TLS" not in str(trusted.value)
    assert "(HTTP 501)" in str(trusted.value)
