"""encode_example writes the bytes protobuf writes, and parse_example reads them back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tfrecord_s3 as tfr
from tfrecord_s3.proto import Example, Features

int64s = st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=6)
floats = st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=6)
blobs = st.lists(st.binary(max_size=20), min_size=1, max_size=4)
values = st.one_of(int64s, floats, blobs)


def protobuf_bytes(features: dict[str, object]) -> bytes:
    """What TensorFlow's C++ deterministic serialization writes: map entries in byte order of
    their keys, each entry as protobuf writes it. (Python protobuf's upb backend orders a key
    after every key it is a prefix of, "00" before "0", so its whole-message output is no
    reference for such keys; that is upb's order, on 4.25 as on 7.x.)"""
    entries = []
    for key in sorted(features, key=str.encode):
        one = Features()
        feature = one.feature[key]
        items = list(features[key])  # type: ignore[call-overload]
        if isinstance(items[0], bytes):
            feature.bytes_list.value.extend(items)
        elif isinstance(items[0], float):
            feature.float_list.value.extend(items)
        else:
            feature.int64_list.value.extend(items)
        entries.append(one.SerializeToString())  # a Features of one entry is that entry's bytes
    body = b"".join(entries)
    # Example {1: Features}: the tag and the varint length of the Features.
    length = bytearray()
    size = len(body)
    while size > 0x7F:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    length.append(size)
    return b"\n" + bytes(length) + body


def test_key_order_is_byte_order_like_tensorflows() -> None:
    # A key that is a prefix of another comes first, as in C++ std::string order.
    encoded = tfr.encode_example({"00": [1], "0": [2], "0a": [3]})
    assert encoded == protobuf_bytes({"0": [2], "00": [1], "0a": [3]})
    assert encoded.index(b"\n\x010") < encoded.index(b"\n\x0200") < encoded.index(b"\n\x020a")
    assert Example.FromString(encoded).features.feature["00"].int64_list.value == [1]


@given(features=st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=5))
def test_same_bytes_as_protobuf_and_round_trips(features: dict[str, object]) -> None:
    encoded = tfr.encode_example(features)  # type: ignore[arg-type]
    assert encoded == protobuf_bytes(features)
    decoded = tfr.parse_example(encoded)
    for key, value in features.items():
        items = list(value)  # type: ignore[call-overload]
        if isinstance(items[0], bytes):
            assert decoded[key] == items
        else:
            np.testing.assert_array_equal(decoded[key], np.asarray(items, dtype=decoded[key].dtype))


def test_value_forms() -> None:
    encoded = tfr.encode_example(
        {
            "one_int": 7,
            "one_float": 0.5,
            "text": "naïve",
            "raw": b"\x00\xff",
            "tags": ["a", b"b"],
            "image": np.zeros((2, 3), dtype=np.uint8),
            "vec": np.array([1.5, -0.0], dtype=np.float64),
            "empty": np.array([], dtype=np.int64),
        }
    )
    got = tfr.parse_example(encoded)
    assert got["one_int"].tolist() == [7]
    assert got["one_float"].tolist() == [0.5]
    assert got["text"] == ["naïve".encode()]
    assert got["raw"] == [b"\x00\xff"]
    assert got["tags"] == [b"a", b"b"]
    assert got["image"].tolist() == [0] * 6
    assert got["vec"].dtype == np.float32
    assert np.signbit(got["vec"][1])
    assert got["empty"].dtype == np.int64
    assert got["empty"].size == 0


def test_ambiguous_values_are_refused() -> None:
    with pytest.raises(tfr.ConfigError, match="empty list"):
        tfr.encode_example({"x": []})
    with pytest.raises(tfr.ConfigError, match="int64 range"):
        tfr.encode_example({"x": np.array([2**64 - 1], dtype=np.uint64)})
