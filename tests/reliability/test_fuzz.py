"""Fuzzing the frame parser and the Example decoder: whatever the bytes, out comes either
correct output or a typed error (a RecordError subclass), never anything else.

Bounded in the normal suite (``TFR_FUZZ_EXAMPLES``, default 300 examples per target); run
longer on demand, e.g. ``TFR_FUZZ_EXAMPLES=20000 pytest tests/reliability/test_fuzz.py``,
or ``pytest -m slow tests/reliability/test_fuzz.py`` (20x the examples)."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrecord_s3.decode import FixedLenFeature, VarLenFeature, parse_example, parse_example_batch
from tfrecord_s3.errors import DecodeError, RecordError
from tfrecord_s3.proto.example_pb2 import Example
from tfrecord_s3.records.compression import InflatingReader
from tfrecord_s3.records.framing import encode_frame, iter_frames

EXAMPLES = int(os.environ.get("TFR_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG_FUZZ = settings(max_examples=EXAMPLES * 20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

records_st = st.lists(st.binary(max_size=200), min_size=1, max_size=8)


def parse(blob: bytes, compression: str = "") -> tuple[list[bytes], RecordError | None]:
    """Records of ``blob`` and the typed error that ended them; anything else propagates."""
    stream: Any = io.BytesIO(blob)
    if compression:
        stream = io.BufferedReader(InflatingReader(stream, compression))  # type: ignore[arg-type]
    out: list[bytes] = []
    try:
        for record in iter_frames(stream, path="fuzz", max_record_bytes=1 << 20):
            out.append(record)
    except RecordError as exc:
        error = exc
    else:
        return out, None
    assert error.path == "fuzz"
    assert error.offset is not None
    assert error.offset >= 0
    return out, error


mutation_st = st.lists(
    st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]), st.integers(0, 10**6), st.binary(max_size=16)),
    min_size=1,
    max_size=4,
)


def mutate(blob: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(blob)
    for kind, where, extra in mutations:
        at = where % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] ^= 1 << (where % 8)
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = extra or b"\0"
        else:
            del data[at : at + 1 + where % 17]
    return bytes(data)


def fuzz_parser_on_any_bytes(blob: bytes) -> None:
    records, _ = parse(blob)
    for record in records:  # only a frame whose CRCs both verified can come out
        assert blob.find(encode_frame(record)) >= 0


def fuzz_parser_on_damaged_streams(records: list[bytes], mutations: list[tuple[str, int, bytes]]) -> None:
    blob = b"".join(encode_frame(r) for r in records)
    damaged = mutate(blob, mutations)
    got, error = parse(damaged)
    if damaged == blob:
        assert (got, error) == (records, None)
    # Damage never turns into a record that was not written.
    assert all(record in records for record in got)
    if all(kind == "flip" for kind, _, _ in mutations):
        assert got == records[: len(got)]
        assert error is not None or damaged == blob


def fuzz_compressed_streams(records: list[bytes], mutations: list[tuple[str, int, bytes]], kind: str) -> None:
    raw = b"".join(encode_frame(r) for r in records)
    packed = gzip.compress(raw, mtime=0) if kind == "GZIP" else zlib.compress(raw)
    got, _error = parse(mutate(packed, mutations), kind)
    assert all(record in records for record in got)


names_st = st.sampled_from(["a", "b", "label", ""])
values_st = st.one_of(
    st.lists(st.binary(max_size=8), max_size=3),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
    st.lists(st.floats(width=32, allow_nan=False), max_size=3),
)


def example_bytes(features: dict[str, list[Any]]) -> bytes:
    example = Example()
    for name, values in features.items():
        feature = example.features.feature[name]
        if values and isinstance(values[0], bytes):
            feature.bytes_list.value.extend(values)
        elif values and isinstance(values[0], float):
            feature.float_list.value.extend(values)
        else:
            feature.int64_list.value.extend(values)
    return example.SerializeToString()


SPECS: dict[str, Any] = {
    "a": VarLenFeature("int64"),
    "label": FixedLenFeature([], "string", default_value=b""),
}


def fuzz_decoder(data: bytes) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: parse_example(data),
        lambda: parse_example(data, SPECS),
        lambda: parse_example_batch([data, data], SPECS),
    ]
    for call in calls:
        try:
            result = call()
        except DecodeError:
            continue
        assert isinstance(result, dict)


def fuzz_decoder_on_damaged_examples(features: dict[str, list[Any]], mutations: list[tuple[str, int, bytes]]) -> None:
    fuzz_decoder(mutate(example_bytes(features), mutations))


TARGETS: dict[str, tuple[Callable[..., None], list[Any]]] = {
    "parser_any_bytes": (fuzz_parser_on_any_bytes, [st.binary(max_size=400)]),
    "parser_damaged": (fuzz_parser_on_damaged_streams, [records_st, mutation_st]),
    "gzip_damaged": (fuzz_compressed_streams, [records_st, mutation_st, st.just("GZIP")]),
    "zlib_damaged": (fuzz_compressed_streams, [records_st, mutation_st, st.just("ZLIB")]),
    "decoder_any_bytes": (fuzz_decoder, [st.binary(max_size=300)]),
    "decoder_damaged": (
        fuzz_decoder_on_damaged_examples,
        [st.dictionaries(names_st, values_st, max_size=3), mutation_st],
    ),
}


def run_fuzz(budget: settings, function: Callable[..., None], strategies: list[Any]) -> None:
    wrapped: Any = given(*strategies)
    test: Callable[[], None] = budget(wrapped(function))
    test()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz(target: str) -> None:
    function, strategies = TARGETS[target]
    run_fuzz(FUZZ, function, strategies)


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_long_fuzz(target: str) -> None:
    function, strategies = TARGETS[target]
    run_fuzz(LONG_FUZZ, function, strategies)
