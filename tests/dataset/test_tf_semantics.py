"""The tf.data methods on our datasets, pinned to what TensorFlow documents for them.

Expected values are the examples and rules of https://www.tensorflow.org/api_docs/python/tf/data/Dataset
(``tf.data.Dataset.range`` there is ``tfr.Dataset.range`` here), plus the same rules on
records read from TFRecord files.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tfrecord_s3 import Dataset

RANGE = Dataset.range


def plain(value: Any) -> Any:
    """numpy values (also inside dicts, tuples and lists) as Python lists and scalars."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def elements(ds: Dataset) -> list[Any]:
    return [plain(e) for e in ds]


@pytest.fixture
def records(tmp_path: Path) -> tuple[list[str], list[bytes]]:
    paths, everything = [], []
    for f in range(3):
        path = str(tmp_path / f"part-{f}.tfrecord")
        recs = [f"f{f}-r{i}".encode() * (1 + i % 3) for i in range(40 + 7 * f)]
        with tfr.TFRecordWriter(path) as writer:
            for r in recs:
                writer.write(r)
        paths.append(path)
        everything.extend(recs)
    return paths, everything


# take / skip / repeat ----------------------------------------------------------------


def test_take_minus_one_is_everything_and_more_than_there_is_is_everything() -> None:
    assert elements(RANGE(10).take(3)) == [0, 1, 2]
    assert elements(RANGE(5).take(-1)) == [0, 1, 2, 3, 4]
    assert elements(RANGE(5).take(100)) == [0, 1, 2, 3, 4]
    assert elements(RANGE(5).take(0)) == []


def test_skip_minus_one_skips_everything() -> None:
    assert elements(RANGE(10).skip(7)) == [7, 8, 9]
    assert elements(RANGE(5).skip(-1)) == []
    assert elements(RANGE(5).skip(100)) == []


def test_repeat_none_or_minus_one_is_forever_and_zero_is_nothing() -> None:
    assert elements(RANGE(1, 4).repeat(3)) == [1, 2, 3, 1, 2, 3, 1, 2, 3]
    assert elements(RANGE(3).repeat().take(8)) == [0, 1, 2, 0, 1, 2, 0, 1]
    assert elements(RANGE(3).repeat(None).take(7)) == [0, 1, 2, 0, 1, 2, 0]
    assert elements(RANGE(3).repeat(-1).take(10)) == [0, 1, 2] * 3 + [0]
    assert elements(RANGE(3).repeat(0)) == []
    # forever over nothing ends, as in tf.data, rather than spinning
    assert elements(RANGE(0).repeat()) == []
    assert elements(RANGE(5).filter(lambda x: x > 9).repeat(-1)) == []


def test_take_skip_repeat_on_records(records: tuple[list[str], list[bytes]]) -> None:
    paths, everything = records
    ds = tfr.TFRecordDataset(paths)
    assert list(ds.take(-1)) == everything
    assert list(ds.skip(-1)) == []
    assert list(ds.repeat(-1).take(3 * len(everything) + 5)) == everything * 3 + everything[:5]


# shuffle -----------------------------------------------------------------------------


def test_shuffle_needs_no_seed_and_each_iteration_is_a_new_permutation() -> None:
    ds = RANGE(100).shuffle(100)
    orders = [elements(ds) for _ in range(3)]
    assert all(sorted(order) == list(range(100)) for order in orders)
    assert len({tuple(order) for order in orders}) == 3  # 3 equal orders: ~1 in 100!


def test_shuffle_with_a_seed_reshuffles_each_iteration_reproducibly() -> None:
    first = RANGE(50).shuffle(50, seed=42)
    second = RANGE(50).shuffle(50, seed=42)
    runs_first = [elements(first) for _ in range(3)]
    runs_second = [elements(second) for _ in range(3)]
    assert runs_first == runs_second  # the n-th iteration of one pipeline is the n-th of the other
    assert len({tuple(run) for run in runs_first}) == 3
    assert elements(RANGE(50).shuffle(50, seed=43)) != runs_first[0]


