"""Keys that a signing bug would break (each character is escaped differently in the path,
the canonical request and the query of a LIST), on every server: written by our writer, read
back, stat'ed, listed and globbed under exactly their names."""

from __future__ import annotations

import random

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tfrecord_s3.config import MIN_PART_SIZE, S3Config
from tfrecord_s3.storage import s3_files

KEYS = {
    "space": "with space/a b  c.tfrecord",
    "plus": "plus/a+b+.tfrecord",
    "percent": "percent/100% and %41 %2F.tfrecord",
    "equals": "equals/k=v,x==y.tfrecord",
    "tilde": "tilde/~user/f~1.tfrecord",
    "unicode": "unicode/ünïcødé-日本語-😀.tfrecord",
    "deep": "/".join(f"level-{i}" for i in range(12)) + "/leaf.tfrecord",
    "mixed": "mixed/a b+c%d=e~f ü&$@!'(),;.tfrecord",
}


def records_for(name: str) -> list[bytes]:
    rng = random.Random(name)
    return [rng.randbytes(rng.randrange(0, 2000)) for _ in range(40)]


@pytest.mark.parametrize("name", list(KEYS))
def test_a_key_with_special_characters_round_trips(s3_env: S3Env, name: str) -> None:
    key = KEYS[name]
    url = s3_env.url(key)
    records = records_for(name)
    with tfr.TFRecordWriter(url) as writer:
        for record in records:
            writer.write(record)
    assert list(tfr.tf_record_iterator(url)) == records
    # The server stored it under exactly this name.
    listed = s3_env.client.list_objects_v2(Bucket=s3_env.bucket)["Contents"]
    assert [o["Key"] for o in listed] == [key]
    assert tfr.stat(url).length == listed[0]["Size"]
    assert tfr.exists(url)
    parent, _, leaf = key.rpartition("/")
    assert tfr.listdir(s3_env.url(parent)) == [leaf]
    assert tfr.glob(s3_env.url(f"{parent}/*")) == [url]
    with tfr.open(url, "rb") as f:
        f.seek(7)
        assert f.read(5) == s3_env.get(key)[7:12]


def test_a_multipart_upload_to_a_special_key(s3_env: S3Env) -> None:
    key = KEYS["mixed"]
    data = random.Random(5).randbytes(MIN_PART_SIZE + 4321)
    with s3_files.open_s3(s3_env.url(key), "wb", config=S3Config.from_env(part_size=MIN_PART_SIZE)) as out:
        out.write(data)
        assert out.parts_uploaded == 1  # type: ignore[attr-defined]
    assert s3_env.get(key) == data
    with tfr.open(s3_env.url(key), "rb") as f:
        f.seek(MIN_PART_SIZE - 3)
        assert f.read(10) == data[MIN_PART_SIZE - 3 : MIN_PART_SIZE + 7]
