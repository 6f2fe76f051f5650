"""The demo's sample dataset: tf.train.Example records written with a tiny wire encoder.

Writing the protobuf wire format by hand keeps the demo independent of the decoder it is
showing off (the reading side decodes with the library; this side never shares its code).
Layout (tensorflow/core/example/example.proto, feature.proto):
Example{1: Features{1: map<string, Feature>}}, Feature{1: BytesList, 2: FloatList, 3: Int64List},
each list's values in field 1 (floats and ints packed).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

FeatureValue = Sequence[bytes] | np.ndarray  # bytes values, or an int64 / float32 array

IMAGE_SHAPE = (16, 16, 3)
EMBEDDING_SIZE = 8
LABELS = (b"cat", b"dog", b"bird", b"fish", b"horse", b"frog", b"ship", b"truck", b"plane", b"car")


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as its 10-byte two's complement, as protobuf does
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_feature(value: FeatureValue) -> bytes:
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32:
            return _field(2, _field(1, value.astype("<f4").tobytes()))
        return _field(3, _field(1, b"".join(_varint(int(v)) for v in value)))
    return _field(1, b"".join(_field(1, v) for v in value))


def encode_example(features: Mapping[str, FeatureValue]) -> bytes:
    """A serialized tf.train.Example, feature keys sorted as TensorFlow's deterministic output."""
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, encode_feature(features[key]))) for key in sorted(features)
    )
    return _field(1, entries)


def sample_records(shard: int, count: int, first_id: int, seed: int = 0) -> Iterator[bytes]:
    """``count`` Examples for ``shard``: ids from ``first_id``, a label, an embedding and a
    small uint8 image (deterministic for a given seed)."""
    rng = np.random.default_rng([seed, shard])
    images = rng.integers(0, 256, size=(count, *IMAGE_SHAPE), dtype=np.uint8)
    embeddings = rng.standard_normal((count, EMBEDDING_SIZE)).astype(np.float32)
    labels = rng.integers(0, len(LABELS), size=count)
    shape = np.array(IMAGE_SHAPE, dtype=np.int64)
    for i in range(count):
        label = int(labels[i])
        yield encode_example(
            {
                "id": np.array([first_id + i], dtype=np.int64),
                "shard": np.array([shard], dtype=np.int64),
                "label": np.array([label], dtype=np.int64),
                "label_name": [LABELS[label]],
                "embedding": embeddings[i],
                "image": [images[i].tobytes()],
                "image_shape": shape,
            }
        )
