"""TFDS build directories, local and on S3: shard list and counts from dataset_info.json alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tfrecord_s3 as tfr
from tests.conftest import HttpCounter, S3Env
from tfrecord_s3.tfds import read_tfds_split, shard_name

SPLITS = {"train": [7, 5, 9], "test": [4]}


def build_tfds_dir(root: Path, *, template: str | None = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}") -> Path:
    """A directory laid out as TFDS writes it: ``<name>/<version>/`` with the shards named by
    the template, ``dataset_info.json`` (int64 fields as strings) and ``features.json``."""
    directory = root / "toy" / "1.0.0"
    directory.mkdir(parents=True)
    splits = []
    n = 0
    for split, lengths in SPLITS.items():
        num_bytes = 0
        for i, length in enumerate(lengths):
            name = shard_name(
                template or "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", "toy", split, "tfrecord", i, len(lengths)
            )
            with tfr.TFRecordWriter(str(directory / name)) as writer:
                for _ in range(length):
                    record = tfr.encode_example({"id": np.array([n]), "split": [split.encode()]})
                    writer.write(record)
                    num_bytes += len(record)
                    n += 1
        entry = {"name": split, "numBytes": str(num_bytes), "shardLengths": [str(x) for x in lengths]}
        if template is not None:
            entry["filepathTemplate"] = template
        splits.append(entry)
    info = {
        "name": "toy",
        "version": "1.0.0",
        "fileFormat": "tfrecord",
        "moduleName": "toy.toy_dataset_builder",
        "releaseNotes": {"1.0.0": "Initial release."},
        "splits": splits,
    }
    (directory / "dataset_info.json").write_text(json.dumps(info, indent=2))
    (directory / "features.json").write_text(
        json.dumps({"type": "tensorflow_datasets.core.features.features_dict.FeaturesDict"})
    )
    return directory


def test_shard_names_as_tfds_writes_them() -> None:
    assert shard_name("{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", "mnist", "train", "tfrecord", 0, 1) == (
        "mnist-train.tfrecord-00000-of-00001"
    )
    assert shard_name("{SPLIT}/{SHARD_INDEX}_{NUM_SHARDS}.{FILEFORMAT}", "d", "dev", "tfrecord", 3, 12) == (
        "dev/00003_00012.tfrecord"
    )
    with pytest.raises(tfr.ConfigError):
        shard_name("{WHAT}", "d", "s", "tfrecord", 0, 1)


@pytest.mark.parametrize("template", ["{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", None])
def test_split_of_a_local_directory(tmp_path: Path, template: str | None) -> None:
    directory = build_tfds_dir(tmp_path, template=template)
    split = read_tfds_split(str(directory), "train")
    assert [Path(f).name for f in split.files] == [f"toy-train.tfrecord-0000{i}-of-00003" for i in range(3)]
    assert split.counts == [7, 5, 9]
    ds = tfr.TFRecordDataset.from_tfds_dir(str(directory), split="train")
    ids = [int(tfr.parse_example(r)["id"][0]) for r in ds]
    assert ids == list(range(21))
    assert len(list(tfr.TFRecordDataset.from_tfds_dir(str(directory), split="test"))) == 4


def test_torch_datasets_take_len_from_the_metadata(tmp_path: Path) -> None:
    torch_mod = pytest.importorskip("tfrecord_s3.torch")
    directory = build_tfds_dir(tmp_path)
    away = tmp_path / "away"
    away.mkdir()
    for shard in directory.glob("toy-train.*"):  # counts come from the metadata, never a scan
        shard.rename(away / shard.name)
    ds = torch_mod.TFRecordIterableDataset.from_tfds_dir(str(directory), split="train", batch_size=4)
    assert len(ds) == 6
    even = torch_mod.TFRecordIterableDataset.from_tfds_dir(
        str(directory), split="train", even_steps=True, rank=1, world_size=2
    )
    assert len(even) == 10
    for shard in away.iterdir():
        shard.rename(directory / shard.name)
    assert len(list(ds)) == 6
    mapped = torch_mod.TFRecordMapDataset.from_tfds_dir(str(directory), split="train")
    assert len(mapped) == 21
    assert tfr.parse_example(mapped[20])["id"].tolist() == [20]


def test_unknown_split_and_bad_metadata(tmp_path: Path) -> None:
    directory = build_tfds_dir(tmp_path)
    with pytest.raises(tfr.ConfigError, match="no split 'validation'"):
        read_tfds_split(str(directory), "validation")
    with pytest.raises(tfr.ObjectNotFoundError):
        read_tfds_split(str(tmp_path), "train")
    (directory / "dataset_info.json").write_text('{"fileFormat": "array_record", "splits": []}')
    with pytest.raises(tfr.ConfigError, match="array_record"):
        read_tfds_split(str(directory), "train")


def test_wrong_counts_are_refused_by_the_map_dataset(tmp_path: Path) -> None:
    directory = build_tfds_dir(tmp_path)
    info = json.loads((directory / "dataset_info.json").read_text())
    info["splits"][0]["shardLengths"] = ["7", "6", "9"]
    (directory / "dataset_info.json").write_text(json.dumps(info))
    with pytest.raises(tfr.StaleIndexError, match="says 6"):
        tfr.TFRecordMapDataset.from_tfds_dir(str(directory), split="train")


def test_split_on_s3_costs_one_get(tmp_path: Path, s3_env: S3Env, s3_counter: HttpCounter) -> None:
    directory = build_tfds_dir(tmp_path)
    for path in directory.iterdir():
        s3_env.put(f"tfds/toy/1.0.0/{path.name}", path.read_bytes())
    s3_counter.reset()
    split = read_tfds_split(s3_env.url("tfds/toy/1.0.0/"), "train")
    assert s3_counter.counts == {"GetObject": 1}
    assert split.files[0] == s3_env.url("tfds/toy/1.0.0/toy-train.tfrecord-00000-of-00003")
    ds = tfr.TFRecordDataset.from_tfds_dir(s3_env.url("tfds/toy/1.0.0"), split="train")
    assert [int(tfr.parse_example(r)["id"][0]) for r in ds] == list(range(21))
