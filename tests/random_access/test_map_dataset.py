"""TFRecordMapDataset on local files: item i is the i-th record of a sequential read."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests import golden
from tests.index.test_index import PLAIN, text_index_as_tools_write_it
from tfrecord_s3.index import build_index, sidecar_path, write_index
from tfrecord_s3.random_access.spans import coalesce
from tfrecord_s3.records.framing import encode_frame


def write_parts(directory: Path, sizes: list[int]) -> tuple[list[str], list[bytes]]:
    paths, everything = [], []
    for f, n in enumerate(sizes):
        records = [f"f{f}-r{i}-".encode() + b"x" * (i * 37 % 500) for i in range(n)]
        path = directory / f"part-{f}.tfrecord"
        path.write_bytes(b"".join(encode_frame(r) for r in records))
        paths.append(str(path))
        everything.extend(records)
    return paths, everything


@pytest.mark.parametrize("name", PLAIN)
def test_every_item_is_the_sequential_record(name: str) -> None:
    path = str(golden.path_of(name))
    sequential = list(tfr.tf_record_iterator(path))
    ds = tfr.TFRecordMapDataset(path)
    assert len(ds) == len(sequential)
    assert [ds[i] for i in range(len(ds))] == sequential
    assert ds.__getitems__(list(range(len(ds)))) == sequential
    if sequential:
        assert ds[-1] == sequential[-1]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_items_number_across_files_in_order(tmp_path: Path) -> None:
    paths, everything = write_parts(tmp_path, [5, 0, 17, 1, 9])
    ds = tfr.TFRecordMapDataset(paths)
    assert len(ds) == len(everything)
    assert [ds[i] for i in range(len(ds))] == everything
    order = np.random.default_rng(3).permutation(len(ds)).tolist()
    assert ds.__getitems__(order + order[:5]) == [everything[i] for i in order + order[:5]]
    assert ds.locate(5) == (paths[2], 0)
    assert list(ds) == everything


def test_decoded_items_equal_parse_example(tmp_path: Path) -> None:
    path = str(golden.path_of("examples_none.tfrecord"))
    features = {
        "id": tfr.FixedLenFeature([], "int64", default_value=-1),
        "name": tfr.FixedLenFeature([], "string", default_value=b"?"),
        "vec3": tfr.FixedLenFeature([3], "float32", default_value=[0.0, 0.0, 0.0]),
        "label": tfr.VarLenFeature("int64"),
    }
    records = list(tfr.tf_record_iterator(path))
    ds = tfr.TFRecordMapDataset(path, features=features, transform=lambda item: {**item, "seen": True})
    order = [7, 3, 3, 199, 0]
    for item, i in zip(ds.__getitems__(order), order, strict=True):
        want = tfr.parse_example(records[i], features)
        assert list(item) == [*features, "seen"]
        for key, value in want.items():
            np.testing.assert_array_equal(item[key], value)
            assert type(item[key]) is type(value)
    assert ds[3]["name"] == tfr.parse_example(records[3], features)["name"]


def test_decode_error_names_the_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    good = tfr.encode_example({"x": np.array([1])})
    path.write_bytes(encode_frame(good) + encode_frame(b"\xff\xff not an example"))
    ds = tfr.TFRecordMapDataset(str(path), features={"x": tfr.FixedLenFeature([], "int64")})
    with pytest.raises(tfr.DecodeError) as caught:
        ds.__getitems__([0, 1])
    assert caught.value.path == str(path)
    assert caught.value.offset == len(encode_frame(good))


def test_coalescing_merges_near_records_only() -> None:
    # Records of 100 bytes back to back: 0..9 at offsets 0, 100, ...
    offsets = np.arange(0, 1000, 100, dtype=np.uint64)
    ends = offsets + np.uint64(100)
    spans = coalesce(0, [0, 1, 2, 5, 9], offsets, ends, max_gap=100, max_span=1 << 20)
    assert [(s.start, s.end, s.first, s.last) for s in spans] == [(0, 300, 0, 2), (500, 600, 5, 5), (900, 1000, 9, 9)]
    spans = coalesce(0, [0, 2, 4], offsets, ends, max_gap=100, max_span=1 << 20)
    assert [(s.first, s.last) for s in spans] == [(0, 4)]
    spans = coalesce(0, [0, 1, 2, 3], offsets, ends, max_gap=0, max_span=250)
    assert [(s.first, s.last) for s in spans] == [(0, 1), (2, 3)]


def test_sidecar_is_used_and_can_be_saved(tmp_path: Path) -> None:
    paths, everything = write_parts(tmp_path, [30, 40])
    assert not Path(sidecar_path(paths[0])).exists()
    ds = tfr.TFRecordMapDataset(paths, save_index=True)
    assert Path(sidecar_path(paths[0])).exists()
    assert Path(sidecar_path(paths[1])).exists()
    again = tfr.TFRecordMapDataset(paths)
    assert again.__getitems__(range(len(again))) == everything == ds.__getitems__(range(len(ds)))


@pytest.mark.parametrize("fmt", ["ours", "text"])
def test_explicit_index_paths_in_any_format(tmp_path: Path, fmt: str) -> None:
    paths, everything = write_parts(tmp_path, [12, 13])
    index_paths = []
    for p in paths:
        target = tmp_path / (Path(p).name + ".somewhere")
        if fmt == "text":
            target.write_bytes(text_index_as_tools_write_it(Path(p)))
        else:
            write_index(build_index(p), str(target))
        index_paths.append(str(target))
    ds = tfr.TFRecordMapDataset(paths, index=index_paths)
    assert ds.__getitems__(range(len(ds))) == everything
    with pytest.raises(tfr.ConfigError, match="one per file"):
        tfr.TFRecordMapDataset(paths, index=index_paths[:1])


def test_stale_sidecar_is_refused(tmp_path: Path) -> None:
    paths, _ = write_parts(tmp_path, [10])
    write_index(build_index(paths[0]), sidecar_path(paths[0]))
    with open(paths[0], "ab") as f:
        f.write(encode_frame(b"appended"))
    with pytest.raises(tfr.StaleIndexError) as caught:
        tfr.TFRecordMapDataset(paths)
    assert caught.value.data_path == paths[0]


def test_file_changed_after_opening_is_refused(tmp_path: Path) -> None:
    paths, _ = write_parts(tmp_path, [10])
    ds = tfr.TFRecordMapDataset(paths)
    st = os.stat(paths[0])
    Path(paths[0]).write_bytes(Path(paths[0]).read_bytes())
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    with pytest.raises(tfr.StaleIndexError):
        ds[0]


def test_text_index_of_another_file_never_gives_wrong_records(tmp_path: Path) -> None:
    # Same total size, different record boundaries: only the framing can tell.
    a = tmp_path / "a.tfrecord"
    b = tmp_path / "b.tfrecord"
    a.write_bytes(encode_frame(b"x" * 10) + encode_frame(b"y" * 30))
    b.write_bytes(encode_frame(b"x" * 30) + encode_frame(b"y" * 10))
    foreign = tmp_path / "b.idx"
    foreign.write_bytes(text_index_as_tools_write_it(b))
    ds = tfr.TFRecordMapDataset([str(a)], index=[str(foreign)])
    with pytest.raises((tfr.StaleIndexError, tfr.CorruptRecordError)):
        ds[1]
    with pytest.raises((tfr.StaleIndexError, tfr.CorruptRecordError)):
        ds[0]


def test_damaged_record_is_a_corrupt_record_error(tmp_path: Path) -> None:
    paths, everything = write_parts(tmp_path, [10])
    ds = tfr.TFRecordMapDataset(paths)
    data = bytearray(Path(paths[0]).read_bytes())
    _, offset = ds.locate(4)
    data[offset + 14] ^= 1
    st = os.stat(paths[0])
    Path(paths[0]).write_bytes(bytes(data))
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns))  # a bit flip does not touch the stamp
    assert ds[3] == everything[3]
    with pytest.raises(tfr.CorruptRecordError) as caught:
        ds[4]
    assert caught.value.offset == offset


def test_compressed_files_are_refused_with_the_reason() -> None:
    with pytest.raises(tfr.ConfigError, match="compressed"):
        tfr.TFRecordMapDataset(str(golden.path_of("examples_gzip.tfrecord.gz")))


def test_pickles_without_open_files(tmp_path: Path) -> None:
    paths, everything = write_parts(tmp_path, [20])
    ds = tfr.TFRecordMapDataset(paths)
    assert ds.__getitems__([0, 5]) == [everything[0], everything[5]]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.__getitems__([19, 1]) == [everything[19], everything[1]]
    ds.close()
    clone.close()


@pytest.mark.parametrize(
    "name", [n for n in golden.corrupted_files() if not golden.corruption()["files"][n]["compression"]]
)
def test_frames_in_fails_as_iter_frames_does(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from tfrecord_s3.records.framing import frames_in, iter_frames

    data = golden.corrupted_bytes(name)

    def outcome(fn: object) -> tuple[type[BaseException], int | None]:
        with pytest.raises(tfr.RecordError) as caught:
            fn()  # type: ignore[operator]
        return type(caught.value), caught.value.offset

    streamed = outcome(lambda: list(iter_frames(io.BytesIO(data), path="p", start_offset=7)))
    assert outcome(lambda: frames_in(data, path="p", start_offset=7)) == streamed
    monkeypatch.setenv("TFRECORD_S3_PURE_PYTHON", "1")
    assert outcome(lambda: frames_in(data, path="p", start_offset=7)) == streamed