def test_shuffle_without_reshuffle_gives_the_same_order_every_time() -> None:
    ds = RANGE(50).shuffle(50, seed=7, reshuffle_each_iteration=False)
    once = elements(ds)
    assert once != list(range(50))
    assert elements(ds) == once
    assert elements(ds.repeat(3)) == once * 3
    # TensorFlow: without a seed the order is drawn once, then kept as well
    unseeded = RANGE(50).shuffle(50, reshuffle_each_iteration=False)
    assert elements(unseeded) == elements(unseeded)


def test_shuffle_reshuffles_each_repetition() -> None:
    # tf.data docs: range(3).shuffle(3, reshuffle_each_iteration=True).repeat(2) gives two
    # permutations of [0, 1, 2], which may differ; over 100 elements they do.
    out = elements(RANGE(100).shuffle(100, seed=1).repeat(2))
    assert sorted(out[:100]) == sorted(out[100:]) == list(range(100))
    assert out[:100] != out[100:]


def test_shuffle_buffer_of_one_keeps_the_order() -> None:
    assert elements(RANGE(20).shuffle(1, seed=3)) == list(range(20))


def test_shuffle_moves_elements_at_most_a_buffer_ahead() -> None:
    # An element can only come out once it has entered the buffer: the i-th output is one of
    # the first i + buffer_size inputs.
    out = elements(RANGE(1000).shuffle(10, seed=5))
    assert sorted(out) == list(range(1000))
    assert all(value < i + 10 for i, value in enumerate(out))


# batch / padded_batch / unbatch ------------------------------------------------------


def test_batch_and_drop_remainder() -> None:
    assert elements(RANGE(8).batch(3)) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert elements(RANGE(8).batch(3, drop_remainder=True)) == [[0, 1, 2], [3, 4, 5]]


def test_padded_batch_pads_to_the_longest_or_the_given_shape() -> None:
    a = RANGE(1, 5).map(lambda x: np.full([x], x, dtype=np.int32))
    assert elements(a.padded_batch(2)) == [[[1, 0], [2, 2]], [[3, 3, 3, 0], [4, 4, 4, 4]]]
    assert elements(a.padded_batch(2, padded_shapes=5)) == [
        [[1, 0, 0, 0, 0], [2, 2, 0, 0, 0]],
        [[3, 3, 3, 0, 0], [4, 4, 4, 4, 0]],
    ]
    assert elements(a.padded_batch(2, padded_shapes=[5], padding_values=-1)) == [
        [[1, -1, -1, -1, -1], [2, 2, -1, -1, -1]],
        [[3, 3, 3, -1, -1], [4, 4, 4, 4, -1]],
    ]
    assert elements(a.padded_batch(3, drop_remainder=True)) == [[[1, 0, 0], [2, 2, 0], [3, 3, 3]]]
    assert next(iter(a.padded_batch(2))).dtype == np.int32


def test_padded_batch_of_tuples_with_a_shape_and_a_value_per_component() -> None:
    pairs = [([1, 2, 3], [10]), ([4, 5], [11, 12])]
    ds = RANGE(2).map(lambda i: tuple(np.array(c) for c in pairs[i]))
    (first,) = elements(ds.padded_batch(2, padded_shapes=([4], [None]), padding_values=(-1, 100)))
    assert first == ([[1, 2, 3, -1], [4, 5, -1, -1]], [[10, 100], [11, 12]])


def test_padded_batch_of_parsed_examples(tmp_path: Path) -> None:
    path = str(tmp_path / "ex.tfrecord")
    with tfr.TFRecordWriter(path) as writer:
        for i in range(5):
            writer.write(tfr.encode_example({"id": i, "v": np.arange(i, dtype=np.int64), "name": f"n{i}"}))
    spec = {
        "id": tfr.FixedLenFeature([], "int64"),
        "v": tfr.VarLenFeature("int64"),
        "name": tfr.FixedLenFeature([], "string"),
    }
    ds = tfr.TFRecordDataset(path).parse_examples(spec).padded_batch(3)
    first, second = elements(ds)
    assert first == {"id": [0, 1, 2], "v": [[0, 0], [0, 0], [0, 1]], "name": [b"n0", b"n1", b"n2"]}
    assert second == {"id": [3, 4], "v": [[0, 1, 2, 0], [0, 1, 2, 3]], "name": [b"n3", b"n4"]}


