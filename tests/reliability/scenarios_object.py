"""Object and credential scenarios C1-C3 and A1-A3 of RELIABILITY.md, each a function
``(world, compression, variant, inject) -> Outcome`` like those of scenarios_network.py."""

from __future__ import annotations

import io
import logging
import pickle
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.faults.schedule import Fault
from tests.reliability.corpus import CorpusFile, make_file
from tests.reliability.harness import Checks, Outcome, all_ids, gets, outcome, range_start, read
from tests.reliability.world import BLOCK, FAKE_SECRET, FAKE_TOKEN, World, environment
from tfrecord_s3.dataset import TFRecordDataset
from tfrecord_s3.errors import AccessDeniedError, ObjectChangedError, ObjectNotFoundError
from tfrecord_s3.records.framing import encode_frame

RECORDS = 40
#: What must never appear in our logs, messages, reprs or pickles.
SECRETS = (FAKE_SECRET, FAKE_TOKEN, "X-Amz-Signature", "Signature=", "X-Amz-Security-Token", "x-amz-security-token")


def _changed_under_the_reader(world: World, compression: str, variant: str, inject: bool) -> Outcome:
    """C1/C2: the proxy holds the GET of the second block for 1 s; as soon as that GET
    arrives, the test overwrites (C1) or deletes (C2) the object on the server."""
    scenario = "C2" if variant == "deleted" else "C1"
    name = f"{scenario.lower()}.tfrecord"
    corpus = make_file(0, RECORDS, compression=compression)
    url = world.put(name, corpus.blob)

    def change() -> None:
        if variant == "deleted":
            world.delete(name)
        elif variant == "same_size":  # same length, every payload byte different
            raw = b"".join(encode_frame(r[:8] + bytes(b ^ 0x5A for b in r[8:])) for r in corpus.records)
            world.put(name, raw)
        else:
            world.put(name, make_file(0, RECORDS, compression=compression, salt="v2").blob)

    if inject:
        world.proxy.add_rule(Fault.stall(1.0), method="GET", key=world.key(name), window=(BLOCK, BLOCK + 1), nth=1)
    config = world.config(read_ahead=0)
    watcher = threading.Thread(target=_when_requested, args=(world, name, BLOCK, change), daemon=True)
    if inject:
        watcher.start()
    run = read([url], compression, config)
    if inject:
        watcher.join(5.0)
    checks = Checks()
    if inject:
        kind = ObjectNotFoundError if variant == "deleted" else ObjectChangedError
        checks.error_is(run.error, kind, path=url)
        checks.equal(run.stats.retries if run.stats else None, 0, "retries")
        later = [e for e in gets(world, name) if (range_start(e) or 0) >= BLOCK]
        checks.equal(len(later), 1, "GETs after the change (no retry loop)")
        checks.equal([e.upstream_status for e in later], [404 if variant == "deleted" else 412], "server answers")
        if not compression:
            want = [corpus.records[i] for _, i in corpus.ids_ending_before(BLOCK)]
            checks.that(run.records == want, "old records before the change not emitted exactly")
    else:
        checks.error_is(run.error, None)
        checks.that(run.records == list(corpus.records), "output differs")
    return outcome(world, scenario, variant, compression, [corpus], corpus.ids, run, checks)


