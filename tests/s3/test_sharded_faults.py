"""ShardedWriter on S3 when a part upload fails in its background thread."""

from __future__ import annotations

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.index.test_sharded import list_keys, records
from tfrecord_s3.config import MIN_PART_SIZE, S3Config


def test_s3_failed_part_aborts_the_upload(s3_env: S3Env, s3_proxy: FaultProxy) -> None:
    # The second part of the first shard is refused while the caller keeps writing: the error
    # reaches the caller, and neither an object nor an unfinished upload is left.
    rule = s3_proxy.add_rule(Fault.access_denied(), method="PUT", key_regex=r"out/x-.*", nth=2)
    config = S3Config.from_env(part_size=MIN_PART_SIZE)
    pattern = s3_env.url("out/x-{index}-of-{count}.tfrecord")
    with pytest.raises(tfr.AccessDeniedError), tfr.ShardedWriter(pattern, upload_concurrency=2, config=config) as w:
        for record in records(200, 100_000):
            w.write(record)
    assert s3_proxy.rule_counts(rule)[1] == 1
    assert list_keys(s3_env) == []
    assert s3_env.client.list_multipart_uploads(Bucket=s3_env.bucket).get("Uploads", []) == []