def test_padded_batch_refuses_what_does_not_fit() -> None:
    a = RANGE(1, 5).map(lambda x: np.full([x], x))
    with pytest.raises(tfr.ConfigError, match="more than the padded shape"):
        list(a.padded_batch(2, padded_shapes=[2]))
    with pytest.raises(tfr.ConfigError, match="ranks"):
        list(RANGE(1, 3).map(lambda x: np.zeros([1] * int(x))).padded_batch(2))
    with pytest.raises(tfr.ConfigError, match="RaggedValues"):
        list(RANGE(2).map(lambda x: tfr.RaggedValues(np.zeros(2), np.array([1, 1]))).padded_batch(2))


def test_unbatch_is_the_inverse_of_batch(records: tuple[list[str], list[bytes]]) -> None:
    assert elements(RANGE(7).batch(3).unbatch()) == list(range(7))
    rows = [[1, 2, 3], [4, 5, 6]]
    assert elements(RANGE(2).map(lambda i: np.array(rows[i])).unbatch()) == [1, 2, 3, 4, 5, 6]
    paths, everything = records
    assert list(tfr.TFRecordDataset(paths, num_parallel_reads=2).batch(16).unbatch()) == list(
        tfr.TFRecordDataset(paths, num_parallel_reads=2)
    )
    batches = RANGE(5).map(lambda x: {"a": x, "b": (x, -x)}).batch(2)
    assert elements(batches.unbatch()) == [{"a": x, "b": (x, -x)} for x in range(5)]
    assert len(everything) == sum(1 for _ in tfr.TFRecordDataset(paths).batch(5).unbatch())


def test_unbatch_of_parsed_batches_gives_each_records_values(tmp_path: Path) -> None:
    path = str(tmp_path / "ex.tfrecord")
    with tfr.TFRecordWriter(path) as writer:
        for i in range(5):
            writer.write(tfr.encode_example({"id": i, "v": np.arange(i, dtype=np.int64)}))
    spec = {"id": tfr.FixedLenFeature([], "int64"), "v": tfr.VarLenFeature("int64")}
    rows = elements(tfr.TFRecordDataset(path).batch(2).parse_examples(spec).unbatch())
    assert rows == [{"id": i, "v": list(range(i))} for i in range(5)]


def test_unbatch_refuses_scalars_and_uneven_components() -> None:
    with pytest.raises(tfr.ConfigError, match="batch dimension"):
        list(RANGE(3).unbatch())
    with pytest.raises(tfr.ConfigError, match="different numbers of rows"):
        list(RANGE(1).map(lambda x: {"a": np.zeros(2), "b": np.zeros(3)}).unbatch())


# map / filter / prefetch -------------------------------------------------------------


def test_map_unpacks_tuples_as_tf_does() -> None:
    assert elements(RANGE(1, 6).map(lambda x: x + 1)) == [2, 3, 4, 5, 6]
    pairs = RANGE(3).map(lambda x: (x, x * 10))
    assert elements(pairs.map(lambda a, b: a + b)) == [0, 11, 22]
    assert elements(RANGE(2).map(lambda x: {"a": x}).map(lambda d: d["a"] + 1)) == [1, 2]  # a dict is one argument


@pytest.mark.parametrize("calls", [1, 3, tfr.AUTOTUNE])
def test_parallel_map_keeps_the_order(calls: int) -> None:
    assert tfr.AUTOTUNE == -1
    assert elements(RANGE(200).map(lambda x: x * x, num_parallel_calls=calls)) == [x * x for x in range(200)]


