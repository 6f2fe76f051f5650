"""The demo's sample dataset: tf.train.Example records (written with tfrecord_s3.encode,
which never shares code with the decoder the demo reads them back with)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..encode import encode_example

IMAGE_SHAPE = (16, 16, 3)
EMBEDDING_SIZE = 8
LABELS = (b"cat", b"dog", b"bird", b"fish", b"horse", b"frog", b"ship", b"truck", b"plane", b"car")


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
