"""`count` and `verify` read several files at once: output in file order, the requests of a
sequential run (no HEAD for globbed objects, one GET each), errors still naming path and offset.

Run in process (``main``) so the ``s3_counter`` fixture sees every request."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import golden
from tests.conftest import HttpCounter, S3Env
from tfrecord_s3.cli import main
from tfrecord_s3.cli._concurrent import DEFAULT_JOBS, in_order
from tfrecord_s3.records.framing import encode_frame

OBJECTS = 30


@pytest.fixture(autouse=True)
def root_logger_kept() -> Iterator[None]:
    """main() sets up logging for a process; in a test process, undo it afterwards."""
    root, ours = logging.getLogger(), logging.getLogger("tfrecord_s3")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    yield
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


def put_small_objects(s3_env: S3Env, bad: int | None = None) -> list[str]:
    """OBJECTS small files under small/ (object i holds i % 5 + 1 records); the object
    numbered ``bad`` gets the golden file with a damaged length field instead."""
    urls = []
    for i in range(OBJECTS):
        body = b"".join(encode_frame(b"object %d record %d" % (i, j)) for j in range(i % 5 + 1))
        if i == bad:
            body = golden.corrupted_bytes("corrupt_length_bitflip.tfrecord")
        s3_env.put(f"small/part-{i:03d}.tfrecord", body)
        urls.append(s3_env.url(f"small/part-{i:03d}.tfrecord"))
    return urls


def run_counted(
    counter: HttpCounter, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, list[str], list[str], dict[str, int]]:
    counter.reset()
    code = main(list(argv))
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("tfrecord-s3: error: ")]
    return code, captured.out.splitlines(), errors, dict(counter.counts)


def test_count_glob_reads_each_object_once_in_order(
    s3_env: S3Env, s3_counter: HttpCounter, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = put_small_objects(s3_env)
    glob = s3_env.url("small/*.tfrecord")
    code, lines, err, requests = run_counted(s3_counter, capsys, "count", "--json", glob)
    assert code == 0, err
    # The listing's size and ETag stand in for a HEAD; each small object is one GET.
    assert requests == {"ListObjectsV2": 1, "GetObject": OBJECTS}
    *files, total = [json.loads(line) for line in lines]
    assert [f["path"] for f in files] == urls
    assert [f["records"] for f in files] == [i % 5 + 1 for i in range(OBJECTS)]
    assert total == {"total": sum(i % 5 + 1 for i in range(OBJECTS)), "bytes": total["bytes"], "files": OBJECTS}
    sequential = run_counted(s3_counter, capsys, "count", "--json", "--jobs", "1", glob)
    assert sequential == (0, lines, err, requests)


def test_verify_glob_reads_each_object_once_in_order(
    s3_env: S3Env, s3_counter: HttpCounter, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = 17
    urls = put_small_objects(s3_env, bad=bad)
    glob = s3_env.url("small/*.tfrecord")
    code, lines, err, requests = run_counted(s3_counter, capsys, "verify", glob)
    assert code == 1, err
    assert requests == {"ListObjectsV2": 1, "GetObject": OBJECTS}
    assert len(lines) == OBJECTS + 1
    for i, (url, line) in enumerate(zip(urls, lines, strict=False)):
        if i == bad:
            assert line.startswith(f"BAD  {url}  offset 4253  corrupt-length:"), line
        else:
            assert line == f"OK   {url}  ({i % 5 + 1} records)"
    assert lines[-1].endswith(": 1 problems in 1 files")
    sequential = run_counted(s3_counter, capsys, "verify", "--jobs", "1", glob)
    assert sequential == (1, lines, err, requests)


def test_count_stops_at_the_damaged_file_with_its_path_and_offset(
    s3_env: S3Env, s3_counter: HttpCounter, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = 5
    urls = put_small_objects(s3_env, bad=bad)
    code, lines, err, _ = run_counted(s3_counter, capsys, "count", s3_env.url("small/*.tfrecord"))
    assert code == 5
    # Files before the damaged one are printed, as a sequential run prints them; none after.
    assert [line.split()[-1] for line in lines] == urls[:bad]
    [error] = err
    assert error.startswith(f"tfrecord-s3: error: {urls[bad]} at byte 4253: "), error


def test_local_files_in_order_with_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for i in range(12):
        path = tmp_path / f"f{i:02d}.tfrecord"
        path.write_bytes(b"".join(encode_frame(b"x" * i) for _ in range(i)))
        paths.append(str(path))
    assert main(["count", "--jobs", "4", *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == [f"{i:>12}  {p}" for i, p in enumerate(paths)]


def test_in_order_runs_jobs_at_once_and_yields_in_item_order() -> None:
    jobs = 3
    # Each item waits until all `jobs` items of its window have started: a sequential run
    # would break the barrier. The last of a window finishes first; output order holds.
    barrier = threading.Barrier(jobs, timeout=30)
    lock = threading.Lock()
    running = 0
    most = 0

    def work(item: int, stop: threading.Event) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            if item < jobs:
                barrier.wait()
            return item * 10
        finally:
            with lock:
                running -= 1

    assert list(in_order(work, list(range(20)), jobs)) == [i * 10 for i in range(20)]
    assert most == jobs  # never more than `jobs` in flight


def test_in_order_raises_the_first_failure_in_order_and_stops_the_rest() -> None:
    started: list[int] = []
    stopped = threading.Event()
    release = threading.Event()

    def work(item: int, stop: threading.Event) -> int:
        started.append(item)
        if item == 1:
            release.wait(30)
            raise ValueError("item 1 is bad")
        if item == 2:
            release.set()  # item 1 fails only once item 2 is running
            assert stop.wait(30)  # the failure of item 1 stops item 2
            stopped.set()
        return item

    results = in_order(work, list(range(50)), 4)
    assert next(results) == 0
    with pytest.raises(ValueError, match="item 1 is bad"):
        next(results)
    assert stopped.is_set()  # the pool was joined: item 2 saw stop and ended
    assert max(started) < 1 + 4 + 1  # nothing started past the window


def test_default_jobs_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("count", "verify"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"files read at once (default {DEFAULT_JOBS})" in " ".join(capsys.readouterr().out.split())
