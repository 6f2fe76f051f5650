"""The server crashes mid-epoch and is back 5 s later: the dataset waits for it within the
stall budget and yields exactly what an undisturbed epoch yields, in the same order."""

from __future__ import annotations

import threading

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tests.servers.base import S3Server
from tfrecord_s3.records.framing import encode_frame


@pytest.mark.servers("swift", reason="its proxy restarts on its own port with its data kept on disk")
def test_a_server_restart_mid_epoch_changes_nothing(
    s3_env: S3Env, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert s3_server.restart is not None
    for f in range(8):
        recs = [f"shard {f} record {i} ".encode() * 100 for i in range(300)]
        s3_env.put(f"restart/part-{f}.tfrecord", b"".join(encode_frame(r) for r in recs))
    pattern = s3_env.url("restart/part-*.tfrecord")
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "5000")  # a 10 s stall budget
    expected = list(tfr.TFRecordDataset(pattern, num_parallel_reads=2))
    got = []
    restart = threading.Thread(target=s3_server.restart, args=(5.0,))
    for i, record in enumerate(tfr.TFRecordDataset(pattern, num_parallel_reads=2)):
        got.append(record)
        if i == 400:  # two files open, six not yet: their HEADs come during the outage
            restart.start()
    restart.join()
    assert got == expected
