"""TFRecordIterableDataset from s3:// on every S3 server, through DataLoader workers (each
forked worker makes its own boto3 clients): every record exactly once."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import S3Env
from tests.servers.pool import parametrize_servers
from tfrecord_s3.records.framing import encode_frame

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

from tfrecord_s3.torch import TFRecordIterableDataset  # noqa: E402


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_servers(metafunc)


def test_workers_read_each_record_once_from_s3(s3_env: S3Env) -> None:
    everything = []
    for f in range(5):
        recs = [f"shard {f} record {i} ".encode() * (1 + i % 5) for i in range(60 + 7 * f)]
        s3_env.put(f"torch/part {f}+x.tfrecord", b"".join(encode_frame(r) for r in recs))
        everything.extend(recs)
    ds = TFRecordIterableDataset(s3_env.url("torch/part *+x.tfrecord"))
    seen = list(DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="fork"))
    assert Counter(seen) == Counter(everything)
