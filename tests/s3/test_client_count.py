"""A process builds one boto3 client per role (HEAD/LIST vs ranged GETs) and per
:class:`~tfrecord_s3.config.ClientSettings`, however many files, streams and config
variants that differ only in stream policy it opens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tfrecord_s3.config import S3Config
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.storage import s3_client

RECORDS = [b"record %d " % i * (1 + i % 7) for i in range(300)]


@pytest.fixture
def built(s3_env: S3Env) -> Iterator[Counter[str]]:
    """How many clients were built, by role, from a cold cache on."""
    counts: Counter[str] = Counter()

    def hook(client: Any, config: Any, role: str) -> None:
        counts[role] += 1

    s3_client.clear_client_cache()
    remove = s3_client.add_client_hook(hook)
    yield counts
    remove()


def shards(s3_env: S3Env, count: int) -> list[str]:
    blob = b"".join(encode_frame(r) for r in RECORDS)
    return [s3_env.put(f"count/shard-{i}.tfrecord", blob) for i in range(count)]


def test_a_two_file_dataset_builds_one_client_per_role(s3_env: S3Env, built: Counter[str]) -> None:
    paths = shards(s3_env, 2)
    assert len(list(tfr.TFRecordDataset(paths))) == 2 * len(RECORDS)
    assert built == {"data": 1}  # no HEAD (the first GET says the size): no control client
    assert tfr.stat(paths[0]).length > 0
    assert built == {"control": 1, "data": 1}


def test_more_files_and_stream_policy_variants_build_no_more(s3_env: S3Env, built: Counter[str]) -> None:
    paths = shards(s3_env, 4)
    config = S3Config.from_env()
    assert len(list(tfr.TFRecordDataset(paths, num_parallel_reads=4))) == 4 * len(RECORDS)
    for variant in (config.replace(block_size=64 * 1024, read_ahead=2), config.replace(max_attempts=3)):
        assert variant.client_settings == config.client_settings
        with tfr.open(paths[0], "rb", config=variant) as f:
            assert len(f.read()) == len(b"".join(encode_frame(r) for r in RECORDS))
    assert built == {"data": 1}  # no HEAD: the first GETs said the sizes
