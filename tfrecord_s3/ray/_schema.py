"""Feature specs inferred from a sample of records (never a full pass over the data).

Per feature, from the sampled records: its kind gives the dtype; present in every record
with the same number of values ``n`` -> ``FixedLenFeature([])`` for ``n == 1`` (a plain
column) or ``FixedLenFeature([n])``; anything else -> ``VarLenFeature``. A later record
that does not fit raises ``DecodeError`` naming its file and offset (see :func:`mismatch`).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from ..dataset.prefetch import ReadOptions
from ..decode.specs import KIND_OF_DTYPE, TF_NAME_OF_KIND, FeatureSpec, FixedLenFeature, VarLenFeature
from ..errors import ConfigError, DecodeError
from ..proto.example_pb2 import Example
from ..records.framing import FRAME_OVERHEAD
from ..records.reader import open_records

__all__ = ["Sample", "infer_features", "mismatch", "sample_records"]

_DTYPE_OF_KIND = {kind: dtype for dtype, kind in KIND_OF_DTYPE.items()}
# Files opened at most to gather the sample (the first ones, in order).
_SAMPLE_FILES = 16


@dataclass
class Sample:
    """Records read from the start of the first files: (path, offset, record) each."""

    records: list[tuple[str, int, bytes]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"the first {len(self.records)} record(s) of {len(self.files)} file(s) starting with {self.files[0]}"


def sample_records(paths: list[str], count: int, options: ReadOptions) -> Sample:
    """Up to ``count`` records from the first files (at most 16 opened), in file order."""
    sample = Sample()
    for path in paths[:_SAMPLE_FILES]:
        sample.files.append(path)
        for path_, offset, record in _records(path, options):
            sample.records.append((path_, offset, record))
            if len(sample.records) >= count:
                return sample
    return sample


def _records(path: str, options: ReadOptions) -> Iterator[tuple[str, int, bytes]]:
    records = cast(
        Generator[bytes, None, None],
        open_records(
            path,
            options.compression_type,
            verify_crc=options.verify_crc,
            max_record_bytes=options.max_record_bytes,
            max_decompression_ratio=options.max_decompression_ratio,
            config=options.config,
        ),
    )
    offset = 0
    try:
        for record in records:
            yield path, offset, record
            offset += len(record) + FRAME_OVERHEAD
    finally:
        records.close()


def infer_features(sample: Sample) -> dict[str, FeatureSpec]:
    """Specs for every kinded feature of the sampled Examples (keys sorted).

    ``DecodeError`` (naming the record) for a record that is not an Example or a feature
    whose kind changes between records; ``ConfigError`` when the sample holds no feature."""
    kinds: dict[str, tuple[str, str, int]] = {}  # key -> (kind, where first seen)
    lengths: dict[str, set[int]] = {}
    present: dict[str, int] = {}
    for path, offset, record in sample.records:
        example: Any = Example()
        try:
            example.ParseFromString(record)
        except Exception as exc:  # protobuf raises several types for bad bytes
            raise DecodeError(
                f"Name: {path} at byte {offset}, Could not parse example input: {exc}", path=path, offset=offset
            ) from exc
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            if kind is None:
                continue
            first = kinds.setdefault(key, (kind, path, offset))
            if first[0] != kind:
                raise DecodeError(
                    f"Name: {path} at byte {offset}, feature {key!r} holds {TF_NAME_OF_KIND[kind]} values, but "
                    f"{TF_NAME_OF_KIND[first[0]]} at byte {first[2]} of {first[1]}; pass features= to say which",
                    path=path,
                    offset=offset,
                    feature=key,
                )
            lengths.setdefault(key, set()).add(len(getattr(feature, kind).value))
            present[key] = present.get(key, 0) + 1
    if not kinds:
        where = sample.describe() if sample.files else "no file"
        raise ConfigError(f"no features found in {where}; pass features= to read_tfrecords")
    specs: dict[str, FeatureSpec] = {}
    for key in sorted(kinds):
        dtype = _DTYPE_OF_KIND[kinds[key][0]]
        seen = lengths[key]
        if present[key] == len(sample.records) and len(seen) == 1 and min(seen) > 0:
            size = min(seen)
            specs[key] = FixedLenFeature([] if size == 1 else [size], dtype)
        else:
            specs[key] = VarLenFeature(dtype)
    return specs


def mismatch(error: DecodeError, features: dict[str, FeatureSpec], inferred_from: str) -> DecodeError:
    """``error`` (a record that does not fit an inferred spec) with what was inferred, and the fix."""
    spec = features.get(error.feature or "")
    detail = f"; {error.feature!r} was inferred as {spec!r}" if spec is not None else ""
    return DecodeError(
        f"{error} (the schema was inferred from {inferred_from}{detail}; pass features= to read records that "
        "differ from the sample)",
        path=error.path,
        offset=error.offset,
        feature=error.feature,
    )