def test_parallel_map_runs_calls_at_the_same_time() -> None:
    barrier = threading.Barrier(4, timeout=30)  # passes only with 4 calls in flight together

    def meet(x: int) -> int:
        barrier.wait()
        return x

    assert elements(RANGE(8).map(meet, num_parallel_calls=4)) == list(range(8))


def test_parallel_map_pulls_a_bounded_number_ahead() -> None:
    pulled: list[int] = []

    def note(x: int) -> int:
        pulled.append(x)
        return x

    it = iter(RANGE(1000).map(note).map(lambda x: x, num_parallel_calls=2))
    assert next(it) == 0
    assert len(pulled) <= 4  # 2 * num_parallel_calls in flight
    it.close()  # type: ignore[attr-defined]


def test_filter_keeps_what_the_predicate_accepts(records: tuple[list[str], list[bytes]]) -> None:
    assert elements(RANGE(1, 4).filter(lambda x: x < 3)) == [1, 2]
    assert elements(RANGE(10).filter(lambda x: x % 2 == 0)) == [0, 2, 4, 6, 8]
    pairs = RANGE(6).map(lambda x: (x, x * 2))
    assert elements(pairs.filter(lambda a, b: a % 2 == 0)) == [(0, 0), (2, 4), (4, 8)]
    assert elements(RANGE(4).filter(lambda x: np.bool_(x > 1))) == [2, 3]
    paths, everything = records
    assert list(tfr.TFRecordDataset(paths).filter(lambda r: r.startswith(b"f1"))) == [
        r for r in everything if r.startswith(b"f1")
    ]


def test_prefetch_changes_nothing_but_the_timing(records: tuple[list[str], list[bytes]]) -> None:
    assert elements(RANGE(3).prefetch(2)) == [0, 1, 2]
    assert elements(RANGE(3).prefetch(0)) == [0, 1, 2]
    assert elements(RANGE(30).prefetch(tfr.AUTOTUNE)) == list(range(30))
    paths, everything = records
    ds = tfr.TFRecordDataset(paths).prefetch(1)
    assert list(ds) == everything
    assert ds.stats.records == len(everything)


# mixing ------------------------------------------------------------------------------


def test_choose_from_datasets_as_documented() -> None:
    # tf.data docs: datasets "foo", "bar", "baz" (each repeated), choices range(3).repeat(3)
    inputs = [RANGE(1).map(lambda _, w=word: w).repeat() for word in ("foo", "bar", "baz")]
    assert elements(tfr.choose_from_datasets(inputs, RANGE(3).repeat(3))) == ["foo", "bar", "baz"] * 3
    assert elements(tfr.Dataset.choose_from_datasets(inputs, [2, 0])) == ["baz", "foo"]


def test_choose_from_datasets_on_an_ended_input() -> None:
    inputs = [RANGE(0, 2), RANGE(10, 15)]
    choices = [0, 1, 0, 0, 1, 1]
    assert elements(tfr.choose_from_datasets(inputs, choices)) == [0, 10, 1]
    assert elements(tfr.choose_from_datasets(inputs, choices, stop_on_empty_dataset=False)) == [0, 10, 1, 11, 12]
    with pytest.raises(tfr.ConfigError, match="out of range"):
        list(tfr.choose_from_datasets(inputs, [0, 2]))
    with pytest.raises(tfr.ConfigError, match="not an integer"):
        list(tfr.choose_from_datasets(inputs, RANGE(2).map(float)))


def test_sample_from_datasets_keeps_each_inputs_order_and_every_element() -> None:
    # tf.data docs: one possible outcome of sampling range(0, 3) and range(100, 103) 50/50 is
    # [100, 0, 1, 101, 2, 102]: each element once, each input in its own order.
    mixed = tfr.sample_from_datasets([RANGE(0, 3), RANGE(100, 103)], weights=[0.5, 0.5], seed=1)
    out = elements(mixed)
    assert sorted(out) == [0, 1, 2, 100, 101, 102]
    assert [x for x in out if x < 100] == [0, 1, 2]
    assert [x for x in out if x >= 100] == [100, 101, 102]
    assert elements(mixed) == out  # with a seed every iteration draws the same sequence
    assert elements(tfr.sample_from_datasets([RANGE(0, 3), RANGE(100, 103)], seed=1)) == out


