"""Every subcommand over local golden files (written by TensorFlow), as a subprocess."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import golden
from tests.cli.conftest import run_cli

GOLDEN = golden.GOLDEN_DIR
RECORD_FILES = golden.golden_files()

# (kind, offset of the damaged record) per corrupted file, from how corruption.json made it.
DAMAGE = {
    "corrupt_data_bitflip.tfrecord": ("corrupt-data", 4253),
    "corrupt_data_crc_bitflip.tfrecord": ("corrupt-data", 4253),
    "corrupt_length_bitflip.tfrecord": ("corrupt-length", 4253),
    "corrupt_length_crc_bitflip.tfrecord": ("corrupt-length", 4253),
    "truncated_in_header.tfrecord": ("truncated", 4253),
    "truncated_in_data.tfrecord": ("truncated", 4253),
    "truncated_in_data_crc.tfrecord": ("truncated", 4253),
    "trailing_garbage.tfrecord": ("truncated", 1211094),
    "examples_gzip_truncated.tfrecord.gz": ("truncated", 70112),
}


@pytest.fixture(scope="module")
def damaged_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("damaged")
    for name in golden.corrupted_files():
        golden.write_corrupted(name, directory)
    return directory


def num_records(name: str) -> int:
    return int(golden.expected()["files"][name]["num_records"])


# -- stat / ls ---------------------------------------------------------------------------


def test_stat_reports_length_mtime_and_directory_flag() -> None:
    path = GOLDEN / "raw_records.tfrecord"
    result = run_cli("stat", str(path), str(GOLDEN))
    assert result.code == 0, result.err
    blocks = result.out.strip().split("\n\n")
    fields = [dict(line.split(": ", 1) for line in block.splitlines()) for block in blocks]
    assert fields[0]["length"] == str(path.stat().st_size)
    assert fields[0]["mtime_nsec"] == str(path.stat().st_mtime_ns)
    assert fields[0]["is_directory"] == "false"
    assert fields[1]["path"] == str(GOLDEN)
    assert fields[1]["is_directory"] == "true"


def test_stat_json() -> None:
    path = GOLDEN / "one_empty_record.tfrecord"
    [info] = run_cli("stat", "--json", f"file://{path}").json_lines()
    assert info == {
        "path": f"file://{path}",
        "length": 16,
        "mtime_nsec": path.stat().st_mtime_ns,
        "mtime": info["mtime"],
        "is_directory": False,
    }
    assert info["mtime"].endswith("Z")


def test_stat_missing_file_exits_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tfrecord"
    result = run_cli("stat", str(missing))
    assert result.code == 3
    assert str(missing) in result.one_error_line()
    assert result.out == ""


def test_ls_glob_lists_paths_and_sizes() -> None:
    result = run_cli("ls", str(GOLDEN / "*.tfrecord*"))
    assert result.code == 0, result.err
    *rows, total = result.out.splitlines()
    listed = {line.split()[1]: int(line.split()[0]) for line in rows}
    expected = {str(GOLDEN / name): (GOLDEN / name).stat().st_size for name in RECORD_FILES}
    assert listed == expected
    assert total.split()[0] == str(sum(expected.values()))
    assert f"({len(expected)} entries)" in total


def test_ls_directory_lists_its_entries_as_json() -> None:
    entries = run_cli("ls", "--json", str(GOLDEN)).json_lines()
    names = sorted(Path(e["path"]).name for e in entries)
    assert names == sorted(p.name for p in GOLDEN.iterdir())
    by_name = {Path(e["path"]).name: e for e in entries}
    assert by_name["empty.tfrecord"]["length"] == 0
    assert by_name["examples_none.tfrecord"]["length"] == (GOLDEN / "examples_none.tfrecord").stat().st_size


def test_ls_pattern_matching_nothing_exits_not_found() -> None:
    result = run_cli("ls", str(GOLDEN / "*.nothing"))
    assert result.code == 3
    assert "no files match" in result.one_error_line()


# -- count -------------------------------------------------------------------------------


def test_count_every_golden_file_and_the_total() -> None:
    result = run_cli("count", str(GOLDEN / "*.tfrecord*"))
    assert result.code == 0, result.err
    *rows, total = result.out.splitlines()
    counted = {line.split()[1]: int(line.split()[0]) for line in rows}
    assert counted == {str(GOLDEN / name): num_records(name) for name in RECORD_FILES}
    assert total.split()[0] == str(sum(num_records(n) for n in RECORD_FILES))


def test_count_json_reports_records_and_payload_bytes() -> None:
    name = "raw_records.tfrecord"
    lines = run_cli("count", "--json", "--compression", "none", str(GOLDEN / name)).json_lines()
    lengths = json.loads(json.dumps(golden.expected()["files"][name]["record_lengths"]))
    assert lines == [
        {"path": str(GOLDEN / name), "records": 20, "bytes": sum(lengths)},
        {"total": 20, "bytes": sum(lengths), "files": 1},
    ]


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_count_stops_at_damage_with_the_corrupt_exit_code(name: str, damaged_dir: Path) -> None:
    path = damaged_dir / name
    result = run_cli("count", str(GOLDEN / "one_empty_record.tfrecord"), str(path))
    assert result.code == 5
    # The files before the damaged one were counted and printed first.
    assert result.out.split() == ["1", str(GOLDEN / "one_empty_record.tfrecord")]
    line = result.one_error_line()
    assert str(path) in line
    assert f"byte {DAMAGE[name][1]}" in line


def test_count_no_verify_counts_through_a_bad_data_crc(damaged_dir: Path) -> None:
    path = damaged_dir / "corrupt_data_bitflip.tfrecord"
    assert run_cli("count", str(path)).code == 5
    result = run_cli("count", "--no-verify", str(path))
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].split() == ["20", str(path)]


# -- verify ------------------------------------------------------------------------------


def test_verify_reports_path_offset_and_kind_of_every_problem(damaged_dir: Path) -> None:
    good = GOLDEN / "raw_records.tfrecord"
    result = run_cli("verify", str(damaged_dir / "*"), str(good))
    assert result.code == 1, result.err
    bad = [line.split(maxsplit=4) for line in result.out.splitlines() if line.startswith("BAD ")]
    reported = {Path(fields[1]).name: (fields[4].split(":")[0], int(fields[3])) for fields in bad}
    assert reported == DAMAGE
    assert f"OK   {good}  (20 records)" in result.out
    assert result.out.splitlines()[-1] == (
        f"verified {len(DAMAGE) + 1} files, {_good_records_before_damage() + 20} good records: "
        f"{len(DAMAGE)} problems in {len(DAMAGE)} files"
    )


def _good_records_before_damage() -> int:
    total = 0
    for name, (kind, _) in DAMAGE.items():
        info = golden.corruption()["files"][name]
        total += info["tensorflow"]["tf_record_iterator"]["records_yielded"]
        if kind == "corrupt-data":
            # A bad data CRC keeps the frame boundary: the records after it are checked too.
            total += num_records(info["base_file"]) - info["target_record_index"] - 1
    return total


def test_verify_json_keeps_going_after_a_bad_data_crc(damaged_dir: Path) -> None:
    path = damaged_dir / "corrupt_data_bitflip.tfrecord"
    result = run_cli("verify", "--json", str(path))
    assert result.code == 1
    report, summary = result.json_lines()
    assert report["path"] == str(path)
    assert report["ok"] is False
    assert report["records"] == 19  # every record but the damaged one
    [problem] = report["problems"]
    assert problem["offset"] == 4253
    assert problem["kind"] == "corrupt-data"
    assert "data CRC mismatch" in problem["detail"]
    assert summary == {"files": 1, "records": 19, "problems": 1, "damaged_files": 1}


def test_verify_clean_files_exit_zero() -> None:
    result = run_cli("verify", str(GOLDEN / "*.tfrecord*"))
    assert result.code == 0, result.err
    assert sum(line.startswith("OK ") for line in result.out.splitlines()) == len(RECORD_FILES)
    assert "0 problems in 0 files" in result.out


def test_verify_missing_file_exits_not_found(tmp_path: Path) -> None:
    result = run_cli("verify", str(tmp_path / "gone.tfrecord"))
    assert result.code == 3
    assert str(tmp_path / "gone.tfrecord") in result.one_error_line()


# -- head --------------------------------------------------------------------------------


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_head_raw_prints_records_as_base64_with_offsets() -> None:
    name = "raw_records.tfrecord"
    lines = run_cli("head", "--raw", "-n", "12", str(GOLDEN / name)).json_lines()
    info = golden.expected()["files"][name]
    assert [sha(base64.b64decode(line["raw"])) for line in lines] == info["record_sha256"][:12]
    offsets = np.cumsum([0] + [n + 16 for n in info["record_lengths"][:11]]).tolist()
    assert [line["offset"] for line in lines] == offsets
    assert [line["length"] for line in lines] == info["record_lengths"][:12]


def test_head_counts_records_across_files() -> None:
    files = [str(GOLDEN / "one_empty_record.tfrecord"), str(GOLDEN / "raw_records.tfrecord")]
    lines = run_cli("head", "--raw", "-n", "3", *files).json_lines()
    assert [(line["path"], line["offset"]) for line in lines] == [(files[0], 0), (files[1], 0), (files[1], 16)]
    assert run_cli("head", "-n", "0", *files).out == ""


def _bytes_of(value: Any) -> bytes:
    return base64.b64decode(value["base64"]) if isinstance(value, dict) else value.encode()


def _float32(value: Any) -> np.float32:
    return np.float32(float(value))


def _same_values(kind: str, ours: list[Any], theirs: list[Any]) -> bool:
    if kind == "int64_list":
        return ours == theirs
    if kind == "float_list":
        a = np.array([_float32(v) for v in ours], dtype=np.float32)
        b = np.array([_float32(v) for v in theirs], dtype=np.float32)
        return a.tobytes() == b.tobytes() or bool(np.array_equal(a, b, equal_nan=True) and _signs(a, b))
    decoded = [_bytes_of(v) for v in ours]
    expected = [golden.decode_bytes(v) for v in theirs]
    return all(
        (sha(d) == e["sha256"] if isinstance(e, dict) else d == e) for d, e in zip(decoded, expected, strict=True)
    )


def _signs(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    return bool(np.array_equal(np.signbit(a), np.signbit(b)))


def _check_features(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    for key, feature in theirs.items():
        if feature["kind"] is None:
            continue  # a Feature with no kind set: no values to compare
        assert key in ours, key
        assert _same_values(feature["kind"], ours[key], feature["value"]), key


def test_head_decodes_examples_as_tensorflow_did() -> None:
    name = "examples_none.tfrecord"
    result = run_cli("head", "-n", "1000", str(GOLDEN / name))
    assert result.code == 0, result.err
    lines = result.json_lines()
    expected = golden.expected()["files"][name]["records"]
    assert len(lines) == len(expected) == 200
    for line, record in zip(lines, expected, strict=True):
        _check_features(line["features"], record["features"])
    # Text stays text; bytes that are not UTF-8 come as base64.
    assert any(isinstance(v, str) and v for line in lines for v in line["features"].get("name", []))
    assert any(isinstance(v, dict) for line in lines for v in line["features"].get("raw", []))


def test_head_decodes_sequence_examples() -> None:
    name = "sequence_examples.tfrecord"
    lines = run_cli("head", "-n", "50", str(GOLDEN / name)).json_lines()
    expected = golden.expected()["files"][name]["records"]
    assert len(lines) == 50
    for line, record in zip(lines, expected, strict=True):
        _check_features(line["context"], record.get("context", {}))
        for key, steps in record.get("feature_lists", {}).items():
            ours = line["feature_lists"][key]
            assert len(ours) == len(steps), key
            for our_step, step in zip(ours, steps, strict=True):
                if step["kind"] is not None:
                    assert _same_values(step["kind"], our_step, step["value"]), key


def test_head_prints_undecodable_records_raw_unless_a_type_is_forced() -> None:
    path = str(GOLDEN / "raw_records.tfrecord")
    lines = run_cli("head", "-n", "20", path).json_lines()
    info = golden.expected()["files"]["raw_records.tfrecord"]
    raw = [line for line in lines if "raw" in line]
    assert raw, "random bytes should not all decode as Examples"
    for line in raw:
        assert sha(base64.b64decode(line["raw"])) == info["record_sha256"][lines.index(line)]
    forced = run_cli("head", "--type", "example", "-n", "20", path)
    assert forced.code == 7
    assert path in forced.one_error_line()


# -- usage, debug, terminal ----------------------------------------------------------------


def test_usage_errors_exit_2() -> None:
    assert run_cli("head", "-n", "-1", str(GOLDEN / "empty.tfrecord")).code == 2
    assert run_cli("frobnicate").code == 2
    assert run_cli().code == 2


def test_debug_adds_the_traceback(damaged_dir: Path) -> None:
    path = str(damaged_dir / "truncated_in_data.tfrecord")
    quiet = run_cli("count", path)
    loud = run_cli("count", "--debug", path)
    assert quiet.code == loud.code == 5
    assert "Traceback" not in quiet.err
    assert "Traceback" in loud.err
    assert "TruncatedRecordError" in loud.err
    assert loud.err.splitlines()[-1] == quiet.one_error_line()


def test_progress_bar_only_when_stdout_is_a_terminal() -> None:
    import os
    import pty
    import subprocess
    import sys

    from tests.cli.conftest import REPO

    files = [str(GOLDEN / name) for name in RECORD_FILES]
    piped = run_cli("count", *files)
    assert piped.code == 0
    assert piped.err == ""  # no bar, no escape codes when piped
    leader, follower = pty.openpty()
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-m", "tfrecord_s3", "count", *files],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    assert b"count" in proc.stderr
    assert b"file" in proc.stderr