def _when_requested(world: World, name: str, start: int, action: Callable[[], None], timeout: float = 5.0) -> None:
    """Run ``action`` once the proxy has seen a GET of ``name`` from byte ``start``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(range_start(e) == start for e in gets(world, name)):
            action()
            return
        time.sleep(0.002)


def c1(world: World, compression: str, variant: str = "same_size", inject: bool = True) -> Outcome:
    return _changed_under_the_reader(world, compression, variant, inject)


def c2(world: World, compression: str, variant: str = "deleted", inject: bool = True) -> Outcome:
    return _changed_under_the_reader(world, compression, "deleted", inject)


def c3(world: World, compression: str, variant: str = "empty", inject: bool = True) -> Outcome:
    """An empty object (and, compressed, a compressed stream of nothing): 0 records; the
    0-byte object's first GET is answered 416 (no byte in range) and one HEAD then says it is
    empty, and no other GET sees a 416; an object smaller than one block: all records, one GET."""
    checks = Checks()
    if variant == "empty":
        blobs = [b""] + ([CorpusFile(0, (), compression).blob] if compression else [])
        urls = [world.put(f"c3-empty-{i}.tfrecord", blob) for i, blob in enumerate(blobs)]
        run = read(urls, compression, world.config())
        checks.error_is(run.error, None)
        checks.equal(run.records, [], "records")
        empty = gets(world, "c3-empty-0")
        checks.equal([e.status for e in empty], [416], "GETs of the 0-byte object")
        files: list[CorpusFile] = []
    else:
        small = make_file(3, 4, compression=compression)
        assert len(small.blob) < BLOCK
        urls = [world.put("c3-small.tfrecord", small.blob)]
        run = read(urls, compression, world.config())
        checks.error_is(run.error, None)
        checks.that(run.records == list(small.records), "output differs")
        checks.equal(len(gets(world, "c3-small")), 1, "GETs of the small object")
        files = [small]
    others = [e for e in gets(world) if "c3-empty-0" not in e.path]
    checks.that(all(e.status != 416 for e in others), "a 416 reached the client for a GET with bytes in range")
    return outcome(world, "C3", variant, compression, files, all_ids(files), run, checks)


_CREDENTIAL_PROCESS = """\
import datetime, json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
print(json.dumps({{"Version": 1, "AccessKeyId": "AKIAPROCESS%09d" % n, "SecretAccessKey": {secret!r},
                  "SessionToken": {token!r} + str(n), "Expiration": expires.isoformat()}}))
