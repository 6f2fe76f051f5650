"""BlockStream over a transport that is not S3: the reader hands in its own fault handling
(retry what it calls transient, raise the typed error it translates to, with path and
offset), and a reader without one gets the neutral rules, never S3's."""

from __future__ import annotations

import ast
import io
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tfrecord_s3.errors import ConfigError, ObjectNotFoundError, RetriesExhaustedError, StorageError
from tfrecord_s3.storage.faults import NEUTRAL_FAULTS, Fault, TransportFaults, faults_of
from tfrecord_s3.storage.retry import RetryPolicy
from tfrecord_s3.storage.s3_errors import S3_FAULTS
from tfrecord_s3.storage.s3_reader import S3RangeReader
from tfrecord_s3.storage.stream import BlockStream

DATA = random.Random(3).randbytes(5000)


class Hiccup(Exception):
    """This transport's "try again"."""


class Vanished(Exception):
    """This transport's "the object is gone"."""


class HiccupFaults:
    """The transport's own rules: Hiccup is transient, Vanished is a missing object."""

    def __init__(self) -> None:
        self.classified: list[str] = []

    def classify(self, exc: BaseException) -> Fault:
        self.classified.append(type(exc).__name__)
        return Fault.TRANSIENT if isinstance(exc, Hiccup) else Fault.FATAL

    def translate(
        self, exc: BaseException, path: str, operation: str, offset: int | None = None
    ) -> StorageError | ConfigError:
        return ObjectNotFoundError(f"{operation} {path} at byte {offset}: vanished", path=path, operation=operation)

    def describe(self, exc: BaseException) -> str:
        return f"hiccup transport: {type(exc).__name__}"

    def answered(self, exc: BaseException) -> bool:
        return False

    def timed_out(self, exc: BaseException) -> bool:
        return False


class ChunkReader:
    """A streaming reader of ``DATA`` whose request ``i`` raises ``faults_at[i]`` after
    ``after`` bytes; ``faults`` is None for a reader that hands in no fault handling."""

    def __init__(self, faults_at: dict[int, BaseException], after: int, faults: TransportFaults | None) -> None:
        self.faults_at = faults_at
        self.after = after
        self.calls: list[tuple[int, int]] = []
        if faults is not None:
            self.faults = faults

    @property
    def size(self) -> int:
        return len(DATA)

    @property
    def path(self) -> str:
        return "hiccup://bucket/object"

    def read_range(self, start: int, end: int) -> bytes:
        return b"".join(self.iter_range(start, end))

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        number = len(self.calls)
        self.calls.append((start, end))
        fault = self.faults_at.get(number)
        stop = min(end, start + self.after) if fault is not None else end
        for at in range(start, stop, 100):
            yield DATA[at : min(stop, at + 100)]
        if fault is not None:
            raise fault


def stream(reader: ChunkReader) -> BlockStream:
    return BlockStream(
        reader,  # type: ignore[arg-type]
        block_size=1000,
        read_ahead=0,
        policy=RetryPolicy(max_attempts=3),
        sleep=lambda seconds: None,
        rng=random.Random(1),
    )


def read_all(raw: BlockStream) -> bytes:
    with io.BufferedReader(raw, 64) as buffered:
        return buffered.read()


def test_a_transient_fault_of_the_readers_own_kind_is_resumed_at_the_next_byte() -> None:
    faults = HiccupFaults()
    reader = ChunkReader({1: Hiccup()}, after=300, faults=faults)
    raw = stream(reader)
    assert read_all(raw) == DATA
    assert raw.retries == 1
    assert faults.classified == ["Hiccup"]
    # The second block broke after 300 bytes: its retry asks for the rest only.
    assert reader.calls[1:3] == [(1000, 2000), (1300, 2000)]


def test_a_fatal_fault_is_raised_as_the_readers_typed_error_with_path_and_offset() -> None:
    reader = ChunkReader({2: Vanished()}, after=400, faults=HiccupFaults())
    with pytest.raises(ObjectNotFoundError) as raised:
        read_all(stream(reader))
    assert raised.value.path == "hiccup://bucket/object"
    assert "at byte 2400" in str(raised.value)  # the first byte not delivered
    assert isinstance(raised.value.__cause__, Vanished)
    assert len(reader.calls) == 3  # never retried


def test_giving_up_on_the_readers_transient_faults_says_so_in_its_own_words() -> None:
    reader = ChunkReader({n: Hiccup() for n in range(10)}, after=0, faults=HiccupFaults())
    with pytest.raises(RetriesExhaustedError) as raised:
        read_all(stream(reader))
    assert raised.value.attempts == 3
    assert raised.value.offset == 0
    assert "hiccup transport: Hiccup" in str(raised.value)


def test_a_reader_without_fault_handling_gets_the_neutral_rules_not_s3s() -> None:
    # A dropped connection is retried...
    reader = ChunkReader({0: ConnectionResetError()}, after=250, faults=None)
    raw = stream(reader)
    assert read_all(raw) == DATA
    assert raw.retries == 1
    # ...but a botocore 500 means nothing to a transport that is not S3: raised at once.
    response: object = {"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}
    reader = ChunkReader({1: ClientError(response, "GetObject")}, after=10, faults=None)  # type: ignore[arg-type]
    with pytest.raises(StorageError) as raised:
        read_all(stream(reader))
    assert type(raised.value) is StorageError
    assert str(raised.value) == "read hiccup://bucket/object at byte 1010: ClientError"
    assert len(reader.calls) == 2


def test_who_hands_in_what() -> None:
    assert faults_of(ChunkReader({}, 0, None)) is NEUTRAL_FAULTS
    assert faults_of(S3RangeReader) is S3_FAULTS
    assert isinstance(S3_FAULTS, TransportFaults)
    assert isinstance(NEUTRAL_FAULTS, TransportFaults)


def test_blockstream_knows_no_s3_client_library() -> None:
    import tfrecord_s3.storage.stream as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {name for name in imported if "s3_" in name or name.split(".")[0] in ("botocore", "boto3", "urllib3")}


def test_the_stream_and_its_retry_rules_load_no_s3_client_library() -> None:
    # Not only stream.py's own imports: nothing it loads (retry rules, hedging, scheduler,
    # buffers) pulls botocore, boto3 or urllib3 in. A fresh interpreter tells.
    probe = (
        "import sys, tfrecord_s3.storage.stream, tfrecord_s3.storage.retry\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('botocore', 'boto3', 'urllib3')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
