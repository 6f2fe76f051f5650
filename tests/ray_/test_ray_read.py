"""read_tfrecords on a local Ray: every record once, our decoder's values, projection, inference, errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests.conftest import FAKE_KEY_ID, HttpCounter, S3Env
from tests.ray_.data import SPEC, records_of, write_shards

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'tfrecord-s3[ray]')")
pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed")

from tfrecord_s3.arrow import parse_example_table  # noqa: E402
from tfrecord_s3.ray import read_tfrecords, tfrecord_datasource  # noqa: E402

pytestmark = pytest.mark.usefixtures("ray_cluster")

# Ray releases with projection pushdown hand select_columns and count()'s empty projection to the
# datasource; older ones (the 2.41 floor) decode every feature and drop columns afterwards.
PUSHDOWN = hasattr(ray.data.Datasource, "supports_projection_pushdown")


def table_of(ds: Any) -> Any:
    return pa.concat_tables(ray.get(ds.to_arrow_refs())).sort_by("id")


def test_every_record_once_across_tasks_with_byte_ranges(tmp_path: Path) -> None:
    # One file big enough to be cut into several ranges, two small ones left whole.
    paths = write_shards(str(tmp_path), [400, 7, 30], padding=2000)
    source = tfrecord_datasource(paths, features=SPEC, min_range_bytes=1)
    tasks = source.get_read_tasks(6)
    ranges = [part for task in tasks for part in task.read_fn.args[0] if not part.whole]
    assert len(tasks) == 6
    assert {part.path for part in ranges} == {paths[0]}  # the big file is cut, the small ones are not
    ds = read_tfrecords(str(tmp_path / "part-*.tfrecord"), features=SPEC, override_num_blocks=6)
    table = table_of(ds)
    assert table.column("id").to_pylist() == list(range(437))
    # Values are exactly what our decoder gives for the same records.
    assert table.equals(parse_example_table(records_of(paths), SPEC).sort_by("id"))


def test_planning_reads_no_record_and_knows_the_bytes(tmp_path: Path) -> None:
    paths = write_shards(str(tmp_path), [50, 50])
    source = tfrecord_datasource(paths, features=SPEC)
    tasks = source.get_read_tasks(2)
    sizes = [Path(p).stat().st_size for p in paths]
    assert [task.metadata.size_bytes for task in tasks] == sizes
    assert [task.metadata.input_files for task in tasks] == [(p,) for p in paths]
    assert source.estimate_inmemory_data_size() == sum(sizes)


def test_columns_and_select_columns_decode_only_those_features(tmp_path: Path) -> None:
    # "name" holds bytes, so decoding it as int64 fails: reading without it proves it was never decoded.
    paths = write_shards(str(tmp_path), [20])
    spec = {**SPEC, "name": tfr.FixedLenFeature([], "int64")}
    assert read_tfrecords(paths, features=spec, columns=["id", "tags"]).columns() == ["id", "tags"]
    assert sorted(r["id"] for r in read_tfrecords(paths, features=spec, columns=["id"]).take_all()) == list(range(20))
    if PUSHDOWN:
        pushed = read_tfrecords(paths, features=spec).select_columns(["id"])
        assert sorted(r["id"] for r in pushed.take_all()) == list(range(20))
    with pytest.raises(tfr.DecodeError, match="name"):
        read_tfrecords(paths, features=spec).take_all()
    with pytest.raises(tfr.ConfigError, match="nope"):
        read_tfrecords(paths, features=SPEC, columns=["id", "nope"])


def test_count_decodes_nothing(tmp_path: Path) -> None:
    paths = write_shards(str(tmp_path), [25, 0, 17])
    assert read_tfrecords(paths, features=SPEC).count() == 42
    if PUSHDOWN:  # count() projects the read to no column at all
        spec = {**SPEC, "name": tfr.FixedLenFeature([], "int64")}  # would fail if decoded
        assert read_tfrecords(paths, features=spec).count() == 42


def test_schema_inferred_from_a_sample_and_a_later_record_that_does_not_fit(tmp_path: Path) -> None:
    paths = write_shards(str(tmp_path), [30])
    with tfr.TFRecordWriter(paths[0] + ".odd") as writer:
        for record in records_of(paths):
            writer.write(record)
        writer.write(tfr.encode_example({"id": [1, 2], "embedding": np.zeros(4, np.float32), "name": "x", "tags": [1]}))
    odd_offset = sum(len(r) + 16 for r in records_of(paths))
    ds = read_tfrecords(paths[0] + ".odd", schema_sample=10)  # samples 10 records, no full pass
    schema = ds.schema()
    types = dict(zip(schema.names, schema.types, strict=True))
    assert types["id"] == pa.int64()
    assert types["embedding"] == pa.list_(pa.float32(), 4)
    assert types["name"] == pa.binary()
    assert types["tags"] == pa.list_(pa.int64())  # lengths vary in the sample
    with pytest.raises(tfr.DecodeError, match="inferred") as caught:
        ds.take_all()
    assert isinstance(caught.value, tfr.DecodeError)
    assert (caught.value.path, caught.value.offset, caught.value.feature) == (paths[0] + ".odd", odd_offset, "id")
    assert "features=" in str(caught.value)


def test_storage_and_record_errors_arrive_as_our_types(tmp_path: Path) -> None:
    paths = write_shards(str(tmp_path), [10])
    data = bytearray(Path(paths[0]).read_bytes())
    first = len(records_of(paths)[0]) + 16
    data[first + 12] ^= 0xFF  # a data byte of the second record
    Path(paths[0]).write_bytes(bytes(data))
    with pytest.raises(tfr.CorruptRecordError) as caught:
        read_tfrecords(paths, features=SPEC).count()
    assert (caught.value.path, caught.value.offset, caught.value.part) == (paths[0], first, "data")
    with pytest.raises(tfr.ObjectNotFoundError):
        read_tfrecords(str(tmp_path / "missing.tfrecord"), features=SPEC)


def test_iter_torch_batches(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    paths = write_shards(str(tmp_path), [64, 36])
    ds = read_tfrecords(paths, features=SPEC, columns=["id", "embedding"])
    seen = []
    for batch in ds.iter_torch_batches(batch_size=32):
        assert isinstance(batch["embedding"], torch.Tensor)
        assert batch["embedding"].shape[1:] == (4,)
        assert batch["embedding"].dtype == torch.float32
        seen.extend(batch["id"].tolist())
    assert sorted(seen) == list(range(100))


def test_s3_every_record_once(s3_env: S3Env) -> None:
    paths = write_shards(s3_env.url("train"), [300, 40], padding=1000)
    ds = read_tfrecords(s3_env.url("train/part-*.tfrecord"), features=SPEC, override_num_blocks=4)
    table = table_of(ds)
    assert table.column("id").to_pylist() == list(range(340))
    assert table.equals(parse_example_table(records_of(paths), SPEC).sort_by("id"))


def test_s3_planning_lists_once_and_heads_nothing(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    write_shards(s3_env.url("plan"), [30, 30, 30, 30], padding=500)
    s3_counter.reset()
    source = tfrecord_datasource(s3_env.url("plan/part-*.tfrecord"), features=SPEC, min_range_bytes=1)
    tasks = source.get_read_tasks(8)
    # Sizes come from the listing: Ray plans (here, byte ranges of every file) with no HEAD.
    assert dict(s3_counter.counts) == {"ListObjectsV2": 1}
    assert len(tasks) == 8
    assert sum(task.metadata.size_bytes for task in tasks) == sum(
        item["Size"] for item in s3_env.client.list_objects_v2(Bucket=s3_env.bucket, Prefix="plan/")["Contents"]
    )
    s3_counter.reset()
    tfrecord_datasource(s3_env.url("plan/part-*.tfrecord"), schema_sample=10).get_read_tasks(2)
    assert dict(s3_counter.counts) == {"ListObjectsV2": 1, "GetObject": 1}  # + the sampled file, no HEAD


def test_s3_paths_named_directly_are_headed_once_on_the_driver_only(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    paths = write_shards(s3_env.url("named"), [20, 20, 20])
    s3_counter.reset()
    tasks = tfrecord_datasource(paths, features=SPEC).get_read_tasks(3)
    assert dict(s3_counter.counts) == {"HeadObject": 3}
    s3_counter.reset()
    # A task (run here, in-process, to count its requests) opens its file with a GET alone:
    # the driver's HEAD travels with it as the size and ETag.
    rows = sum(block.num_rows for block in tasks[1].read_fn())
    assert (rows, dict(s3_counter.counts)) == (20, {"GetObject": 1})


def test_datasource_pickles_small_without_secrets(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "pickle/must+never+hold+this/secret0123"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-never-pickled")
    paths = write_shards(s3_env.url("p"), [50, 50, 50])
    source = tfrecord_datasource(s3_env.url("p/*"))  # inferred: the driver has opened files
    blobs = [ray.cloudpickle.dumps(source)] + [ray.cloudpickle.dumps(t) for t in source.get_read_tasks(3)]
    for blob in blobs:
        assert len(blob) < 4096, len(blob)
        for needle in (secret, "session-token-never-pickled", FAKE_KEY_ID, s3_env.secret):
            assert needle.encode() not in blob
    task = pickle.loads(blobs[1])
    assert task.read_fn.func.__module__ == "tfrecord_s3.ray._read"  # no datasource captured
    assert len(paths) == 3


def test_tfds_metadata_gives_row_counts_without_reading(tmp_path: Path) -> None:
    sources = write_shards(str(tmp_path / "raw"), [30, 12])
    names = [f"mnist-train.tfrecord-{i:05d}-of-00002" for i in range(2)]
    paths = []
    for source, name in zip(sources, names, strict=True):
        target = tmp_path / "mnist" / name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(Path(source).read_bytes())
        paths.append(str(target))
    info = {"name": "mnist", "splits": [{"name": "train", "shardLengths": ["30", "12"]}]}
    (tmp_path / "mnist" / "dataset_info.json").write_text(json.dumps(info))
    tasks = tfrecord_datasource(paths, features=SPEC).get_read_tasks(2)
    assert [task.metadata.num_rows for task in tasks] == [30, 12]
    assert read_tfrecords(paths, features=SPEC).count() == 42
    # Metadata that does not describe these files is not trusted.
    (tmp_path / "mnist" / "dataset_info.json").write_text(json.dumps({**info, "name": "other"}))
    assert [t.metadata.num_rows for t in tfrecord_datasource(paths, features=SPEC).get_read_tasks(2)] == [None, None]