def test_sample_from_datasets_follows_the_weights() -> None:
    mixed = tfr.sample_from_datasets([RANGE(0, 10**6), RANGE(10**6, 2 * 10**6)], weights=[0.8, 0.2], seed=0)
    head = elements(mixed.take(5000))
    share = sum(1 for x in head if x < 10**6) / len(head)
    assert 0.75 < share < 0.85
    only_first = tfr.sample_from_datasets([RANGE(0, 5), RANGE(100, 105)], weights=[1.0, 0.0], seed=0)
    assert elements(only_first) == [0, 1, 2, 3, 4]


def test_sample_from_datasets_on_an_ended_input() -> None:
    inputs = [RANGE(0, 3), RANGE(100, 110)]
    rest = elements(tfr.sample_from_datasets(inputs, seed=4))
    assert Counter(rest) == Counter([*range(3), *range(100, 110)])  # default: skip the ended input
    stopped = elements(tfr.sample_from_datasets(inputs, seed=4, stop_on_empty_dataset=True))
    assert [x for x in stopped if x < 100] == [0, 1, 2]  # it stops once input 0 is drawn empty
    assert stopped == rest[: len(stopped)]
    assert len(stopped) < len(rest)


def test_sample_from_datasets_refuses_bad_weights() -> None:
    with pytest.raises(tfr.ConfigError, match="one per dataset"):
        tfr.sample_from_datasets([RANGE(3), RANGE(3)], weights=[1.0])
    with pytest.raises(tfr.ConfigError, match=">= 0"):
        tfr.sample_from_datasets([RANGE(3), RANGE(3)], weights=[1.0, -1.0])
    with pytest.raises(tfr.ConfigError, match="non-empty"):
        tfr.sample_from_datasets([])


def test_mixed_record_datasets_and_their_stats(records: tuple[list[str], list[bytes]]) -> None:
    paths, everything = records
    a, b = tfr.TFRecordDataset(paths[:1]), tfr.TFRecordDataset(paths[1:])
    mixed = tfr.sample_from_datasets([a, b], seed=9)
    out = list(mixed)
    assert Counter(out) == Counter(everything)
    assert mixed.stats.records == len(everything)
    assert mixed.stats.files_done == 3


def test_bad_arguments_raise_config_error() -> None:
    for bad in (
        lambda: RANGE(3).map(abs, num_parallel_calls=0),
        lambda: RANGE(3).prefetch(-2),
        lambda: RANGE(3).shuffle(0),
        lambda: RANGE(3).padded_batch(0),
        lambda: RANGE(0, 3, 0),
    ):
        with pytest.raises(tfr.ConfigError):
            bad()
    with pytest.raises(tfr.ConfigError, match="reads no TFRecord files"):
        _ = RANGE(3).stats


# parse_example -----------------------------------------------------------------------


def test_parse_example_takes_a_batch_and_parse_single_example_one_record() -> None:
    serialized = [tfr.encode_example({"id": i, "v": [float(i)] * 2}) for i in range(3)]
    spec = {"id": tfr.FixedLenFeature([], "int64"), "v": tfr.FixedLenFeature([2], "float32")}
    batch = tfr.parse_example(serialized, spec)
    assert plain(batch) == {"id": [0, 1, 2], "v": [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]}
    assert plain(tfr.parse_example(np.array(serialized, dtype=object), spec)) == plain(batch)
    assert plain(tfr.parse_example(tuple(serialized), spec)) == plain(batch)
    one = tfr.parse_single_example(serialized[1], spec)
    assert plain(one) == {"id": 1, "v": [1.0, 1.0]}
    assert plain(tfr.parse_example(serialized[1], spec)) == plain(one)  # one record: its dict
