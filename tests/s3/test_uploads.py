"""A writer killed (SIGKILL) mid-multipart leaves nothing visible under its key; its parts
are listed and aborted by ``tfrecord-s3 uploads PREFIX [--abort]``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.cli.conftest import REPO, run_cli
from tests.conftest import S3Env

_WRITER = """
import sys, time, tfrecord_s3 as tfr
from tfrecord_s3.config import MIN_PART_SIZE
config = tfr.S3Config.from_env(part_size=MIN_PART_SIZE)
out = tfr.open(sys.argv[1], "wb", config=config)
out.write(b"x" * (2 * MIN_PART_SIZE + 100))
assert out.parts_uploaded == 2
print("parts sent", flush=True)
time.sleep(600)
"""


def s3_vars(s3_env: S3Env) -> dict[str, str]:
    names = ("S3_ENDPOINT", "S3_USE_HTTPS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
    return {name: os.environ[name] for name in names}


@pytest.mark.servers("moto", "rgw", reason="moto and one real server prove it; each kill costs a writer's start")
def test_a_killed_writer_leaves_nothing_visible_and_its_upload_can_be_aborted(s3_env: S3Env) -> None:
    url = s3_env.url("jobs/run-1/part-00000.tfrecord")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, url], stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "parts sent\n"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    listed = s3_env.client.list_objects_v2(Bucket=s3_env.bucket, Prefix="jobs/")
    assert listed.get("KeyCount", 0) == 0  # nothing under the key, nor beside it
    prefix = s3_env.url("jobs/")

    result = run_cli("uploads", prefix, env=s3_vars(s3_env))
    assert result.code == 0, result.err
    assert url in result.out
    assert f"1 incomplete upload under {prefix}" in result.out
    assert run_cli("uploads", s3_env.url("other/"), env=s3_vars(s3_env)).out.startswith("0 incomplete uploads")

    aborted = run_cli("uploads", "--abort", prefix, env=s3_vars(s3_env))
    assert aborted.code == 0, aborted.err
    assert "1 aborted upload" in aborted.out
    assert s3_env.client.list_multipart_uploads(Bucket=s3_env.bucket, Prefix="jobs/").get("Uploads", []) == []
    assert run_cli("uploads", prefix, env=s3_vars(s3_env)).out.startswith("0 incomplete uploads")


def test_list_uploads_under_a_prefix(s3_env: S3Env) -> None:
    from tfrecord_s3.storage.s3_uploads import list_uploads

    ids = {
        s3_env.client.create_multipart_upload(Bucket=s3_env.bucket, Key=f"many/k{i:02d}")["UploadId"] for i in range(3)
    }
    assert {u.upload_id for u in list_uploads(s3_env.url("many/"))} == ids
    with pytest.raises(Exception, match="s3://"):
        list_uploads("/local/path")
