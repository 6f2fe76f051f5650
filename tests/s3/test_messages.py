"""Messages that say what to do: a region mismatch, a missing bucket."""

from __future__ import annotations

import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env


def read_one(url: str) -> bytes:
    """Open and read a byte (an open sends no request: its first read raises)."""
    with tfr.open(url, "rb") as f:
        return f.read(1)


def test_a_missing_bucket_says_no_such_bucket_everywhere(s3_env: S3Env) -> None:
    url = f"s3://{s3_env.bucket}-absent/dir/x.tfrecord"
    for name, call in {
        "stat": lambda: tfr.stat(url),
        "read": lambda: read_one(url),
        "iterate": lambda: list(tfr.tf_record_iterator(url)),
    }.items():
        with pytest.raises(tfr.ObjectNotFoundError, match="no such bucket") as caught:
            call()
        assert f"s3://{s3_env.bucket}-absent/" in str(caught.value), name


def test_a_missing_key_in_an_existing_bucket_is_plain_not_found(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    with pytest.raises(tfr.ObjectNotFoundError) as caught:
        read_one(s3_env.url("nope.tfrecord"))
    assert "no such bucket" not in str(caught.value)
    assert "not found" in str(caught.value)
    assert s3_counter.counts["HeadBucket"] <= 1  # at most one look at the bucket


@pytest.mark.servers("swift", reason="Swift's s3api checks the region of a HEAD and answers a bare 400")
def test_a_wrong_region_names_aws_region(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    url = s3_env.put("region.tfrecord", b"")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    for call in (lambda: tfr.stat(url), lambda: read_one(url)):
        with pytest.raises(tfr.StorageError) as caught:
            call()
        assert "AWS_REGION" in str(caught.value)
        assert url in str(caught.value)
