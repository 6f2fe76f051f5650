"""Closing a dataset's iterator ends its S3 reads at once, a stalled GET included."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault
from tests.waiting import wait_until
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.records.framing import encode_frame


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tfrecord-s3 prefetch")]


def test_close_aborts_a_get_stalled_mid_body_instead_of_waiting_for_it(
    s3_env: S3Env, s3_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read timeout longer than the test: only breaking the connection ends that GET.
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "120000")
    first = s3_env.put("close/a.tfrecord", b"".join(encode_frame(b"a%d" % i) for i in range(10)))
    second = s3_env.put("close/b.tfrecord", b"".join(encode_frame(b"b%d" % i) for i in range(10)))
    s3_proxy.add_rule(Fault.stall(120, after=3), method="GET", key="close/b.tfrecord")
    it = iter(TFRecordDataset([first, second], num_parallel_reads=2))
    assert next(it) == b"a0"
    assert wait_until(lambda: bool(s3_proxy.requests(method="GET", key="close/b.tfrecord")))
    assert _prefetch_threads()
    it.close()  # type: ignore[attr-defined]
    # close() joins its readers for at most 2 s: a reader still waiting on its GET would be left.
    assert _prefetch_threads() == []
