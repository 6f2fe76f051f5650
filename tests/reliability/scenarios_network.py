"""Network faults N1-N9 of RELIABILITY.md, each a function ``(world, compression, variant,
inject) -> Outcome``. With ``inject=False`` the same read runs without faults (the
benchmark's baseline); the checks then expect a clean, complete read."""

from __future__ import annotations

import os

from tests.faults.schedule import Fault
from tests.reliability.corpus import CorpusFile, make_file
from tests.reliability.harness import Checks, Outcome, Run, all_ids, faulted, gets, outcome, range_start, read
from tests.reliability.world import BLOCK, World
from tfrecord_s3.errors import CorruptRecordError, RecordError, ResponseError, RetriesExhaustedError

RECORDS = 40


def _files(world: World, tag: str, compression: str, count: int = 2) -> tuple[list[CorpusFile], list[str]]:
    files = [make_file(i, RECORDS, compression=compression) for i in range(count)]
    urls = [world.put(f"{tag}-{f.file}.tfrecord", f.blob) for f in files]
    return files, urls


def _identical(checks: Checks, files: list[CorpusFile], records: list[bytes]) -> None:
    checks.that(records == [r for f in files for r in f.records], "output differs from the files")


def n1(world: World, compression: str, variant: str = "get+first-get", inject: bool = True) -> Outcome:
    """Connection reset before headers: a later GET and a file's first GET (which says its
    size: no HEAD is sent), both our retries."""
    files, urls = _files(world, "n1", compression)
    if inject:
        world.proxy.add_rule(Fault.reset_before_headers(), method="GET", key=world.key("n1-0"), nth=2)
        world.proxy.add_rule(Fault.reset_before_headers(), method="GET", key=world.key("n1-1"), nth=1)
    run = read(urls, compression, world.config())
    checks = Checks()
    checks.error_is(run.error, None)
    _identical(checks, files, run.records)
    if inject and run.stats is not None:
        checks.equal(len(faulted(world)), 2, "faults fired")
        checks.equal(run.stats.retries, 2, "stream retries")
    return outcome(world, "N1", variant, compression, files, all_ids(files), run, checks)


def _cut(world: World, compression: str, variant: str, inject: bool, kind: str) -> Outcome:
    """N2/N3: the body cut (reset or clean close) at object offsets in several blocks."""
    scenario = "N2" if kind == "reset" else "N3"
    files, urls = _files(world, scenario.lower(), compression)
    make = Fault.reset_after if kind == "reset" else Fault.close_after
    cuts = {0: [BLOCK + 952, 3 * BLOCK - 1], 1: [100]}
    for number, offsets in cuts.items():
        size = len(files[number].blob)
        for offset in offsets:
            assert offset < size, "corpus too small for the fault offsets"
            if inject:
                world.proxy.add_rule(
                    make(offset, absolute=True), method="GET", key=world.key(f"{scenario.lower()}-{number}")
                )
    run = read(urls, compression, world.config())
    checks = Checks()
    checks.error_is(run.error, None)
    _identical(checks, files, run.records)
    total = sum(len(v) for v in cuts.values())
    if inject and run.stats is not None:
        checks.equal(len(faulted(world)), total, "faults fired")
        checks.equal(run.stats.retries, total, "stream retries")
        for number, offsets in cuts.items():
            starts = {range_start(e) for e in gets(world, f"{scenario.lower()}-{number}")}
            for offset in offsets:
                checks.that(offset in starts, f"no GET resumed at byte {offset} of file {number}")
    result = outcome(world, scenario, variant, compression, files, all_ids(files), run, checks)
    checks.that(result.redownloaded <= BLOCK * total, f"re-downloaded {result.redownloaded} bytes")
    result.problems = checks.problems
    return result


def n2(world: World, compression: str, variant: str = "reset", inject: bool = True) -> Outcome:
    return _cut(world, compression, variant, inject, "reset")


def n3(world: World, compression: str, variant: str = "close", inject: bool = True) -> Outcome:
    return _cut(world, compression, variant, inject, "close")


