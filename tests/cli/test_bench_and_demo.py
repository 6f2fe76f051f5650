"""``bench`` and ``demo`` end to end, as a subprocess."""

from __future__ import annotations

import re

from tests import golden
from tests.cli.conftest import CliS3, run_cli


def test_bench_json_figures_over_local_files() -> None:
    files = [str(golden.path_of(n)) for n in ("raw_records.tfrecord", "examples_zlib.tfrecord.zz")]
    result = run_cli("bench", "--json", "--parallel", "2", *files)
    assert result.code == 0, result.err
    [figures] = result.json_lines()
    expected = golden.expected()["files"]
    assert figures["files"] == 2
    assert figures["records"] == 20 + 200
    assert figures["bytes"] == sum(expected["raw_records.tfrecord"]["record_lengths"]) + sum(
        expected["examples_zlib.tfrecord.zz"]["record_lengths"]
    )
    assert figures["parallel"] == 2
    assert figures["decode"] is False
    assert figures["records_per_s"] > 0
    assert 0 < figures["first_record_seconds"] <= figures["seconds"]


def test_bench_decode_text_report() -> None:
    result = run_cli("bench", "--decode", str(golden.path_of("examples_gzip.tfrecord.gz")))
    assert result.code == 0, result.err
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.out.splitlines())
    assert fields["records"] == "200"
    assert fields["decode"] == "yes"
    assert float(fields["MB/s"]) > 0


def test_bench_over_s3_counts_requests(cli_s3: CliS3) -> None:
    path = cli_s3.put("bench/raw.tfrecord", golden.path_of("raw_records.tfrecord").read_bytes())
    [figures] = run_cli("bench", "--json", path, env=cli_s3.env).json_lines()
    assert figures["records"] == 20
    assert figures["requests"] >= 1
    assert figures["retries"] == 0


def test_bench_on_a_corrupted_file_exits_with_the_corrupt_code(tmp_path: object) -> None:
    from pathlib import Path

    path = golden.write_corrupted("corrupt_data_crc_bitflip.tfrecord", Path(str(tmp_path)))
    result = run_cli("bench", str(path))
    assert result.code == 5
    assert f"{path} at byte 4253" in result.one_error_line()


def test_demo_runs_end_to_end_on_its_own_server() -> None:
    result = run_cli("demo", "--small", timeout=120)
    assert result.code == 0, result.err
    out = result.out
    assert "local S3 server (moto) at http://127.0.0.1:" in out
    assert "wrote 3 shards x 300 records = 900 tf.train.Example records" in out
    assert "read 900 records" in out
    assert "records per shard: 0: 300, 1: 300, 2: 300" in out
    assert "every id 0..899 read exactly once: yes" in out
    assert re.search(r"[\d,]+ records/s, [\d.]+ MB/s, \d+ GET requests, 0 retries", out), out
    assert '"label_name": "' in out
    assert "16x16x3 uint8 image" in out
