"""S3Config: TensorFlow's environment variables, validation, precedence, no secrets."""

from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path

import pytest

from tfrecord_s3.config import S3Config
from tfrecord_s3.errors import ConfigError
from tfrecord_s3.storage import s3_client


def test_defaults_match_tensorflow() -> None:
    config = S3Config.from_env({})
    assert config.region == "us-east-1"
    assert config.endpoint_url is None
    assert config.verify_ssl is True
    assert not config.uses_path_style


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"S3_ENDPOINT": "127.0.0.1:9000"}, "https://127.0.0.1:9000"),
        ({"S3_ENDPOINT": "127.0.0.1:9000", "S3_USE_HTTPS": "0"}, "http://127.0.0.1:9000"),
        ({"S3_ENDPOINT": "minio.local", "S3_USE_HTTPS": "false"}, "http://minio.local"),
        ({"S3_ENDPOINT": "http://127.0.0.1:9000/"}, "http://127.0.0.1:9000"),
        # A full URL's scheme wins over S3_USE_HTTPS.
        ({"S3_ENDPOINT": "https://storage.googleapis.com", "S3_USE_HTTPS": "0"}, "https://storage.googleapis.com"),
    ],
)
def test_endpoint_forms(env: dict[str, str], url: str) -> None:
    config = S3Config.from_env(env)
    assert config.endpoint_url == url
    assert config.uses_path_style  # TensorFlow forces path-style for a custom endpoint


def test_timeouts_region_and_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    config = S3Config.from_env(
        {
            "AWS_REGION": "eu-west-3",
            "S3_CONNECT_TIMEOUT_MSEC": "1500",
            "S3_REQUEST_TIMEOUT_MSEC": "2000",
            "S3_CA_FILE": str(ca),
            "S3_VERIFY_SSL": "0",
        }
    )
    assert (config.region, config.connect_timeout, config.read_timeout) == ("eu-west-3", 1.5, 2.0)
    assert config.ca_file == str(ca)
    assert config.verify_ssl is False


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("S3_USE_HTTPS", "maybe"),
        ("S3_VERIFY_SSL", "2"),
        ("S3_CONNECT_TIMEOUT_MSEC", "fast"),
        ("S3_REQUEST_TIMEOUT_MSEC", "-5"),
        ("S3_REQUEST_TIMEOUT_MSEC", "0"),
        ("S3_ENDPOINT", "ftp://host:21"),
        ("S3_ENDPOINT", "host:port"),
        ("S3_ENDPOINT", ":9000"),
        ("S3_CA_FILE", "/nonexistent/ca.pem"),
        ("AWS_CA_BUNDLE", "/nonexistent/ca.pem"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        S3Config.from_env({var: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("block_size", 0), ("read_ahead", -1), ("part_size", 1024), ("list_page_size", 1001), ("max_attempts", 0),
     ("read_timeout", 0), ("endpoint_url", "127.0.0.1:9000"), ("region", ""), ("block_size", True)],
)
def test_bad_fields_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        S3Config(**{field: value})  # type: ignore[arg-type]


def test_explicit_settings_beat_the_environment() -> None:
    env = {"AWS_REGION": "eu-west-1", "S3_ENDPOINT": "a:1", "S3_USE_HTTPS": "0"}
    config = S3Config.from_env(env, region="ap-south-1", block_size=1 << 20)
    assert config.region == "ap-south-1"
    assert config.block_size == 1 << 20
    assert config.endpoint_url == "http://a:1"
    assert config.replace(read_ahead=0).read_ahead == 0
    with pytest.raises(ConfigError, match="block_size"):
        config.replace(block_size=-1)
    with pytest.raises(ConfigError, match="no_such_knob"):
        S3Config.from_env({}, no_such_knob=1)


def test_frozen_hashable_and_pickles_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    config = S3Config.from_env()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.region = "x"  # type: ignore[misc]
    assert {config: 1}[S3Config.from_env()] == 1
    blob = pickle.dumps(config)
    assert pickle.loads(blob) == config
    for text in (repr(config), str(config)):
        assert secret not in text
        assert "AKIA" not in text
    assert secret.encode() not in blob
    assert b"AKIA" not in blob


def test_environment_is_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "sa-east-1")
    assert S3Config.from_env().region == "sa-east-1"
    monkeypatch.setenv("AWS_REGION", "af-south-1")
    assert S3Config.from_env().region == "af-south-1"


def test_insecure_warning_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_client, "_warned_insecure", False)
    config = S3Config(verify_ssl=False, endpoint_url="https://127.0.0.1:1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s3_client._make_client(config.client_settings, "control")
        s3_client._make_client(config.client_settings, "data")
    assert [str(w.message) for w in caught if "S3_VERIFY_SSL" in str(w.message)] != []
    assert len([w for w in caught if "S3_VERIFY_SSL" in str(w.message)]) == 1


def test_client_cache_is_per_process_and_per_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    s3_client.clear_client_cache()
    a = S3Config(endpoint_url="http://127.0.0.1:1")
    first = s3_client.get_client(a)
    assert s3_client.get_client(S3Config(endpoint_url="http://127.0.0.1:1")) is first
    assert s3_client.get_client(a, "data") is not first
    assert s3_client.get_client(a.replace(region="eu-west-1")) is not first
    assert s3_client.get_client(a.replace(read_timeout=5.0)) is not first
    # Stream policy is not part of a client: a dataset whose files get other block sizes,
    # windows or retry budgets still shares one client (and its connection pool).
    policy = a.replace(block_size=1 << 20, read_ahead=1, first_block_size=1 << 20, retry_budget=3, max_attempts=2)
    assert s3_client.get_client(policy) is first
    assert s3_client.get_client(policy, "data") is s3_client.get_client(a, "data")
    # A forked child must not reuse the parent's client (and its connection pool).
    monkeypatch.setattr(s3_client, "_pid", -1)
    assert s3_client.get_client(a) is not first
    s3_client.clear_client_cache()


def test_clients_skip_optional_checksums_and_botocore_retries_for_data() -> None:
    config = S3Config(endpoint_url="http://127.0.0.1:1", botocore_max_attempts=4, stall_budget=1000)
    control = s3_client._make_client(config.client_settings, "control")
    data = s3_client._make_client(config.client_settings, "data")
    assert control.meta.config.request_checksum_calculation == "when_required"
    assert control.meta.config.response_checksum_validation == "when_required"
    assert control.meta.config.retries["total_max_attempts"] == 4
    assert data.meta.config.retries["total_max_attempts"] == 1
    assert control.meta.config.s3["addressing_style"] == "path"


def test_the_stall_budget_defaults_to_two_read_timeouts_and_bounds_control_tries() -> None:
    config = S3Config.from_env({"S3_REQUEST_TIMEOUT_MSEC": "5000"})
    assert config.effective_stall_budget == 10.0
    # botocore's 3 tries of a HEAD to a frozen server would take 3 read timeouts: 2 fit.
    assert config.control_attempts == 2
    assert s3_client._make_client(config.client_settings, "control").meta.config.retries["total_max_attempts"] == 2
    tight = S3Config.from_env({"S3_REQUEST_TIMEOUT_MSEC": "5000", "S3_STALL_BUDGET_MSEC": "3000"})
    assert (tight.effective_stall_budget, tight.control_attempts) == (3.0, 1)
    with pytest.raises(ConfigError, match="S3_STALL_BUDGET_MSEC"):
        S3Config.from_env({"S3_STALL_BUDGET_MSEC": "soon"})
    with pytest.raises(ConfigError, match="stall_budget"):
        S3Config(stall_budget=0)