def n4(world: World, compression: str, variant: str = "sweep", inject: bool = True) -> Outcome:
    """A reset after every body offset of a 3-record object read in 64-byte blocks (so the
    cuts land in headers, data and CRCs, and on block edges). One read per offset."""
    block = 64
    tiny = make_file(9, 3, compression=compression, min_size=0, max_size=24)
    url = world.put("n4.tfrecord", tiny.blob)
    config = world.config(block_size=block)
    size = len(tiny.blob)
    checks = Checks()
    records: list[bytes] = []
    seconds = 0.0
    injected = 0
    redownloaded = 0
    for offset in range(size) if inject else [None]:
        world.proxy.clear_rules()
        world.proxy.clear_log()
        if offset is not None:
            world.proxy.add_rule(Fault.reset_after(offset, absolute=True), method="GET", key=world.key("n4"))
        run = read([url], compression, config)
        seconds += run.seconds
        records = run.records
        where = "clean" if offset is None else f"cut at byte {offset} ({_region(tiny, offset)})"
        checks.that(run.error is None, f"{where}: {type(run.error).__name__}: {run.error}")
        checks.that(run.records == list(tiny.records), f"{where}: output differs")
        if offset is not None:
            injected += len(faulted(world))
            starts = {range_start(e) for e in gets(world)}
            checks.that(offset in starts, f"{where}: not resumed at that byte")
            extra = sum(e.body_bytes for e in gets(world) if e.status == 206) - size
            redownloaded += max(extra, 0)
            checks.that(extra <= block, f"{where}: {extra} bytes re-downloaded")
    result = outcome(world, "N4", variant, compression, [tiny], tiny.ids, Run(records, None, None, seconds), checks)
    result.injected = injected
    result.redownloaded = redownloaded
    result.notes = f"{size} offsets, {block}-byte blocks"
    return result


def _region(corpus: CorpusFile, offset: int) -> str:
    if corpus.compression:
        return "compressed"
    offsets = corpus.offsets()
    for i in range(len(corpus.records)):
        start, end = offsets[i], offsets[i + 1]
        if start <= offset < end:
            inner = offset - start
            part = "header" if inner < 12 else "crc" if inner >= end - start - 4 else "data"
            return f"record {i} {part}"
    return "past the end"


def n5(world: World, compression: str, variant: str = "stall", inject: bool = True) -> Outcome:
    """A stall longer than S3_REQUEST_TIMEOUT_MSEC (300 ms): mid-body and before headers."""
    files, urls = _files(world, "n5", compression)
    environ = {**os.environ, "S3_REQUEST_TIMEOUT_MSEC": "300"}
    stall_at = BLOCK + 500
    if inject:
        world.proxy.add_rule(Fault.stall(1.0, after=stall_at, absolute=True), method="GET", key=world.key("n5-0"))
        world.proxy.add_rule(Fault.stall(1.0), method="GET", key=world.key("n5-1"), nth=1)
    config = world.config(environ)
    run = read(urls, compression, config)
    checks = Checks()
    checks.equal(config.read_timeout, 0.3, "read timeout from S3_REQUEST_TIMEOUT_MSEC")
    checks.error_is(run.error, None)
    _identical(checks, files, run.records)
    if inject and run.stats is not None:
        checks.equal(run.stats.retries, 2, "stream retries")
        starts = {range_start(e) for e in gets(world, "n5-0")}
        checks.that(stall_at in starts, f"not resumed at byte {stall_at}")
    return outcome(world, "N5", variant, compression, files, all_ids(files), run, checks)


def n6(world: World, compression: str, variant: str = "slowdown", inject: bool = True) -> Outcome:
    """503 SlowDown for the next 3 GETs of a file: backoff, retry, throttles counted."""
    files, urls = _files(world, "n6", compression)
    if inject:
        world.proxy.add_rule(Fault.slow_down(), method="GET", key=world.key("n6-0"), skip=1, times=3)
    run = read(urls, compression, world.config())
    checks = Checks()
    checks.error_is(run.error, None)
    _identical(checks, files, run.records)
    if inject and run.stats is not None:
        checks.equal(sum(e.status == 503 for e in gets(world)), 3, "503 answers")
        checks.equal(run.stats.retries, 3, "stream retries")
        checks.equal(getattr(run.stats, "throttles", None), 3, "throttles reported in dataset stats")
    return outcome(world, "N6", variant, compression, files, all_ids(files), run, checks)