"""


@contextmanager
def refreshable_credentials() -> Iterator[Path]:
    """boto3's chain finds credentials through ``credential_process`` (botocore wraps them in
    RefreshableCredentials); yields the file counting how often they were fetched."""
    with tempfile.TemporaryDirectory(prefix="tfr-creds-") as tmp:
        script = Path(tmp) / "credentials.py"
        script.write_text(_CREDENTIAL_PROCESS.format(secret=FAKE_SECRET, token=FAKE_TOKEN))
        counter = Path(tmp) / "fetched"
        config = Path(tmp) / "config"
        config.write_text(f"[default]\ncredential_process = {sys.executable} {script} {counter}\n")
        values = {"AWS_CONFIG_FILE": str(config)}
        with environment(values, cleared=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")):
            yield counter


def a1(world: World, compression: str, variant: str = "expired_token", inject: bool = True) -> Outcome:
    """403 ExpiredToken once, with refreshable credentials: refresh, resume, identical."""
    corpus = make_file(0, RECORDS, compression=compression)
    url = world.put("a1.tfrecord", corpus.blob)
    if inject:
        world.proxy.add_rule(Fault.expired_token(), method="GET", key=world.key("a1"), window=(BLOCK, BLOCK + 1))
    with refreshable_credentials() as fetched:
        run = read([url], compression, world.config())
        fetches = int(fetched.read_text()) if fetched.exists() else 0
    checks = Checks()
    checks.error_is(run.error, None)
    checks.that(run.records == list(corpus.records), "output differs")
    checks.equal(fetches, 2 if inject else 1, "credentials fetched (refreshed once after ExpiredToken)")
    return outcome(world, "A1", variant, compression, [corpus], corpus.ids, run, checks)


def a2(world: World, compression: str, variant: str = "get", inject: bool = True) -> Outcome:
    """403 AccessDenied (on a GET past the first block, or at open: on the first GET and the
    HEAD that then says why): fails at once, with a message naming bucket and key and
    carrying no secret."""
    corpus = make_file(0, RECORDS, compression=compression)
    url = world.put("a2.tfrecord", corpus.blob)
    if inject:
        if variant == "head":
            world.proxy.add_rule(Fault.access_denied(), method="GET", key=world.key("a2"), nth=1)
            world.proxy.add_rule(Fault.access_denied(), method="HEAD", key=world.key("a2"), nth=1)
        else:
            world.proxy.add_rule(Fault.access_denied(), method="GET", key=world.key("a2"), window=(BLOCK, BLOCK + 1))
    run = read([url], compression, world.config())
    checks = Checks()
    if inject:
        checks.error_is(run.error, AccessDeniedError, path=url)
        message = str(run.error)
        checks.that(world.bucket in message and world.key("a2") in message, f"message lacks bucket/key: {message}")
        checks.that(not any(s in message for s in SECRETS), f"secret in message: {message}")
        checks.equal(run.stats.retries if run.stats else None, 0, "retries")
        if variant == "head":
            checks.equal(len(world.proxy.requests(method="HEAD", key=world.key("a2"))), 1, "HEADs")
            checks.equal(run.records, [], "records")
        else:
            checks.equal(len([e for e in gets(world, "a2") if range_start(e) == BLOCK]), 1, "GETs of the denied block")
    else:
        checks.error_is(run.error, None)
    return outcome(world, "A2", variant, compression, [corpus], corpus.ids, run, checks)


def leaks(texts: dict[str, str]) -> list[str]:
    """``where: secret`` for every secret found in ``texts``."""
    return [f"{where}: {secret}" for where, text in texts.items() for secret in SECRETS if secret in text]


def a3(world: World, compression: str, variant: str = "debug-logs", inject: bool = True) -> Outcome:
    """Logs at DEBUG and error texts during a faulty read with a session token: no secret
    key, session token or signature in our loggers' records (botocore's own DEBUG output
    prints signed headers: out of our hands, so not checked), our error messages, reprs
    (config, dataset, stream) or pickles."""
    files = [make_file(i, RECORDS, compression=compression) for i in range(2)]
    urls = [world.put(f"a3-{f.file}.tfrecord", f.blob) for f in files]
    if inject:
        world.proxy.add_rule(Fault.reset_after(BLOCK + 10, absolute=True), method="GET", key=world.key("a3-0"))
        world.proxy.add_rule(
            Fault.internal_error(), method="GET", key=world.key("a3-0"), window=(2 * BLOCK, 2 * BLOCK + 1)
        )
        world.proxy.add_rule(Fault.access_denied(), method="GET", key=world.key("a3-1"), window=(BLOCK, BLOCK + 1))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    ours = logging.getLogger("tfrecord_s3")
    level = ours.level
    ours.addHandler(handler)
    ours.setLevel(logging.DEBUG)
    try:
        with environment({"AWS_SESSION_TOKEN": FAKE_TOKEN}, cleared=()):
            # No hedged GETs: on a loaded machine a hedge may win the race for the block a
            # fault hits, and the fault is then never retried, so never logged.
            config = world.config(hedge_after=None)
            run = read(urls, compression, config)
            dataset = TFRecordDataset(urls, compression or None, config=config)
            texts = {
                "config repr": repr(config),
                "config pickle": str(pickle.dumps(config)),
                "dataset repr": repr(dataset),
            }
            from tfrecord_s3.storage.s3_files import open_s3

            with open_s3(urls[1], config=config) as handle:
                texts["stream repr"] = repr(handle) + repr(handle.raw)  # type: ignore[attr-defined]
    finally:
        ours.removeHandler(handler)
        ours.setLevel(level)
    log = stream.getvalue()
    checks = Checks()
    if run.error is not None:
        texts["error message"] = str(run.error)
        texts["error repr"] = repr(run.error)
        texts["error pickle"] = str(pickle.dumps(run.error))
        texts["traceback"] = "".join(traceback.format_exception(run.error))
    texts["log"] = log
    checks.equal(leaks(texts), [], "secrets found")
    if inject:
        checks.error_is(run.error, AccessDeniedError, path=urls[1])
        checks.that(log.count("retrying") >= 2, f"the retries were not logged (the check would be vacuous): {log!r}")
    else:
        checks.error_is(run.error, None)
    notes = f"{len(log.splitlines())} log lines checked"
    return outcome(world, "A3", variant, compression, files, all_ids(files), run, checks, notes=notes)
