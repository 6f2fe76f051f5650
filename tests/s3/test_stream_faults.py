"""RELIABILITY.md's fault scenarios over real HTTP: the fault proxy (tests/faults/proxy.py)
sits between our client and moto, configured through S3_ENDPOINT as a user would. Each
fault gives the identical records, or the typed error RELIABILITY.md names."""

from __future__ import annotations

import logging
import random

import pytest

import tfrecord_s3 as tfr
from tests.conftest import S3Env
from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault, default_storm_faults
from tfrecord_s3.config import S3Config
from tfrecord_s3.records.framing import encode_frame
from tfrecord_s3.records.reader import open_records
from tfrecord_s3.storage import s3_files

KiB = 1024
BLOCK = 16 * KiB
KEY = "faulty.tfrecord"
# full_200 drops the signed Range header: only a server that checks no signature answers.
UNSIGNED = "the fault rewrites a signed header"


def make_records(count: int = 60, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 2000)) for _ in range(count)]


RECORDS = make_records()
FILE = b"".join(encode_frame(r) for r in RECORDS)  # ~60 KiB: 4 blocks


def fast_config(**changes: object) -> S3Config:
    """The environment's settings (S3_ENDPOINT = the proxy) with small blocks, quick backoff."""
    options: dict[str, object] = {
        "block_size": BLOCK,
        "read_ahead": 2,
        "backoff_base": 0.001,
        "throttle_backoff_base": 0.002,
        "max_attempts": 4,
    }
    options.update(changes)
    return S3Config.from_env(**options)


@pytest.fixture
def url(s3_env: S3Env) -> str:
    return s3_env.put(KEY, FILE)


def read_records(url: str, config: S3Config) -> list[bytes]:
    return list(open_records(url, config=config))


def gets(proxy: FaultProxy) -> list[str | None]:
    proxy.wait_idle()
    return [r.range_header for r in proxy.requests(method="GET", key=KEY)]


def test_no_fault_baseline(url: str, s3_proxy: FaultProxy) -> None:
    assert read_records(url, fast_config()) == RECORDS
    assert sorted(gets(s3_proxy), key=lambda r: int(r.split("=")[1].split("-")[0])) == [  # type: ignore[union-attr]
        f"bytes={s}-{min(s + BLOCK, len(FILE)) - 1}" for s in range(0, len(FILE), BLOCK)
    ]
    assert s3_proxy.bytes_sent(key=KEY) == len(FILE)
    # Connections are reused (keep-alive): at most one per concurrent GET (the block being
    # read and two read ahead), plus one for the HEAD (a separate client).
    assert len({r.conn for r in s3_proxy.requests(method="GET")}) <= 3
    assert len({r.conn for r in s3_proxy.requests()}) <= 4


def test_n1_reset_before_headers_is_retried(url: str, s3_proxy: FaultProxy) -> None:
    s3_proxy.add_rule(Fault.reset_before_headers(), method="GET", key=KEY, nth=2)
    assert read_records(url, fast_config()) == RECORDS
    assert len(gets(s3_proxy)) == 5