def n7(world: World, compression: str, variant: str = "500-storm", inject: bool = True) -> Outcome:
    """500 on every GET past the first block of the middle file: RetriesExhaustedError
    naming it and the offset after exactly max_attempts tries; the file before is complete."""
    files, urls = _files(world, "n7", compression, count=3)
    if inject:
        size = len(files[1].blob)
        world.proxy.add_rule(
            Fault.internal_error(), method="GET", key=world.key("n7-1"), window=(BLOCK, size), times=None
        )
    run = read(urls, compression, world.config(max_attempts=3))
    checks = Checks()
    if inject:
        if checks.error_is(run.error, RetriesExhaustedError, path=urls[1]):
            assert isinstance(run.error, RetriesExhaustedError)
            checks.equal(run.error.offset, BLOCK, "error.offset")
            checks.equal(run.error.attempts, 3, "error.attempts")
            checks.that(f"at byte {BLOCK}" in str(run.error), f"message lacks the offset: {run.error}")
        tries = [e for e in gets(world, "n7-1") if range_start(e) == BLOCK]
        checks.equal(len(tries), 3, "GETs of the failing block")
        checks.that(run.records[:RECORDS] == list(files[0].records), "first file incomplete")
        if not compression:
            want = list(files[0].records) + [files[1].records[i] for _, i in files[1].ids_ending_before(BLOCK)]
            checks.that(run.records == want, "records before the failing block not all emitted")
        checks.that(not any(r.startswith(b"f=2 ") for r in run.records), "records of the next file emitted")
    else:
        checks.error_is(run.error, None)
        _identical(checks, files, run.records)
    return outcome(world, "N7", variant, compression, files, all_ids(files), run, checks)


def n8(world: World, compression: str, variant: str = "partial_200", inject: bool = True) -> Outcome:
    """A reply that breaks the protocol: a 200 for a later block, or a wrong Content-Range,
    is a ResponseError and its bytes never reach the parser; a 200 carrying the whole
    object for a range starting at 0 is used correctly."""
    files, urls = _files(world, "n8", compression, count=1)
    faults = {
        "full_200_at_0": (Fault.full_200(), 0),
        "full_200": (Fault.full_200(), BLOCK),
        "partial_200": (Fault.partial_200(), BLOCK),
        "wrong_content_range": (Fault.wrong_content_range(shift=1), BLOCK),
    }
    fault, at = faults[variant]
    if inject:
        world.proxy.add_rule(fault, method="GET", key=world.key("n8-0"), window=(at, at + 1), nth=1)
    run = read(urls, compression, world.config())
    checks = Checks()
    if inject and at > 0:
        if checks.error_is(run.error, ResponseError, path=urls[0]):
            checks.that(f"at byte {at}" in str(run.error), f"message lacks the offset: {run.error}")
        if not compression:
            want = [files[0].records[i] for _, i in files[0].ids_ending_before(at)]
            checks.that(run.records == want, "records before the bad reply not emitted exactly")
    else:
        checks.error_is(run.error, None)
        _identical(checks, files, run.records)
    return outcome(world, "N8", variant, compression, files, all_ids(files), run, checks)


def n9(world: World, compression: str, variant: str = "data", inject: bool = True) -> Outcome:
    """One bit flipped in a body: CorruptRecordError at that record (never a corrupt record
    emitted); with on_corrupt="skip_record" only that record is dropped, and counted."""
    files, urls = _files(world, "n9", compression, count=1)
    corpus = files[0]
    victim = 5
    header, data = corpus.record_at(victim)
    skip = variant == "skip_record"
    if compression:
        at = len(corpus.blob) // 2
    else:
        at = {"data": data + 3, "length": header + 1, "crc": data + len(corpus.records[victim]) + 2}.get(
            variant, data + 3
        )
    if inject:
        world.proxy.add_rule(Fault.flip_bit(at, bit=2, absolute=True), method="GET", key=world.key("n9-0"))
    run = read(urls, compression, world.config(), on_corrupt="skip_record" if skip else "raise")
    checks = Checks()
    expected = all_ids(files)
    strict = True
    if inject and not compression:
        if skip and variant == "skip_record":
            strict = False
            checks.error_is(run.error, None)
            want = [r for i, r in enumerate(corpus.records) if i != victim]
            checks.that(run.records == want, "skip_record did not drop exactly the damaged record")
            checks.equal(run.stats.skipped_records if run.stats else None, 1, "skipped_records")
        elif checks.error_is(run.error, CorruptRecordError, path=urls[0]):
            assert isinstance(run.error, CorruptRecordError)
            checks.equal(run.error.offset, header, "error.offset (the record's header)")
            checks.equal(run.error.part, "length" if variant == "length" else "data", "error.part")
            checks.that(run.records == list(corpus.records[:victim]), "records before the damage not emitted exactly")
    elif inject:
        checks.error_is(run.error, RecordError, path=urls[0])
    else:
        checks.error_is(run.error, None)
        _identical(checks, files, run.records)
    return outcome(world, "N9", variant, compression, files, expected, run, checks, strict=strict)
