"""``s3://bucket/key`` parsing."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["S3Path"]

SCHEME = "s3://"


@dataclass(frozen=True)
class S3Path:
    """A bucket and a key (the key may be empty: the bucket root)."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, path: str) -> S3Path:
        """Split ``s3://bucket/key``; ConfigError when it is not one."""
        if not path.startswith(SCHEME):
            raise ConfigError(f"not an s3:// path: {path!r}")
        bucket, _, key = path[len(SCHEME) :].partition("/")
        if not bucket:
            raise ConfigError(f"no bucket in {path!r}")
        return cls(bucket, key)

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"

    def child(self, key: str) -> S3Path:
        return S3Path(self.bucket, key)