@pytest.mark.parametrize("cut", [0, 1, 11, 12, 500, BLOCK - 1])
def test_n3_clean_close_resumes_at_the_exact_byte(url: str, s3_proxy: FaultProxy, cut: int) -> None:
    s3_proxy.add_rule(Fault.close_after(cut), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    config = fast_config(read_ahead=0)
    with s3_files.open_s3_stream(url, config=config) as stream:
        assert stream.readall() == FILE
        counters = stream.counters()
    assert f"bytes={BLOCK + cut}-{2 * BLOCK - 1}" in gets(s3_proxy)
    assert counters.retries == 1
    assert counters.bytes_received == len(FILE)  # 0 bytes re-downloaded
    assert s3_proxy.bytes_sent(key=KEY) == len(FILE)


@pytest.mark.parametrize("cut", [5, 700, 9000])
def test_n2_reset_after_n_bytes_resumes(url: str, s3_proxy: FaultProxy, cut: int) -> None:
    s3_proxy.add_rule(Fault.reset_after(cut), method="GET", key=KEY, window=(2 * BLOCK, 2 * BLOCK + 1))
    config = fast_config(read_ahead=0)
    with s3_files.open_s3_stream(url, config=config) as stream:
        assert stream.readall() == FILE
        assert stream.retries == 1
    # A reset may drop bytes already in flight: the resume starts at or before the cut,
    # never after it, and re-downloads at most one block.
    resumed = [r for r in gets(s3_proxy) if r and r.endswith(f"-{3 * BLOCK - 1}")]
    assert len(resumed) == 2
    start = int(resumed[1].split("=")[1].split("-")[0])  # type: ignore[union-attr]
    assert 2 * BLOCK <= start <= 2 * BLOCK + cut
    assert s3_proxy.bytes_sent(key=KEY) - len(FILE) <= BLOCK


def test_n4_cuts_swept_over_the_first_records_give_identical_records(url: str, s3_proxy: FaultProxy) -> None:
    # Offsets inside the first records' headers, data and CRCs (absolute object offsets).
    first = [0, 12, 12 + len(RECORDS[0]), 16 + len(RECORDS[0])]
    cuts = sorted({o + d for o in first for d in (0, 1, 5)} | {777, 3001})
    config = fast_config(read_ahead=0)
    for cut in cuts:
        s3_proxy.clear_rules()
        s3_proxy.add_rule(Fault.close_after(cut, absolute=True), method="GET", key=KEY)
        assert read_records(url, config) == RECORDS, cut


def test_n5_stall_longer_than_the_read_timeout_resumes(
    url: str, s3_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_REQUEST_TIMEOUT_MSEC", "300")
    s3_proxy.add_rule(Fault.stall(1.5, after=100), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    config = fast_config(read_ahead=0)
    assert config.read_timeout == 0.3
    with s3_files.open_s3_stream(url, config=config) as stream:
        assert stream.readall() == FILE
        assert stream.retries == 1
    assert f"bytes={BLOCK + 100}-{2 * BLOCK - 1}" in gets(s3_proxy)


def test_n6_slow_down_for_the_next_gets_backs_off_and_counts(url: str, s3_proxy: FaultProxy) -> None:
    s3_proxy.add_rule(Fault.slow_down(), method="GET", key=KEY, times=3)
    config = fast_config(read_ahead=0)
    with s3_files.open_s3_stream(url, config=config) as stream:
        assert stream.readall() == FILE
        assert stream.throttles == 3
        assert stream.retries == 3
    assert len(gets(s3_proxy)) == 4 + 3


def test_n7_500_forever_on_one_object_exhausts_the_budget(s3_env: S3Env, url: str, s3_proxy: FaultProxy) -> None:
    other = s3_env.put("healthy.tfrecord", FILE)
    s3_proxy.add_rule(Fault.internal_error(), method="GET", key=KEY, times=None)
    config = fast_config(max_attempts=4)
    assert read_records(other, config) == RECORDS  # the earlier file completes
    seen: list[bytes] = []
    with pytest.raises(tfr.RetriesExhaustedError) as caught:
        for record in open_records(url, config=config):
            seen.append(record)
    assert seen == []
    error = caught.value
    assert (error.path, error.offset, error.attempts) == (url, 0, 4)
    assert url in str(error)
    assert "byte 0" in str(error)
    # Our budget alone: botocore does not retry data GETs on top of it (4 tries for block 0;
    # read-ahead blocks may have started their own tries before the error surfaced).
    assert gets(s3_proxy).count(f"bytes=0-{BLOCK - 1}") == 4


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.wrong_content_range(), id="wrong-content-range"),
        pytest.param(Fault.partial_200(), id="partial-200"),
        pytest.param(Fault.full_200(), id="full-200", marks=pytest.mark.servers("moto", reason=UNSIGNED)),
    ],
)
def test_n8_a_reply_for_the_wrong_bytes_is_never_parsed(url: str, s3_proxy: FaultProxy, fault: Fault) -> None:
    s3_proxy.add_rule(fault, method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    seen: list[bytes] = []
    with pytest.raises(tfr.ResponseError) as caught:
        for record in open_records(url, config=fast_config(read_ahead=0)):
            seen.append(record)
    assert RECORDS[: len(seen)] == seen  # only records that lie before the bad block
    assert sum(len(r) + 16 for r in seen) <= BLOCK
    assert url in str(caught.value)


@pytest.mark.servers("moto", reason=UNSIGNED)
def test_n8_whole_object_200_for_a_range_from_zero_is_accepted(s3_env: S3Env, s3_proxy: FaultProxy) -> None:
    url = s3_env.put("one-block.tfrecord", FILE)
    s3_proxy.add_rule(Fault.full_200(), method="GET", key="one-block")
    # One block covering the object: a 200 with the whole object is the same bytes.
    assert read_records(url, fast_config(block_size=len(FILE) + 1)) == RECORDS
    # With smaller blocks, the first GET (from byte 0) may be answered in full too.
    s3_proxy.add_rule(Fault.full_200(), method="GET", key="one-block", window=(0, 1))
    assert read_records(url, fast_config(read_ahead=0)) == RECORDS


def test_n9_a_flipped_bit_is_a_corrupt_record_never_emitted(url: str, s3_proxy: FaultProxy) -> None:
    target = 5  # a record in the first block
    offset = sum(len(r) + 16 for r in RECORDS[:target])
    s3_proxy.add_rule(Fault.flip_bit(offset + 12, absolute=True), method="GET", key=KEY)
    seen: list[bytes] = []
    with pytest.raises(tfr.CorruptRecordError) as caught:
        for record in open_records(url, config=fast_config()):
            seen.append(record)
    assert seen == RECORDS[:target]
    assert caught.value.offset == offset
    assert caught.value.part == "data"


def test_storm_of_survivable_faults_gives_every_record_exactly_once(s3_env: S3Env, s3_proxy: FaultProxy) -> None:
    urls = [s3_env.put(f"storm-{i}.tfrecord", FILE) for i in range(3)]
    s3_proxy.start_storm(seed=7, fraction=0.4, faults=default_storm_faults(BLOCK), key="storm-")
    config = fast_config(max_attempts=10, retry_budget=100)
    retries = 0
    for one in urls:
        with s3_files.open_s3_stream(one, config=config) as stream:
            assert stream.readall() == FILE
            retries += stream.retries
    storm = s3_proxy.stop_storm()
    assert storm is not None
    assert storm.injected > 0
    assert retries >= 1


def test_logs_name_the_offset_and_never_a_secret(
    s3_env: S3Env, url: str, s3_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    s3_proxy.add_rule(Fault.close_after(10), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
    s3_proxy.add_rule(Fault.slow_down(), method="GET", key=KEY, window=(2 * BLOCK, 2 * BLOCK + 1))
    with caplog.at_level(logging.DEBUG, logger="tfrecord_s3"):
        assert read_records(url, fast_config(read_ahead=0)) == RECORDS
    ours = [r for r in caplog.records if r.name.startswith("tfrecord_s3")]
    assert [r.levelno for r in ours] == [logging.WARNING, logging.WARNING]
    text = "\n".join(r.getMessage() for r in ours)
    assert f"{url} at byte {BLOCK + 10}" in text
    assert "SlowDown" in text
    for secret in (s3_env.secret, s3_env.key_id, "Signature", "Authorization"):
        assert secret not in text


# Cuts inside the reply's head: in the status line ("HTTP/1.1 206" then close is parsed by
# http.client as a 206 without headers), between headers, before the blank line.
HEAD_CUTS = [*range(30), *range(30, 420, 17)]


def test_a_reply_cut_anywhere_in_its_head_is_retried_from_the_same_byte(url: str, s3_proxy: FaultProxy) -> None:
    for cut in HEAD_CUTS:
        rule = s3_proxy.add_rule(Fault.cut_head(cut), method="GET", key=KEY, window=(BLOCK, BLOCK + 1))
        assert read_records(url, fast_config(read_ahead=0)) == RECORDS, cut
        assert s3_proxy.rule_counts(rule)[1] == 1, cut
        s3_proxy.remove_rule(rule)
