"""TFRecord files through s3:// on a real (moto) server, configured only by the environment."""

from __future__ import annotations

import hashlib
import io
import random

import pytest

import tfrecord_s3 as tfr
from tests import golden
from tests.conftest import HttpCounter, S3Env
from tfrecord_s3.config import MIN_PART_SIZE, S3Config
from tfrecord_s3.records.reader import open_records
from tfrecord_s3.storage import s3_files


def sha(records: list[bytes]) -> list[str]:
    return [hashlib.sha256(r).hexdigest() for r in records]


@pytest.mark.parametrize("name", golden.golden_files())
def test_every_golden_file_reads_the_same_through_s3(s3_env: S3Env, name: str) -> None:
    info = golden.expected()["files"][name]
    local = golden.path_of(name)
    url = s3_env.put(f"golden/{name}", local.read_bytes())
    records = list(tfr.tf_record_iterator(url, info["compression"] or None))
    assert sha(records) == info["record_sha256"]
    assert records == list(tfr.tf_record_iterator(str(local), info["compression"] or None))


@pytest.mark.parametrize("name", ["raw_records.tfrecord", "examples_gzip.tfrecord.gz"])
def test_small_blocks_with_read_ahead_give_the_same_records(
    s3_env: S3Env, s3_counter: HttpCounter, name: str
) -> None:
    data = golden.path_of(name).read_bytes()
    url = s3_env.put(name, data)
    config = S3Config.from_env(block_size=256 * 1024, read_ahead=3)
    records = list(open_records(url, "auto", config=config))
    assert sha(records) == golden.expected()["files"][name]["record_sha256"]
    blocks = -(-len(data) // (256 * 1024))
    assert s3_counter.counts == {"GetObject": blocks}  # the first GET says the size: no HEAD


@pytest.mark.parametrize("name", golden.corrupted_files())
def test_corrupted_files_fail_through_s3_as_they_do_locally(s3_env: S3Env, name: str, tmp_path: object) -> None:
    info = golden.corruption()["files"][name]
    data = golden.corrupted_bytes(name)
    url = s3_env.put(f"bad/{name}", data)
    compression = info["compression"] or None
    local_path = golden.write_corrupted(name, tmp_path)  # type: ignore[arg-type]

    def outcome(path: str) -> tuple[list[bytes], type[BaseException], int | None]:
        seen: list[bytes] = []
        with pytest.raises(tfr.RecordError) as caught:
            for record in tfr.tf_record_iterator(path, compression):
                seen.append(record)
        return seen, type(caught.value), caught.value.offset

    remote = outcome(url)
    assert remote == outcome(str(local_path))


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
def test_writer_to_s3_reads_back(s3_env: S3Env, compression: str | None) -> None:
    rng = random.Random(11)
    records = [rng.randbytes(rng.randrange(0, 3000)) for _ in range(300)]
    url = s3_env.url(f"out/written-{compression}.tfrecord")
    with tfr.TFRecordWriter(url, compression) as writer:
        for record in records:
            writer.write(record)
    assert list(tfr.tf_record_iterator(url, compression)) == records
    if compression is None:
        # Byte-identical to the same records written locally.
        local = io.BytesIO()
        from tfrecord_s3.records.framing import encode_frame

        for record in records:
            local.write(encode_frame(record))
        assert s3_env.get("out/written-None.tfrecord") == local.getvalue()


def test_large_write_is_a_multipart_upload(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    config = S3Config.from_env(part_size=MIN_PART_SIZE)
    data = random.Random(2).randbytes(2 * MIN_PART_SIZE + 12345)
    url = s3_env.url("big.bin")
    with s3_files.open_s3(url, "wb", config=config) as out:
        for start in range(0, len(data), 1_000_000):
            out.write(data[start : start + 1_000_000])
        assert out.parts_uploaded == 2  # type: ignore[attr-defined]
    assert s3_counter.counts["UploadPart"] == 3
    assert s3_counter.counts["CompleteMultipartUpload"] == 1
    assert s3_counter.counts["PutObject"] == 0
    assert s3_env.get("big.bin") == data


def test_small_write_is_one_put_and_empty_file_works(s3_env: S3Env, s3_counter: HttpCounter) -> None:
    with tfr.open(s3_env.url("small.bin"), "wb") as out:
        out.write(b"hello")
    with tfr.open(s3_env.url("empty.bin"), "wb"):
        pass
    assert s3_counter.counts == {"PutObject": 2}
    assert s3_env.get("small.bin") == b"hello"
    assert s3_env.get("empty.bin") == b""
    assert list(tfr.tf_record_iterator(s3_env.url("empty.bin"))) == []


def test_writer_error_aborts_the_upload_and_leaves_no_object(s3_env: S3Env) -> None:
    config = S3Config.from_env(part_size=MIN_PART_SIZE)
    url = s3_env.url("aborted.tfrecord")
    with pytest.raises(RuntimeError, match="boom"), tfr.TFRecordWriter(url, config=config) as writer:
        writer.write(b"x" * (MIN_PART_SIZE + 10))  # one part is already up
        raise RuntimeError("boom")
    assert not tfr.exists(url)
    assert s3_env.client.list_multipart_uploads(Bucket=s3_env.bucket).get("Uploads", []) == []


def test_write_to_missing_bucket_is_object_not_found(s3_env: S3Env) -> None:
    url = f"s3://{s3_env.bucket}-missing/x.tfrecord"
    writer = tfr.TFRecordWriter(url)
    writer.write(b"abc")
    with pytest.raises(tfr.ObjectNotFoundError) as caught:
        writer.close()
    assert url in str(caught.value)


def test_raw_file_left_on_an_exception_publishes_nothing(s3_env: S3Env) -> None:
    url = s3_env.url("half.bin")
    with pytest.raises(KeyError), tfr.open(url, "wb") as out:
        out.write(b"partial")
        raise KeyError("stop")
    assert not tfr.exists(url)
