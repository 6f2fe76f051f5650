"""Test data whose records say who they are, and a checker that counts what went wrong.

Record ``index`` of file ``file`` is ``b"f=<file> i=<index> "`` followed by bytes drawn from
``random.Random(f"{file}:{index}")`` (``salt`` makes a different version of the same file).
Any emitted record can therefore be identified and verified on its own, so a checker
counts lost, duplicated, corrupt and out-of-order records exactly.
"""

from __future__ import annotations

import gzip
import random
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tfrecord_s3.records.framing import FRAME_OVERHEAD, encode_frame

RecordId = tuple[int, int]
_HEADER = re.compile(rb"f=(\d+) i=(\d+)(?:~(\w+))? ")


def make_record(file: int, index: int, *, min_size: int = 20, max_size: int = 400, salt: str = "") -> bytes:
    """The record ``(file, index)``: its self-describing header, then a seeded payload."""
    rng = random.Random(f"{file}:{index}{salt}")
    tag = f"~{salt}" if salt else ""
    return f"f={file} i={index}{tag} ".encode() + rng.randbytes(rng.randrange(min_size, max_size + 1))


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus: its records and their encodings."""

    file: int
    records: tuple[bytes, ...]
    compression: str  # "" | "GZIP" | "ZLIB"

    @property
    def ids(self) -> list[RecordId]:
        return [(self.file, i) for i in range(len(self.records))]

    @property
    def raw(self) -> bytes:
        """The uncompressed TFRecord bytes."""
        return b"".join(encode_frame(r) for r in self.records)

    @property
    def blob(self) -> bytes:
        """The bytes stored (compressed when ``compression`` says so). Deterministic."""
        raw = self.raw
        if self.compression == "GZIP":
            return gzip.compress(raw, mtime=0)
        if self.compression == "ZLIB":
            return zlib.compress(raw)
        return raw

    def offsets(self) -> list[int]:
        """Uncompressed byte offset of each record's header, and the file size at the end."""
        out = [0]
        for record in self.records:
            out.append(out[-1] + len(record) + FRAME_OVERHEAD)
        return out

    def ids_ending_before(self, byte: int) -> list[RecordId]:
        """Records whose whole frame lies before uncompressed byte ``byte``."""
        ends = self.offsets()[1:]
        return [(self.file, i) for i, end in enumerate(ends) if end <= byte]

    def record_at(self, index: int) -> tuple[int, int]:
        """(header offset, data offset) of record ``index`` in the uncompressed file."""
        start = self.offsets()[index]
        return start, start + 12


def make_file(
    file: int, count: int, *, compression: str = "", min_size: int = 20, max_size: int = 400, salt: str = ""
) -> CorpusFile:
    records = tuple(make_record(file, i, min_size=min_size, max_size=max_size, salt=salt) for i in range(count))
    return CorpusFile(file, records, compression)


def identify(record: bytes) -> RecordId | None:
    """The (file, index) a record is, if its bytes are exactly what that record must be."""
    match = _HEADER.match(record)
    if match is None:
        return None
    file, index = int(match.group(1)), int(match.group(2))
    salt = (match.group(3) or b"").decode()
    # The record's own size is not known from its header: regenerate with the default
    # bounds; corpora built with other bounds pass them to Tally.
    return (file, index) if record == make_record(file, index, salt=salt) else None


@dataclass
class Tally:
    """What a read emitted, compared with what it had to emit.

    ``lost``: records silently missing (expected, not emitted, and not withheld behind a
    typed error); ``withheld``: expected records after the point where a read stopped with
    a typed error (reported, not lost); ``duplicated``: extra copies; ``corrupt``: emitted
    records that are not byte-identical to any record; ``out_of_order``: emitted records
    that come before one that precedes them in the expected order.
    """

    expected: int
    emitted: int
    lost: int = 0
    withheld: int = 0
    duplicated: int = 0
    corrupt: int = 0
    out_of_order: int = 0
    missing: list[RecordId] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.corrupt or self.out_of_order)


def tally(
    expected: Sequence[RecordId],
    emitted: Iterable[bytes],
    *,
    stopped_by_error: bool = False,
    known: dict[bytes, RecordId] | None = None,
) -> Tally:
    """Compare ``emitted`` with ``expected`` (in expected order).

    With ``stopped_by_error``, expected records after the last one emitted are withheld
    (the typed error reports them), not lost. ``known`` maps record bytes to ids for corpora
    built with non-default size bounds (see :func:`index_of`)."""
    emitted = list(emitted)
    ids: list[RecordId] = []
    corrupt = 0
    for record in emitted:
        rid = known.get(record) if known is not None else identify(record)
        if rid is None:
            corrupt += 1
        else:
            ids.append(rid)
    counts = Counter(ids)
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    position = {rid: i for i, rid in enumerate(expected)}
    unexpected = sum(n for rid, n in counts.items() if rid not in position)
    last_seen = max((position[rid] for rid in counts if rid in position), default=-1)
    missing = [rid for rid in expected if rid not in counts]
    lost = [rid for rid in missing if not stopped_by_error or position[rid] < last_seen]
    out_of_order = 0
    highest = -1
    for rid in ids:
        where = position.get(rid)
        if where is None:
            continue
        if where < highest:
            out_of_order += 1
        highest = max(highest, where)
    return Tally(
        expected=len(expected),
        emitted=len(emitted),
        lost=len(lost),
        withheld=len(missing) - len(lost),
        duplicated=duplicated,
        corrupt=corrupt + unexpected,
        out_of_order=out_of_order,
        missing=lost,
    )


def index_of(files: Iterable[CorpusFile]) -> dict[bytes, RecordId]:
    """Record bytes -> id for every record of ``files`` (for :func:`tally`'s ``known``)."""
    return {record: (f.file, i) for f in files for i, record in enumerate(f.records)}
